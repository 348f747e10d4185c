// GPU (ctest label gpu): every CUDA op against the CPU reference (the losses in test_gpu_loss, the
// optimizers' updates in test_gpu_optimizers, the low-precision ops in test_gpu_low_precision),
// forward and gradients through the autograd ops, on odd shapes (7, 13, 33, 65: no multiple of a
// block or vector width), by test/gpu_op_compare.h.
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
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "engine/backend.h"
#include "engine/op_timer.h"
#include "engine/ops.h"
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
      CAPTURE(std::string(dtype_name(from)));
      CAPTURE(std::string(dtype_name(to)));
      Tensor src = mixed.to(from);
      CHECK(bit_identical(src.to(kGpu).to(to), src.to(to)));
    }
  // 67 elements: the wide kernel's 16 words of 4 (8 of 8 with bf16 on either side) and a tail of
  // 3; a view one element in, which no word aligns, takes the element-wise kernel (cuda/vec.cuh).
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
  // 150 aligned tensors, a bf16 one among them: launches of at most 64 tensors of one dtype
  // (cuda/cuda_reduce.cu's TensorBatch), split where the dtype changes.
  std::vector<Tensor> cpu_aligned, gpu_aligned;
  for (int i = 0; i < 150; i++) {
    const Tensor t = i == 70 ? big.to(DType::bf16) : i % 2 == 0 ? a : randn({4 * (i % 7) + i % 4});
    cpu_aligned.push_back(t.dtype() == DType::bf16 ? t.to(DType::f32) : t);
    gpu_aligned.push_back(t.to(kGpu));
  }
  const double aligned = sum_squares(gpu_aligned);
  CHECK(aligned == doctest::Approx(sum_squares(cpu_aligned)).epsilon(1e-10));
  CHECK(sum_squares(gpu_aligned) == aligned);
}

TEST_CASE("scale_columns and row_inverse_norms: DoRA's per-feature scaling") {
  // 300 rows: more than column_dot's 128 row chunks, so its two-pass sum runs whole. Rows of 70
  // take the element-wise scaling, rows of 72 the wide one; rows of 1031 the element-wise norms,
  // of 1032 the wide ones.
  Tensor x = randn({300, 70}), s = randn({70}), w = randn({37, 1031}), w1032 = randn({37, 1032});
  Tensor x72 = randn({300, 72}), s72 = randn({72});
  for (DType t : kDtypes) {
    for (const auto& [xs, ss] : {std::pair{x, s}, std::pair{x72, s72}})
      compare_op("scale_columns", [](const std::vector<Tensor>& in) {
        return scale_columns(in[0], in[1].dtype() == DType::f32 ? in[1] : cast(in[1], DType::f32));
      }, {xs, ss}, t);
    for (const Tensor& weight : {w, w1032}) {
      const Tensor wt = weight.to(t);
      check_close("row_inverse_norms", row_inverse_norms(wt.to(kGpu)), row_inverse_norms(wt.to(DType::f32)), kTolF32);
    }
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
    CAPTURE(std::string(dtype_name(t)));
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

TEST_CASE("replace_rows: the CPU's rows and gradients") {
  const Tensor index = Tensor::from_ints({36, 0, 5, 17}, {4});
  for (DType t : kDtypes)
    compare_op("replace_rows", [](const std::vector<Tensor>& in) { return replace_rows(in[0], in[1], in[2]); },
               {randn({37, 65}), index, randn({4, 65})}, t);
}

TEST_CASE("embedding: gather and deterministic scatter-add of repeated ids") {
  // Rows of 65 take the element-wise gather, rows of 72 the wide one (8 bf16 or 4 f32 a load).
  for (int64_t C : {65, 72}) {
    CAPTURE(C);
    const int64_t V = 37;
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
}

// Rows of 65 take the element-wise kernels, rows of 72 the wide ones (8 bf16 or 4 f32 a load,
// cuda/cuda_rmsnorm.cu): the forward one warp a row of 1 word a lane; 1000 and 2048 take 4 and 8
// words a lane in bf16 (2048 f32 and 4104 the forward's block a row); rows of 16392 need the
// backward's dweight sums beyond 48 KiB of shared memory, and rows of 12288 (GPT-3's width) fit
// 48 KiB only without the kernel's static share.
TEST_CASE("rmsnorm: values, gradients, deterministic dweight") {
  for (int64_t C : {65, 72, 1000, 2048, 4104, 12288, 16392}) {
    Tensor x = randn({3, 7, C}), w = randn({C});
    for (DType t : kDtypes)
      compare_op("rmsnorm",
                 [](const std::vector<Tensor>& in) { return rmsnorm(in[0], in[1], 1e-5f); },
                 {x, w}, t);
  }
  Tensor w = randn({65});
  Tensor big = randn({515, 33}).to(kGpu), dy = randn({515, 33}).to(kGpu);  // > 256 row chunks
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
  for (int64_t C : {65, 72, 2048, 4104}) {
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
// at either row width and either forward kernel (a warp or a block a row).
TEST_CASE("add_rmsnorm equals add then rmsnorm bit for bit, values and gradients") {
  for (int64_t C : {65, 72, 2048, 4104}) {
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
  for (int64_t D : {64, 8, 6})  // a 16-byte word of pairs a thread; 4 (f32) or one (bf16); one
    for (int64_t H : {3, 8})  // one head a thread; 4 heads sharing their angles
      for (DType t : kDtypes)
        compare_op("rope", [&](const std::vector<Tensor>& in) { return rope(in[0], in[1], c); },
                   {randn({2, 13, H, D}), pos}, t);
}

TEST_CASE("ssmax: SSMax's per-query factors (ssmax_scale) and the query rows scaled by them") {
  std::vector<int32_t> p;
  for (int s = 0; s < 2 * 17; s++) p.push_back(s < 17 ? s : 100000 + 31 * s);
  Tensor pos = Tensor::from_ints(p, {2, 17});
  for (DType t : kDtypes)
    compare_op("ssmax", [](const std::vector<Tensor>& in) { return scale_rows(in[0], ssmax_scale(in[1], 0.43f, -0.1f)); },
               {randn({34, 3, 8}), pos}, t);
}

TEST_CASE("swiglu") {
  Tensor g = randn({7, 33}, 2.0f), u = randn({7, 33});
  for (DType t : kDtypes)
    compare_op("swiglu", [](const std::vector<Tensor>& in) { return swiglu(in[0], in[1]); },
               {g, u}, t);
}

// Both ops take 16-byte words (cuda/cuda_dropout.cu): 455 and 2310 elements are words and a tail;
// a view one element in, which no word aligns, takes the element-wise kernel and must give the
// same bits as its contiguous copy, whose elements the wide kernel draws by the same indices.
void check_both_widths(const std::function<Tensor(const Tensor&)>& f, const Tensor& x) {
  for (DType t : kDtypes) {
    CAPTURE(dtype_name(t));
    const Tensor flat = x.reshape({x.numel()}).to(kGpu).to(t);
    const Tensor off_word = flat.narrow(0, 1, x.numel() - 1);
    const Tensor compact = off_word.clone();  // not contiguous(): that is the view itself
    REQUIRE(reinterpret_cast<uintptr_t>(off_word.data_ptr()) % 16 != 0);
    REQUIRE(reinterpret_cast<uintptr_t>(compact.data_ptr()) % 16 == 0);
    CHECK(bit_identical(f(off_word), f(compact)));
  }
}

TEST_CASE("dropout: the CPU's mask") {
  Tensor x = randn({7, 65});
  for (DType t : kDtypes)
    compare_op("dropout", [](const std::vector<Tensor>& in) { return dropout(in[0], 0.25f, 11); },
               {x}, t);
  check_both_widths([](const Tensor& v) { return dropout(v, 0.25f, 11); }, x);
}

TEST_CASE("add_uniform_noise: the CPU's noise") {
  Tensor x = randn({33, 70});
  for (DType t : kDtypes)
    compare_op("add_uniform_noise", [](const std::vector<Tensor>& in) { return add_uniform_noise(in[0], 0.3f, 17); }, {x}, t);
  check_both_widths([](const Tensor& v) { return add_uniform_noise(v, 0.3f, 17); }, x);
}

// Sparse fine-tuning's masks (train/constant_pruning.h), in place, f32 and bf16.
TEST_CASE("multiply_by_mask: the CPU's zeros, the other elements untouched") {
  const Tensor x = randn({13, 65});
  Tensor keep = Tensor::empty({13, 65}, DType::u8, Device::cpu());
  for (int64_t i = 0; i < keep.numel(); i++) keep.data<uint8_t>()[i] = (i * 7) % 3 != 0;
  for (DType t : kDtypes) {
    CAPTURE(std::string(dtype_name(t)));
    // clone(): to() returns x itself at its own dtype, which the CPU's mask would then change.
    Tensor cpu = x.to(t).to(DType::f32).clone(), gpu = x.to(kGpu).to(t);
    backend(Device::cpu()).multiply_by_mask(cpu, keep);
    backend(kGpu).multiply_by_mask(gpu, keep.to(kGpu));
    CHECK(gpu.to(DType::f32).to(Device::cpu()).to_floats() == cpu.to_floats());
    // A weight and mask one element in (no word aligns): the element-wise kernel, the same zeros.
    const int64_t n = x.numel();
    Tensor cpu_view = x.reshape({n}).to(t).to(DType::f32).narrow(0, 1, n - 1).clone();
    Tensor gpu_view = x.reshape({n}).to(kGpu).to(t).narrow(0, 1, n - 1);
    REQUIRE(reinterpret_cast<uintptr_t>(gpu_view.data_ptr()) % 16 != 0);
    const Tensor keep_view = keep.reshape({n}).narrow(0, 1, n - 1);
    backend(Device::cpu()).multiply_by_mask(cpu_view, keep_view.clone());
    backend(kGpu).multiply_by_mask(gpu_view, keep.reshape({n}).to(kGpu).narrow(0, 1, n - 1));
    CHECK(gpu_view.contiguous().to(DType::f32).to(Device::cpu()).to_floats() == cpu_view.to_floats());
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
  // Every GEMM shape's first call also times cuBLASLt's candidates (cuda_matmul.cu) into scratch:
  // run under it, every GEMM result here shows the timing leaves the caller's output alone.
  setenv("LLM_GEMM_CANDIDATES", "4", 0);
  return run_gpu_suite(argc, argv);
}
