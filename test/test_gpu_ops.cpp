// GPU (ctest label gpu): every CUDA op against the CPU reference (the low-precision ones in
// test_gpu_low_precision), forward and gradients through the autograd ops, on odd shapes (7, 13,
// 33, 65: no multiple of a block or vector width), by test/gpu_op_compare.h.
// Tolerances, relative to the largest magnitude of the reference tensor:
//   f32:  max |cuda - cpu| <= 1e-4 * max |cpu|  (f32 GEMMs without TF32; only the summation
//         order differs);
//   bf16: inputs and upstream gradients rounded to bf16 first, the CUDA result in bf16 compared
//         with the CPU's f32 result on the same rounded values: <= 2e-2 * max |cpu| (a bf16
//         output alone is off by up to 2^-9 relative).
// Determinism: embedding backward and rmsnorm's dweight are bit-identical run to run.
// Without a CUDA device it says so and exits 77, which ctest reports as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "engine/backend.h"
#include "engine/op_timer.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "test/gpu_op_compare.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

TEST_CASE("fill, strided copies and casts match the CPU bit for bit") {
  for (DType t : {DType::f32, DType::bf16, DType::i32}) {
    std::vector<float> v = Tensor::full({7, 13}, -2.75f, t, kGpu).to_floats();
    CHECK(v == Tensor::full({7, 13}, -2.75f, t).to_floats());
  }
  Tensor x = randn({3, 7, 5, 13, 2});
  // A transpose, a narrowed view (offset storage) and both at once, in f32 and bf16.
  for (DType t : {DType::f32, DType::bf16}) {
    Tensor xc = x.to(t), xg = xc.to(kGpu);
    CHECK(bit_identical(xg.transpose(1, 3).contiguous(), xc.transpose(1, 3).contiguous()));
    CHECK(bit_identical(xg.narrow(2, 1, 3).contiguous(), xc.narrow(2, 1, 3).contiguous()));
    CHECK(bit_identical(xg.narrow(3, 2, 9).transpose(0, 4).transpose(1, 2).contiguous(),
                        xc.narrow(3, 2, 9).transpose(0, 4).transpose(1, 2).contiguous()));
  }
  Tensor mixed = Tensor::from_floats({2.7f, -2.7f, 0.5f, 1e9f, -3.0f, 1.0f / 3.0f}, {6});
  for (DType from : {DType::f32, DType::bf16, DType::i32})
    for (DType to : {DType::f32, DType::bf16, DType::i32}) {
      if (from == to) continue;
      CAPTURE(dtype_name(from));
      CAPTURE(dtype_name(to));
      Tensor src = mixed.to(from);
      CHECK(bit_identical(src.to(kGpu).to(to), src.to(to)));
    }
  // 67 elements: the 4-wide kernel's 16 groups and a tail of 3; a view one element in, which no
  // 4-element word aligns, takes the element-wise kernel (cuda/vec4.cuh).
  const Tensor longer = randn({67}, 3.0f);
  for (DType from : {DType::f32, DType::bf16})
    for (DType to : {DType::f32, DType::bf16, DType::i32}) {
      if (from == to) continue;
      const Tensor src = longer.to(from), on_gpu = src.to(kGpu);
      CHECK(bit_identical(on_gpu.to(to), src.to(to)));
      CHECK(bit_identical(on_gpu.narrow(0, 1, 66).to(to), src.narrow(0, 1, 66).to(to)));
    }
}

TEST_CASE("add, mul, sum, sum_squares and scale_") {
  Tensor a = randn({7, 13}), b = randn({7, 13});
  for (DType t : kDtypes) {
    compare_op("add", [](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {a, b}, t);
    compare_op("mul", [](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }, {a, b}, t);
    compare_op("sum", [](const std::vector<Tensor>& in) { return sum(in[0]); }, {a}, t);
  }
  Tensor big = randn({65, 1031});  // more elements than one block's share: two-pass reduction
  CHECK(sum_squares(big.to(kGpu)) == doctest::Approx(sum_squares(big)).epsilon(1e-10));
  CHECK(sum(big.to(kGpu)).item() == doctest::Approx(sum(big).item()).epsilon(1e-6));
  CHECK(sum_squares(big.to(DType::bf16).to(kGpu)) ==
        doctest::Approx(sum_squares(big.to(DType::bf16).to(DType::f32))).epsilon(1e-10));
  // Rows 1..64 start 1031 elements in, which no 4-element word aligns: the element-wise pass.
  CHECK(sum_squares(big.to(kGpu).narrow(0, 1, 64)) == doctest::Approx(sum_squares(big.narrow(0, 1, 64))).epsilon(1e-10));
  CHECK(sum(big.to(kGpu).narrow(0, 1, 64)).item() == doctest::Approx(sum(big.narrow(0, 1, 64)).item()).epsilon(1e-6));
  Tensor g = big.to(kGpu), c = big.clone();
  scale_(g, 0.37f);
  scale_(c, 0.37f);
  CHECK(bit_identical(g, c));
  // The element-wise kernels of add, mul and scale_: views starting 1031 elements in (no
  // 4-element word there); the aligned ones above take the 4-wide kernels, with a tail.
  {
    const Tensor x = big.narrow(0, 1, 64), y = big.narrow(0, 0, 64).clone();
    const Tensor xg = big.to(kGpu).narrow(0, 1, 64), yg = y.to(kGpu);
    CHECK(bit_identical(add(xg, yg), add(x, y)));
    CHECK(bit_identical(mul(xg, yg), mul(x, y)));
    Tensor scaled = xg.clone(), reference = x.clone();
    Tensor off_word = Tensor::zeros({scaled.numel() + 1}, DType::f32, kGpu).narrow(0, 1, scaled.numel());
    off_word.copy_from(scaled.reshape({scaled.numel()}));
    scale_(off_word, 0.37f);
    scale_(reference, 0.37f);
    CHECK(bit_identical(off_word.reshape(reference.shape()), reference));
  }
  // By a factor on the device, in f32 and bf16 storage.
  Tensor factor = Tensor::full({}, -0.37f, DType::f32);
  scale_(g, factor.to(kGpu));
  scale_(c, factor);
  CHECK(bit_identical(g, c));
  Tensor g16 = big.to(DType::bf16).to(kGpu), c16 = big.to(DType::bf16).to(DType::f32);
  scale_(g16, factor.to(kGpu));
  scale_(c16, factor);
  check_close("scale_ by a device factor (bf16)", g16, c16, kTolBf16);
  // Many tensors, one read: the same f64 sum as the CPU's.
  const uint64_t reads = host_reads();
  const double both = sum_squares(std::vector<Tensor>{big.to(kGpu), a.to(kGpu)});
  CHECK(host_reads() - reads == 1);
  CHECK(both == doctest::Approx(sum_squares(std::vector<Tensor>{big, a})).epsilon(1e-10));
  // A gradient norm's worth: 60 tensors (large, small, unaligned views) into one partial buffer
  // at running offsets, one second pass over all of them; the same bits when run again.
  std::vector<Tensor> cpu_many, gpu_many;
  for (int i = 0; i < 60; i++) {
    const Tensor t = i % 3 == 0 ? big : i % 3 == 1 ? a : big.narrow(0, 1, 64);
    cpu_many.push_back(t);
    gpu_many.push_back(i % 3 == 2 ? big.to(kGpu).narrow(0, 1, 64) : t.to(kGpu));
  }
  const double many = sum_squares(gpu_many);
  CHECK(many == doctest::Approx(sum_squares(cpu_many)).epsilon(1e-10));
  CHECK(sum_squares(gpu_many) == many);
}

TEST_CASE("scale_columns and row_inverse_norms: DoRA's per-feature scaling") {
  // 300 rows: more than column_dot's 128 row chunks, so its two-pass sum runs whole.
  Tensor x = randn({300, 70}), s = randn({70}), w = randn({37, 1031});
  for (DType t : kDtypes) {
    compare_op("scale_columns", [](const std::vector<Tensor>& in) {
      return scale_columns(in[0], in[1].dtype() == DType::f32 ? in[1] : cast(in[1], DType::f32));
    }, {x, s}, t);
    const Tensor wt = w.to(t);
    check_close("row_inverse_norms", row_inverse_norms(wt.to(kGpu)), row_inverse_norms(wt.to(DType::f32)), kTolF32);
  }
}

TEST_CASE("matmul: every transpose combination, batched and shared B") {
  for (DType t : kDtypes)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        for (int batched_b = 0; batched_b < 2; batched_b++) {
          CAPTURE(ta);
          CAPTURE(tb);
          CAPTURE(batched_b);
          const int64_t B = 3, M = 33, K = 65, N = 13;
          Shape sa = ta ? Shape{B, K, M} : Shape{B, M, K};
          Shape sb = tb ? Shape{N, K} : Shape{K, N};
          if (batched_b) sb.insert(sb.begin(), B);
          compare_op("matmul",
                     [&](const std::vector<Tensor>& in) { return matmul(in[0], in[1], ta, tb); },
                     {randn(sa), randn(sb)}, t);
        }
}

// The model's block linears in bf16 with f32 master weights: the same output and d(x) bits as
// linear(x, cast(w)), and a weight gradient that was never rounded to bf16 (within f32
// summation-order error of the CPU's dy^T x on the same values; bf16 would be off by ~2^-9).
TEST_CASE("master_linear: bf16 GEMMs on an f32 master weight, its gradient written in f32") {
  const Tensor x16 = randn({3, 7, 33}).to(DType::bf16), dy16 = randn({3, 7, 65}).to(DType::bf16);
  const Tensor w = randn({65, 33}, 0.5f);
  std::vector<Tensor> xs, ws, ys;
  for (bool fused : {true, false}) {
    xs.push_back(x16.to(kGpu));
    ws.push_back(w.to(kGpu));
    xs.back().set_requires_grad(true);
    ws.back().set_requires_grad(true);
    ys.push_back(fused ? master_linear(xs.back(), ws.back()) : linear(xs.back(), cast(ws.back(), DType::bf16)));
    backward(ys.back(), dy16.to(kGpu));
  }
  CHECK(ys[0].dtype() == DType::bf16);
  CHECK(bit_identical(ys[0], ys[1]));
  CHECK(bit_identical(xs[0].grad(), xs[1].grad()));
  REQUIRE(ws[0].grad().dtype() == DType::f32);
  const Tensor x = x16.to(DType::f32).reshape({21, 33}), dy = dy16.to(DType::f32).reshape({21, 65});
  check_close("master_linear d(w)", ws[0].grad(), matmul(dy, x, true, false), kTolF32);
  check_close("cast + linear d(w)", ws[1].grad(), matmul(dy, x, true, false), kTolBf16);
  // A second micro-batch: its GEMM adds into the f32 gradient in place (beta 1).
  const void* buffer = ws[0].grad().data_ptr();
  backward(master_linear(xs[0], ws[0]), dy16.to(kGpu));
  CHECK(ws[0].grad().data_ptr() == buffer);
  check_close("master_linear d(w), two micro-batches", ws[0].grad(), add_scaled(matmul(dy, x, true, false), matmul(dy, x, true, false), 1.0f), kTolF32);
}

// One input read by three linears (q, k and v's projections read one normed input): the second
// and third d(input) GEMMs add into the gradient so far (beta 1, a bf16 C in bf16), so the
// backward runs no axpby of its own; the sum as the CPU's.
TEST_CASE("an input three linears read: its gradient summed by beta-1 GEMMs, f32 and bf16") {
  Backend& be = backend(kGpu);
  for (DType t : kDtypes) {
    CAPTURE(dtype_name(t));
    const Tensor x = randn({7, 33}).to(t), dy = randn({7, 65}).to(t);
    const std::vector<Tensor> ws{randn({65, 33}, 0.5f), randn({65, 33}, 0.5f), randn({65, 33}, 0.5f)};
    Tensor xg = x.to(kGpu);
    xg.set_requires_grad(true);
    const Tensor h = mul(xg, Tensor::full({7, 33}, 1.0f, t, kGpu));  // an activation, not a leaf
    Tensor total;
    for (const Tensor& w : ws) {
      const Tensor y = master_linear(h, w.to(kGpu));
      total = total.defined() ? add(total, y) : y;
    }
    OpTimer::totals().clear();
    be.set_op_split(true);
    backward(total, dy.to(kGpu));
    be.set_op_split(false);
    CHECK(OpTimer::totals().count("axpby") == 0);
    OpTimer::totals().clear();
    // The compute copies are the masters rounded to t: the reference sums dy w_i in f32.
    Tensor w_sum = ws[0].to(t).to(DType::f32);
    for (size_t i = 1; i < ws.size(); i++) w_sum = add(w_sum, ws[i].to(t).to(DType::f32));
    check_close("d(x)", xg.grad(), matmul(dy.to(DType::f32), w_sum), tolerance(t));
  }
}

TEST_CASE("embedding: gather and deterministic scatter-add of repeated ids") {
  const int64_t V = 37, C = 65;
  Tensor table = randn({V, C});
  Tensor ids = randint({3, 13}, 0, 11);  // ids below 11 of 37: many repeats, many unused rows
  for (DType t : kDtypes)
    compare_op("embedding",
               [](const std::vector<Tensor>& in) { return embedding(in[0], in[1]); },
               {ids, table}, t);
  // A bad id is found on the device without a wait, and reported at the next read.
  Tensor bad = Tensor::from_ints({3, 37}, {2}).to(kGpu);
  Tensor rows = embedding(bad, table.to(kGpu));
  CHECK_THROWS_WITH(rows.to_floats(), doctest::Contains("token id 37 outside the vocabulary of 37"));
  CHECK(rows.to_floats()[C] == 0.0f);  // reported once; its row zeros, no read out of bounds

  // The same gradients twice: bit-identical tables (no atomics, sorted by id, token order kept).
  Tensor many = randint({4, 257}, 0, 5).to(kGpu);
  Tensor dout = randn({4, 257, C}).to(kGpu);
  for (DType t : kDtypes) {
    Tensor first, second;
    for (Tensor* result : {&first, &second}) {
      Tensor leaf = table.to(kGpu).to(t);
      leaf.set_requires_grad(true);
      backward(embedding(many, leaf), dout.to(t));
      *result = leaf.grad();
    }
    CHECK(bit_identical(first, second));
  }
  // bf16 rows from the f32 master table: the rows of embedding(cast(table)), and the gradient
  // summed into f32 (the CPU's sums of the same bf16 gradient rows, to f32 rounding).
  Tensor master = table.to(kGpu);
  master.set_requires_grad(true);
  const Tensor dout16 = dout.to(DType::bf16);
  const Tensor rows16 = embedding(many, master, -1, DType::bf16);
  CHECK(bit_identical(rows16, embedding(many, cast(table.to(kGpu), DType::bf16))));
  backward(rows16, dout16);
  REQUIRE(master.grad().dtype() == DType::f32);
  Tensor reference = table.clone();
  reference.set_requires_grad(true);
  backward(embedding(many.to(Device::cpu()), reference), dout16.to(DType::f32).to(Device::cpu()));
  check_close("embedding's f32 gradient from bf16 rows", master.grad(), reference.grad(), kTolF32);
  // f32 rows from a bf16 table (sampling from `bfloat16: true`'s weights): the bf16 values, exactly.
  const Tensor table16 = cast(table.to(kGpu), DType::bf16);
  CHECK(bit_identical(embedding(many, table16, -1, DType::f32), cast(embedding(many, table16), DType::f32)));

  // A table that already has a gradient (a tied lm_head's, formed first in a step's backward):
  // the rows are added into it in place; the padding row gets none of them, as on the CPU.
  const Tensor x = randn({4, C}), logits_seed = randn({4, V});
  for (DType t : kDtypes)
    for (const int64_t padding : {-1, 2}) {
      CAPTURE(padding);
      Tensor gpu = table.to(kGpu).to(t), cpu = table.clone();
      for (Tensor* leaf : {&gpu, &cpu}) leaf->set_requires_grad(true);
      backward(linear(x.to(kGpu).to(t), gpu), logits_seed.to(kGpu).to(t));
      backward(linear(x, cpu), logits_seed);
      const void* buffer = gpu.grad().data_ptr();
      backward(embedding(many, gpu, padding), dout.to(t));
      backward(embedding(many.to(Device::cpu()), cpu, padding), dout.to(Device::cpu()));
      if (padding < 0) CHECK(gpu.grad().data_ptr() == buffer);
      check_close(std::string("embedding's rows added into a tied table's gradient, ") + dtype_name(t), gpu.grad(),
                  cpu.grad(), tolerance(t));
    }
}

// Rows of 65 take the element-wise kernels, rows of 68 the 4-wide ones (cuda/cuda_rmsnorm.cu).
TEST_CASE("rmsnorm: values, gradients, deterministic dweight") {
  for (int64_t C : {65, 68}) {
    Tensor x = randn({3, 7, C}), w = randn({C});
    for (DType t : kDtypes)
      compare_op("rmsnorm",
                 [](const std::vector<Tensor>& in) { return rmsnorm(in[0], in[1], 1e-5f); },
                 {x, w}, t);
  }
  Tensor w = randn({65});
  Tensor big = randn({515, 33}).to(kGpu), dy = randn({515, 33}).to(kGpu);  // > 128 row chunks
  Tensor first, second;
  for (Tensor* result : {&first, &second}) {
    Tensor leaf = w.narrow(0, 0, 33).clone().to(kGpu);
    leaf.set_requires_grad(true);
    backward(rmsnorm(big, leaf, 1e-5f), dy);
    *result = leaf.grad();
  }
  CHECK(bit_identical(first, second));
}

TEST_CASE("add_rmsnorm: the fused residual add and norm, both outputs used") {
  for (int64_t C : {65, 68}) {
    Tensor x = randn({3, 7, C}), r = randn({3, 7, C}), w = randn({C});
    for (DType t : kDtypes)
      compare_op("add_rmsnorm",
                 [](const std::vector<Tensor>& in) {
                   AddNorm o = add_rmsnorm(in[0], in[1], in[2], 1e-5f);
                   return add_scaled(o.normed, o.sum, 0.7f);
                 },
                 {x, r, w}, t);
  }
}

// Recompute segments decide whether a block's last add fuses with the next norm, and gradients
// with and without recompute are the same bits: so are the fused and unfused pairs, in bf16,
// at either row width.
TEST_CASE("add_rmsnorm equals add then rmsnorm bit for bit, values and gradients") {
  for (int64_t C : {65, 68}) {
    CAPTURE(C);
    const Tensor dy = randn({21, C}).to(DType::bf16).to(kGpu), ds = randn({21, C}).to(DType::bf16).to(kGpu);
    const std::vector<Tensor> values{randn({21, C}), randn({21, C}), randn({C})};
    std::vector<Tensor> outs, grads;
    for (bool fused : {true, false}) {
      std::vector<Tensor> in;
      for (const Tensor& t : values) {
        in.push_back(t.to(DType::bf16).to(kGpu));
        in.back().set_requires_grad(true);
      }
      AddNorm o{Tensor(), Tensor()};
      if (fused) {
        o = add_rmsnorm(in[0], in[1], in[2], 1e-5f);
      } else {
        o.sum = add(in[0], in[1]);
        o.normed = rmsnorm(o.sum, in[2], 1e-5f);
      }
      backward(add(mul(o.normed, dy), mul(o.sum, ds)), Tensor());
      outs.insert(outs.end(), {o.sum, o.normed});
      for (const Tensor& t : in) grads.push_back(t.grad());
    }
    CHECK(bit_identical(outs[0], outs[2]));
    CHECK(bit_identical(outs[1], outs[3]));
    for (int i = 0; i < 3; i++) CHECK(bit_identical(grads[i], grads[3 + i]));
  }
}

TEST_CASE("rope: llama3 scaling, positions per token, forward and inverse") {
  const RopeConfig c{500000.0f, 8.0f, 1.0f, 4.0f, 8192};
  std::vector<int32_t> p;
  for (int b = 0; b < 2; b++)
    for (int s = 0; s < 13; s++) p.push_back(b == 0 ? s : 70000 + 37 * s);  // large angles too
  Tensor pos = Tensor::from_ints(p, {2, 13});
  for (int64_t D : {64, 6})  // 4 pairs a thread; one (3 pairs a half head)
    for (DType t : kDtypes)
      compare_op("rope", [&](const std::vector<Tensor>& in) { return rope(in[0], in[1], c); },
                 {randn({2, 13, 3, D}), pos}, t);
}

TEST_CASE("swiglu") {
  Tensor g = randn({7, 33}, 2.0f), u = randn({7, 33});
  for (DType t : kDtypes)
    compare_op("swiglu", [](const std::vector<Tensor>& in) { return swiglu(in[0], in[1]); },
               {g, u}, t);
}

TEST_CASE("dropout: the CPU's mask") {
  Tensor x = randn({7, 65});
  for (DType t : kDtypes)
    compare_op("dropout", [](const std::vector<Tensor>& in) { return dropout(in[0], 0.25f, 11); },
               {x}, t);
}

TEST_CASE("add_uniform_noise: the CPU's noise") {
  Tensor x = randn({33, 70});
  for (DType t : kDtypes)
    compare_op("add_uniform_noise", [](const std::vector<Tensor>& in) { return add_uniform_noise(in[0], 0.3f, 17); }, {x}, t);
}

// Sparse fine-tuning's masks (train/constant_pruning.h), in place, f32 and bf16.
TEST_CASE("multiply_by_mask: the CPU's zeros, the other elements untouched") {
  const Tensor x = randn({13, 65});
  Tensor keep = Tensor::empty({13, 65}, DType::u8, Device::cpu());
  for (int64_t i = 0; i < keep.numel(); i++) keep.data<uint8_t>()[i] = (i * 7) % 3 != 0;
  for (DType t : kDtypes) {
    CAPTURE(dtype_name(t));
    Tensor cpu = x.to(t).to(DType::f32), gpu = x.to(kGpu).to(t);
    backend(Device::cpu()).multiply_by_mask(cpu, keep);
    backend(kGpu).multiply_by_mask(gpu, keep.to(kGpu));
    CHECK(gpu.to(DType::f32).to(Device::cpu()).to_floats() == cpu.to_floats());
  }
}

TEST_CASE("attention (eager): GQA 1, 2 and 4, causal and not") {
  for (DType t : kDtypes)
    for (int64_t ratio : {1, 2, 4})
      for (bool causal : {false, true}) {
        CAPTURE(ratio);
        CAPTURE(causal);
        const int64_t B = 2, S = 13, Hkv = 2, H = Hkv * ratio, D = 16;
        compare_op("attention",
                   [&](const std::vector<Tensor>& in) {
                     return attention(in[0], in[1], in[2], causal);
                   },
                   {randn({B, S, H, D}), randn({B, S, Hkv, D}), randn({B, S, Hkv, D})}, t);
      }
}

TEST_CASE("cross_entropy: ignored rows, all ignored, out-of-range targets") {
  const int64_t N = 13, V = 1031;
  Tensor logits = randn({N, V}, 3.0f);
  Tensor targets = Tensor::from_ints({3, -100, 1030, 0, 5, -100, 7, 1, 999, 2, 500, 64, 65}, {N});
  for (DType t : kDtypes)
    compare_op("cross_entropy",
               [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); },
               {logits, targets}, t);
  // V = 1031 leaves rows off the 4-element words: the element-wise kernels; 1028 the 4-wide ones
  // (cuda/vec4.cuh), whose last word a thread takes alone (257 words, 512 threads a row).
  Tensor targets4 = Tensor::from_ints({3, -100, 1027, 0, 5, -100, 7, 1, 999, 2, 500, 64, 65}, {N});
  for (DType t : kDtypes)
    compare_op("cross_entropy (4-wide)",
               [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); },
               {logits.narrow(1, 0, V - 3).contiguous(), targets4}, t);
  // A NaN logit makes the loss NaN, as on the CPU: also where it is the first value its thread
  // sees (column 0, before any finite one), and in a row of -inf and NaN alone.
  for (const int64_t width : {V, V - 3}) {
    std::vector<float> values = logits.narrow(1, 0, width).contiguous().to_floats();
    values[0] = NAN;
    for (int64_t j = 0; j < width; j++) values[width + j] = j == 5 ? NAN : -INFINITY;
    const Tensor with_nan = Tensor::from_floats(values, {N, width}), target = Tensor::from_ints({3}, {1});
    for (const int64_t row : {0, 1}) {
      CAPTURE(width);
      CAPTURE(row);
      const Tensor one = with_nan.narrow(0, row, 1).contiguous();
      CHECK(std::isnan(cross_entropy(one, target).item()));  // the CPU (f32 only)
      for (DType t : kDtypes) CHECK(std::isnan(cross_entropy(one.to(kGpu).to(t), target.to(kGpu)).item()));
    }
  }
  Tensor none = Tensor::from_ints(std::vector<int32_t>(N, -100), {N}).to(kGpu);
  CHECK(cross_entropy(logits.to(kGpu), none).item() == 0.0f);
  Tensor bad = Tensor::from_ints(std::vector<int32_t>(N, int32_t(V)), {N}).to(kGpu);
  CHECK_THROWS_WITH(cross_entropy(logits.to(kGpu), bad).item(),
                    doctest::Contains("target 1031 outside the vocabulary of 1031"));
}

TEST_CASE("linear_cross_entropy: the chunked lm_head loss on CUDA") {
  const int64_t N = 13, C = 33;
  Tensor h = randn({N, C});
  Tensor targets = Tensor::from_ints({3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 64, 6}, {N});
  for (int64_t V : {65, 68})  // element-wise and 4-wide loss kernels
    for (DType t : kDtypes)
      compare_op("linear_cross_entropy",
                 [](const std::vector<Tensor>& in) {
                   return linear_cross_entropy(in[0], in[1], in[2], kIgnoreIndex, 4);
                 },
                 {h, randn({V, C}), targets}, t);
}

// EAFT: the top-k entropy weights (each thread's k best, merged by k block maxima) and the
// weighted loss; ties among a row's largest logits (the repeated column) count once each. DFT:
// each row's target probability (target_prob_weights).
TEST_CASE("linear_cross_entropy with EAFT (topk_entropy_weights) and DFT (target_prob_weights) on CUDA") {
  const int64_t N = 13, C = 33, V = 300;
  Tensor h = randn({N, C}), w = randn({V, C});
  std::vector<float> rows = w.to_floats();
  std::copy(rows.begin(), rows.begin() + C, rows.begin() + 5 * C);  // vocab rows 0 and 5 equal: tied logits
  w = Tensor::from_floats(rows, {V, C});
  Tensor targets = Tensor::from_ints({3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 299, 6}, {N});
  for (int64_t k : {1, 20, 64})
    for (DType t : kDtypes) {
      CAPTURE(k);
      compare_op("linear_cross_entropy eaft",
                 [k](const std::vector<Tensor>& in) {
                   return linear_cross_entropy(in[0], in[1], in[2], kIgnoreIndex, 4, Tensor(), {k, 0.7f});
                 },
                 {h, w, targets}, t);
    }
  // DFT weighs each row's loss by its target probability p = exp(z_t - lse), which turns the
  // absolute error of bf16 logits (up to 2^-9 |z|, z_t's and lse's) into a relative error of p:
  // unit-scale logits (h / sqrt(C), as a trained model's) and a tolerance that adds it. On an
  // H200, with logits of std sqrt(C), p differed by 2.8% relative (2026-11-30).
  TokenWeighting dft;
  dft.dft = true;
  std::vector<float> hs = h.to_floats();
  for (float& x : hs) x /= std::sqrt(static_cast<float>(C));
  const Tensor h_unit = Tensor::from_floats(hs, {N, C});
  const std::vector<float> ws = w.to_floats();
  float max_logit = 0.0f;
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < V; j++) {
      float z = 0.0f;
      for (int64_t c = 0; c < C; c++) z += hs[i * C + c] * ws[j * C + c];
      max_logit = std::max(max_logit, std::fabs(z));
    }
  const float dft_tol = kTolBf16 + 2.0f * std::ldexp(max_logit, -9);
  CAPTURE(dft_tol);
  for (DType t : kDtypes)
    compare_op("linear_cross_entropy dft",
               [dft](const std::vector<Tensor>& in) {
                 return linear_cross_entropy(in[0], in[1], in[2], kIgnoreIndex, 4, Tensor(), dft);
               },
               {h_unit, w, targets}, t, dft_tol);
}

TEST_CASE("linear_sequence_logps: DPO's per-sequence log-likelihoods (scale_rows in backward) on CUDA") {
  const int64_t N = 13, C = 33, V = 65;
  Tensor h = randn({N, C}), w = randn({V, C});
  Tensor targets = Tensor::from_ints({3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 64, 6}, {N});
  Tensor sequences = Tensor::from_ints({0, 3, 0, 1, 1, 2, 2, 3, 3, 0, 2, 1, 0}, {N});
  for (DType t : kDtypes)
    compare_op("linear_sequence_logps",
               [](const std::vector<Tensor>& in) { return linear_sequence_logps(in[0], in[1], in[2], in[3], 4, 4); },
               {h, w, targets, sequences}, t);
}

// The fused losses handed an f32 master under bf16 compute (model/llama.cpp's loss_head_weight):
// they cast it themselves and form its gradient in f32, summed over the chunks (4 rows each here)
// in f32 (engine/ops/head_weight.h); the same loss as with the weight cast before them, and
// gradients as the CPU's on the same bf16 values.
TEST_CASE("linear_cross_entropy and linear_sequence_logps on an f32 master under bf16: an f32 gradient") {
  const int64_t N = 13, C = 33, V = 65;
  const Tensor h16 = randn({N, C}).to(DType::bf16), w = randn({V, C}, 0.5f);
  const Tensor targets = Tensor::from_ints({3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 64, 6}, {N});
  const Tensor sequences = Tensor::from_ints({0, 3, 0, 1, 1, 2, 2, 3, 3, 0, 2, 1, 0}, {N});
  const auto losses = [&](const Tensor& hidden, const Tensor& weight) {
    return std::vector<Tensor>{linear_cross_entropy(hidden, weight, targets.to(hidden.device()), kIgnoreIndex, 4),
                               linear_sequence_logps(hidden, weight, targets.to(hidden.device()),
                                                     sequences.to(hidden.device()), 4, 4)};
  };
  for (size_t which : {0, 1}) {
    CAPTURE(which);
    Tensor master = w.to(kGpu), reference = w.to(DType::bf16).to(DType::f32);
    master.set_requires_grad(true);
    reference.set_requires_grad(true);
    const Tensor ours = losses(h16.to(kGpu), master)[which];
    const Tensor cpu = losses(h16.to(DType::f32), reference)[which];
    const Tensor seed = which == 0 ? Tensor::full({}, 1.0f, DType::f32) : randn({4});
    backward(ours, seed.to(kGpu));
    backward(cpu, seed);
    check_close("loss", ours, cpu, kTolBf16);
    REQUIRE(master.grad().dtype() == DType::f32);
    check_close("d(master)", master.grad(), reference.grad(), kTolBf16);
    // The weight cast before the loss gives the same loss.
    check_close("loss, weight cast first", losses(h16.to(kGpu), cast(w.to(kGpu), DType::bf16))[which], ours, kTolF32);
  }
}

TEST_CASE("adamw: the fused update matches the CPU over several steps") {
  const int64_t n = 7 * 33;
  Tensor p0 = randn({n});
  for (DType grad_dtype : kDtypes) {
    CAPTURE(dtype_name(grad_dtype));
    Tensor pc = p0.clone(), mc = Tensor::zeros({n}, DType::f32),
           vc = Tensor::zeros({n}, DType::f32);
    Tensor pg = p0.to(kGpu), mg = Tensor::zeros({n}, DType::f32, kGpu),
           vg = Tensor::zeros({n}, DType::f32, kGpu);
    for (int step = 1; step <= 3; step++) {
      Tensor grad = randn({n}).to(grad_dtype);
      const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f;
      AdamWArgs args = adamw_args({b1, b2, 1e-8f, 0.1f}, lr, step, true);
      args.grad_scale = step == 2 ? 0.37f : 1.0f;  // clipping's factor, inside the update
      backend(Device::cpu()).adamw(pc, grad.to(DType::f32), mc, vc, args);
      backend(kGpu).adamw(pg, grad.to(kGpu), mg, vg, args);
    }
    check_close("adamw param", pg, pc, kTolF32);
    check_close("adamw m", mg, mc, kTolF32);
    check_close("adamw v", vg, vc, kTolF32);
    // The update of a view one element in (as a ZeRO slice can be: no 4-element word aligns) is
    // the element-wise kernel's; it gives the 4-wide kernel's bits on the same values.
    Tensor grad = randn({n}).to(grad_dtype).to(kGpu);
    const AdamWArgs args = adamw_args({0.9f, 0.999f, 1e-8f, 0.1f}, 1e-2f, 4, true);
    Tensor p_view = pg.clone().narrow(0, 1, n - 1), m_view = mg.clone().narrow(0, 1, n - 1),
           v_view = vg.clone().narrow(0, 1, n - 1);
    Tensor p_whole = pg.narrow(0, 1, n - 1).clone(), m_whole = mg.narrow(0, 1, n - 1).clone(),
           v_whole = vg.narrow(0, 1, n - 1).clone();
    const Tensor g_part = grad.narrow(0, 1, n - 1);
    backend(kGpu).adamw(p_view, g_part, m_view, v_view, args);
    backend(kGpu).adamw(p_whole, g_part.clone(), m_whole, v_whole, args);
    CHECK(bit_identical(p_view.contiguous(), p_whole));
    CHECK(bit_identical(m_view.contiguous(), m_whole));
    CHECK(bit_identical(v_view.contiguous(), v_whole));
  }
}

TEST_CASE("adopt: the fused update matches the CPU over several steps, the first one filling v only") {
  const int64_t n = 7 * 33;
  Tensor p0 = randn({n});
  for (DType grad_dtype : kDtypes) {
    CAPTURE(dtype_name(grad_dtype));
    Tensor pc = p0.clone(), mc = Tensor::zeros({n}, DType::f32), vc = Tensor::zeros({n}, DType::f32);
    Tensor pg = p0.to(kGpu), mg = Tensor::zeros({n}, DType::f32, kGpu), vg = Tensor::zeros({n}, DType::f32, kGpu);
    for (int step = 0; step < 4; step++) {
      Tensor grad = randn({n}).to(grad_dtype);
      const AdoptArgs args{1e-2f, 0.9f, 0.9999f, 1e-6f, 0.1f, std::pow(float(step), 0.25f), step == 0};
      backend(Device::cpu()).adopt(pc, grad.to(DType::f32), mc, vc, args);
      backend(kGpu).adopt(pg, grad.to(kGpu), mg, vg, args);
    }
    check_close("adopt param", pg, pc, kTolF32);
    check_close("adopt m", mg, mc, kTolF32);
    check_close("adopt v", vg, vc, kTolF32);
  }
}

// Lion's sign step: an element whose interpolated momentum is within rounding of 0 may step the
// other way on the GPU (FMA contraction), so a few elements may differ by 2 lr; m as the CPU's.
TEST_CASE("lion: the fused update matches the CPU over several steps") {
  const int64_t n = 7 * 33;
  Tensor p0 = randn({n});
  for (DType grad_dtype : kDtypes) {
    CAPTURE(dtype_name(grad_dtype));
    Tensor pc = p0.clone(), mc = Tensor::zeros({n}, DType::f32);
    Tensor pg = p0.to(kGpu), mg = Tensor::zeros({n}, DType::f32, kGpu);
    for (int step = 0; step < 4; step++) {
      Tensor grad = randn({n}).to(grad_dtype);
      const LionArgs args{1e-2f, 0.9f, 0.99f, 0.1f, step % 2 ? 0.5f : 1.0f};
      backend(Device::cpu()).lion(pc, grad.to(DType::f32), mc, args);
      backend(kGpu).lion(pg, grad.to(kGpu), mg, args);
    }
    const std::vector<float> a = pg.to(Device::cpu()).to_floats(), b = pc.to_floats();
    int64_t apart = 0;
    for (int64_t i = 0; i < n; i++) apart += std::fabs(a[i] - b[i]) > 1e-5f;
    CHECK(apart <= 2);
    check_close("lion m", mg, mc, kTolF32);
  }
}

TEST_CASE("ademamix: the fused update matches the CPU over several steps") {
  const int64_t n = 7 * 33;
  Tensor p0 = randn({n});
  for (DType grad_dtype : kDtypes) {
    CAPTURE(dtype_name(grad_dtype));
    std::vector<Tensor> c, g;  // param, m1, m2, nu
    for (int k = 0; k < 4; k++) {
      c.push_back(k == 0 ? p0.clone() : Tensor::zeros({n}, DType::f32));
      g.push_back(k == 0 ? p0.to(kGpu) : Tensor::zeros({n}, DType::f32, kGpu));
    }
    for (int step = 1; step <= 4; step++) {
      Tensor grad = randn({n}).to(grad_dtype);
      const float bias1 = 1.0f - std::pow(0.9f, float(step)), bias2_sqrt = std::sqrt(1.0f - std::pow(0.999f, float(step)));
      AdemamixArgs args{1e-2f, 0.9f, 0.999f, 0.9999f, 5.0f, 1e-8f, 0.1f, bias1, bias2_sqrt};
      args.grad_scale = step == 2 ? 0.5f : 1.0f;
      backend(Device::cpu()).ademamix(c[0], grad.to(DType::f32), c[1], c[2], c[3], args);
      backend(kGpu).ademamix(g[0], grad.to(kGpu), g[1], g[2], g[3], args);
    }
    for (int k = 0; k < 4; k++) check_close("ademamix param and moments", g[k], c[k], kTolF32);
  }
}

// Adafactor on a matrix whose column sums take two chunks of rows and on a vector, with weight
// decay and clipping's factor: the same sums in other orders, so within f32 rounding.
TEST_CASE("adafactor: the update matches the CPU's on a matrix and a vector over several steps") {
  for (const Shape& shape : {Shape{300, 37}, Shape{7 * 33}}) {
    const bool matrix = shape.size() == 2;
    Tensor p0 = randn(shape);
    for (DType grad_dtype : kDtypes) {
      CAPTURE(dtype_name(grad_dtype));
      CAPTURE(matrix);
      const Shape row_shape = matrix ? Shape{shape[0]} : shape;
      Tensor pc = p0.clone(), rc = Tensor::zeros(row_shape, DType::f32), cc, pg = p0.to(kGpu);
      Tensor rg = Tensor::zeros(row_shape, DType::f32, kGpu), cg;
      if (matrix) {
        cc = Tensor::zeros({shape[1]}, DType::f32);
        cg = Tensor::zeros({shape[1]}, DType::f32, kGpu);
      }
      for (int step = 1; step <= 3; step++) {
        Tensor grad = randn(shape, 0.1f).to(grad_dtype);
        AdafactorArgs args;
        const double beta2t = 1.0 - std::pow(double(step), -0.8);
        args.lr = 1e-2f;
        args.beta2t = float(beta2t);
        args.one_minus_beta2t = float(1.0 - beta2t);
        args.decay_step = -1e-3f;
        args.grad_scale = step == 2 ? 0.5f : 1.0f;
        backend(Device::cpu()).adafactor(pc, grad.to(DType::f32), rc, cc, args);
        backend(kGpu).adafactor(pg, grad.to(kGpu), rg, cg, args);
      }
      check_close("adafactor param", pg, pc, kTolF32);
      check_close("adafactor row", rg, rc, kTolF32);
      if (matrix) check_close("adafactor col", cg, cc, kTolF32);
    }
  }
}

// llm_bench step's split on a GPU (cuda/op_split.h): each op's device time under its name, the
// GEMM's too (cuBLASLt has no launch check of ours); off again, nothing more is recorded.
TEST_CASE("the op split: a GEMM's and an rmsnorm's device time under their names") {
  Backend& be = backend(kGpu);
  // Large enough that each op's kernels last microseconds, above the events' resolution.
  const Tensor a = randn({2048, 2048}).to(kGpu), w = Tensor::full({2048}, 1.0f, DType::f32, kGpu);
  OpTimer::totals().clear();
  be.set_op_split(true);
  const Tensor normed = rmsnorm(matmul(a, a, false, true), w, 1e-5f);
  be.set_op_split(false);
  std::map<std::string, OpTimer::Total> split = OpTimer::totals();
  CHECK(split["matmul"].seconds > 0.0);
  CHECK(split["matmul"].calls == 1);
  CHECK(split["rmsnorm"].seconds > 0.0);
  CHECK(split["rmsnorm"].calls == 1);
  rmsnorm(a, w, 1e-5f);
  be.synchronize();
  CHECK(OpTimer::totals() == split);
  OpTimer::totals().clear();
}

int main(int argc, char** argv) {
  if (device_count(DeviceType::cuda) == 0) {
    std::printf("skipped: no CUDA device visible\n");
    return 77;
  }
  // Every GEMM shape's first call also times cuBLASLt's candidates (cuda_matmul.cu) into scratch:
  // run under it, every GEMM result here shows the timing leaves the caller's output alone.
  setenv("LLM_GEMM_CANDIDATES", "4", 0);
  return doctest::Context(argc, argv).run();
}
