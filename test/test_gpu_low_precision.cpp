// GPU (ctest label gpu): the low-precision ops against the CPU reference through
// test/gpu_op_compare.h (test_gpu_ops' harness and tolerances): fp8 training's linear, qat's fake
// quantisation, the NF4 and int8 bases (dequantised bit for bit, quantized_linear forward and dx),
// 8-bit AdamW, Lion and AdEMAMix, bfloat16's AdamW on bf16 weights and moments, and Muon's bf16
// Newton-Schulz. Without a CUDA device it says so and exits 77, which ctest reports as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/fake_quantize_math.h"
#include "engine/int8.h"
#include "engine/muon.h"
#include "engine/nf4.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "engine/quant_map.h"
#include "test/gpu_op_compare.h"

using namespace llm;
using namespace llm::testing;

// fp8 training's linear: the same tensorwise casts (the scale from a device-side amax), GEMMs on
// the cast values, the output gradient cast to e5m2.
TEST_CASE("fp8_linear: torchao Float8Linear's numerics on the GPU") {
  for (DType t : kDtypes)
    compare_op("fp8_linear", [](const std::vector<Tensor>& in) { return fp8_linear(in[0], in[1]); },
               {randn({13, 48}), randn({32, 48}, 0.1f)}, t);
  // The casts take a 16-byte word a load where aligned: a tensor one element into its buffer (no
  // word aligns, the element-wise passes) casts to its aligned copy's bits, the CPU's in f32.
  const Tensor x = randn({13 * 48}, 3.0f);
  for (DType t : kDtypes)
    for (const Fp8Format format : {Fp8Format::e4m3, Fp8Format::e5m2}) {
      CAPTURE(dtype_name(t));
      const Tensor off_word = x.to(kGpu).to(t).narrow(0, 1, x.numel() - 1), aligned = off_word.contiguous().clone();
      Tensor a = Tensor::empty(aligned.shape(), t, kGpu), b = Tensor::empty(aligned.shape(), t, kGpu);
      backend(kGpu).fake_quant_fp8(off_word, format, a);
      backend(kGpu).fake_quant_fp8(aligned, format, b);
      CHECK(bit_identical(a, b));
      if (t == DType::f32) {
        Tensor c = Tensor::empty(aligned.shape(), t, Device::cpu());
        backend(Device::cpu()).fake_quant_fp8(aligned.to(Device::cpu()), format, c);
        CHECK(bit_identical(b, c));
      }
    }
}

// QAT's fake quantisation. In bf16 the int8 row's scale and zero point are chosen in bf16, as
// torchao does: a value may land one level away from the f32 CPU's choice, and on a clamp bound
// that turns its gradient off (or on). So bf16 rows are checked against the shared math
// (engine/fake_quantize_math.h) run here with bf16 rounding, f32 against the CPU backend.
TEST_CASE("fake quantisation (qat): int4 weight groups, int8 activation rows") {
  // Groups of 16, 32 and 48: a warp's lanes past a short group, and lanes taking two elements of
  // a longer one (the second pass partial).
  for (const int64_t group : {16, 32, 48})
    for (DType t : kDtypes) {
      CAPTURE(group);
      compare_op("fake_quantize_int4", [&](const std::vector<Tensor>& in) { return fake_quantize_int4(in[0], group); },
                 {randn({7, 96})}, t);
    }
  compare_op("fake_quantize_int8_rows", [](const std::vector<Tensor>& in) { return fake_quantize_int8_rows(in[0]); },
             {randn({13, 65}, 2.0f)}, DType::f32);

  const int64_t rows = 13, n = 65;
  const Tensor x = randn({rows, n}, 2.0f).to(DType::bf16).to(DType::f32),
               dy = randn({rows, n}).to(DType::bf16).to(DType::f32);
  Tensor x_gpu = x.to(kGpu).to(DType::bf16);
  x_gpu.set_requires_grad(true);
  const Tensor out = fake_quantize_int8_rows(x_gpu);
  backward(out, dy.to(kGpu).to(DType::bf16));
  const auto round_bf16 = [](float v) { return bf16_to_f32(f32_to_bf16(v)); };
  const std::vector<float> xs = x.to_floats(), dys = dy.to_floats();
  std::vector<float> want_out(xs.size()), want_dx(xs.size());
  for (int64_t r = 0; r < rows; r++) {
    const float* row = xs.data() + r * n;
    const Int8Row q = int8_row(*std::min_element(row, row + n), *std::max_element(row, row + n), round_bf16);
    for (int64_t i = r * n; i < (r + 1) * n; i++) {
      want_out[i] = round_bf16(int8_fake_quant(xs[i], q));
      want_dx[i] = round_bf16(int8_fake_quant_grad(xs[i], dys[i], q, round_bf16));
    }
  }
  check_close("fake_quantize_int8_rows bf16 output", out, Tensor::from_floats(want_out, {rows, n}), kTolBf16);
  check_close("fake_quantize_int8_rows bf16 grad", x_gpu.grad(), Tensor::from_floats(want_dx, {rows, n}), kTolBf16);
}

// Axolotl's fp8, int4-for-fp8 and mxfp4 schemes: the same shared math on both backends, in f32 (in bf16
// the scales are chosen in bf16, as torchao does, and move levels as for int8 above).
TEST_CASE("fake quantisation (qat): fp8 rows, int4 groups after fp8 rows, mxfp4 blocks") {
  compare_op("fake_quantize_fp8_rows", [](const std::vector<Tensor>& in) { return fake_quantize_fp8_rows(in[0]); },
             {randn({13, 65}, 2.0f)}, DType::f32);
  for (const int64_t group : {32, 48}) {
    CAPTURE(group);
    const QatScheme int4_after_fp8{QatScheme::Input::none, QatScheme::Weight::int4_after_fp8, group};
    compare_op("qat_weight int4 after fp8", [&](const std::vector<Tensor>& in) { return qat_weight(in[0], int4_after_fp8); },
               {randn({7, 96})}, DType::f32);
  }
  compare_op("fake_quantize_mxfp4", [](const std::vector<Tensor>& in) { return fake_quantize_mxfp4(in[0]); },
             {randn({7, 96}, 2.0f)}, DType::f32);
  // Axolotl's ternary scheme: its row means are summed in another order on each backend (a level
  // could move only for a weight within a rounding of the middle between two).
  compare_op("fake_quantize_ternary", [](const std::vector<Tensor>& in) { return fake_quantize_ternary(in[0]); },
             {randn({7, 96}, 0.05f)}, DType::f32);
  const Tensor w = randn({7, 96}, 0.05f);  // what a finished run bakes in: the same levels and scales
  CHECK(max_abs_diff(ternarize(w.to(kGpu)), ternarize(w)) <= 1e-6f * max_abs(w));
}

// In f32 each quantiser's forward is per-element arithmetic on a span's min, max or largest
// magnitude, none of which depends on the order they are found in: the GPU's output bits are the
// CPU's (a level apart would point at a contracted multiply-add or a libm difference).
TEST_CASE("fake quantisation (qat) in f32: the GPU's forward bits are the CPU's") {
  const Tensor x = randn({13, 96}, 2.0f);
  const QatScheme int4_after_fp8{QatScheme::Input::none, QatScheme::Weight::int4_after_fp8, 32};
  const std::pair<const char*, std::function<Tensor(const Tensor&)>> quantisers[] = {
      {"int4", [](const Tensor& t) { return fake_quantize_int4(t, 32); }},
      {"int8 rows", [](const Tensor& t) { return fake_quantize_int8_rows(t); }},
      {"fp8 rows", [](const Tensor& t) { return fake_quantize_fp8_rows(t); }},
      {"int4 after fp8", [&](const Tensor& t) { return qat_weight(t, int4_after_fp8); }},
      {"mxfp4", [](const Tensor& t) { return fake_quantize_mxfp4(t); }},
      {"int8 absmax", [](const Tensor& t) { return fake_quantize_int8_absmax(t); }}};
  for (const auto& quantiser : quantisers) {
    const std::string name = quantiser.first;
    CAPTURE(name);
    CHECK(bit_identical(quantiser.second(x.to(kGpu)), quantiser.second(x)));
  }
}

namespace {
// w copied to the GPU dequantises to the CPU's values bit for bit, and
// quantized_linear on it matches the CPU's forward and dx.
void check_quantized_weight(const QuantWeight& w) {
  const QuantWeight wg = w.to(kGpu);
  for (DType t : kDtypes) CHECK(bit_identical(dequantize(wg, t), dequantize(w, t)));
  // Its codes one byte into their buffer, which no word aligns: the element-wise kernel, the
  // same values (the aligned codes above take 8 elements a load, cuda/vec.cuh).
  QuantWeight off_word = wg;
  const int64_t bytes = wg.codes.numel();
  Tensor buffer = Tensor::zeros({bytes + 1}, DType::u8, kGpu);
  off_word.codes = buffer.narrow(0, 1, bytes);
  off_word.codes.copy_from(wg.codes.reshape({bytes}));
  off_word.codes = off_word.codes.reshape(wg.codes.shape());
  REQUIRE(reinterpret_cast<uintptr_t>(off_word.codes.data_ptr()) % 8 != 0);
  for (DType t : kDtypes) CHECK(bit_identical(dequantize(off_word, t), dequantize(w, t)));
  for (DType t : kDtypes)
    compare_op("quantized_linear", [&](const std::vector<Tensor>& in) {
      return quantized_linear(in[0], in[0].device().is_cpu() ? w : wg);
    }, {randn({7, w.shape[1]})}, t);
}
}  // namespace

TEST_CASE("nf4: CUDA dequantises to the CPU's values bit for bit; quantized_linear forward and dx") {
  for (bool double_quant : {true, false}) {
    CAPTURE(double_quant);
    // 13 x 65 = 845 elements: a partial block, an odd count, 14 absmax values.
    check_quantized_weight(nf4_quantize(randn({13, 65}, 0.1f), double_quant));
    // 320 blocks: double quantisation's second f32 scale (one per 256 blocks) is read too.
    check_quantized_weight(nf4_quantize(randn({128, 160}, 0.1f), double_quant));
  }
}

TEST_CASE("int8: CUDA dequantises to the CPU's values bit for bit; quantized_linear forward and dx") {
  check_quantized_weight(int8_quantize(randn({13, 65}, 0.1f)));  // rows of 65: element by element
  check_quantized_weight(int8_quantize(randn({13, 64}, 0.1f)));  // rows of 8 words
}

namespace {

// One blockwise 8-bit optimizer (Backend::adamw_8bit, lion_8bit, ...) on both devices for three
// updates from the same gradients: `update(backend, param, grad, state, step)` with state its
// codes and absmax in pairs, one per moment. Parameters and absmax as the CPU's; the same
// nearest-code search on the same f32 moments, so a code may differ only where FMA contraction
// moved a moment across the midpoint between two codes. `param_off` elements may move apart
// (Lion's sign of a momentum within rounding of 0).
using Update8bit = std::function<void(Backend&, Tensor&, const Tensor&, std::vector<Tensor>&, int)>;
void check_blockwise_8bit(const char* name, int moments, const Update8bit& update, int64_t param_off = 0) {
  // More blocks than the resident CTAs' warps of an H100 or H200 (132 SMs x 3 x 8), so each warp
  // walks several; a short last one.
  const int64_t n = 8192 * kQuantBlock + 333, blocks = blocks_of(n);
  Tensor p0 = randn({n});
  for (DType grad_dtype : kDtypes) {
    CAPTURE(name);
    CAPTURE(std::string(dtype_name(grad_dtype)));
    auto state = [&](Device d) {
      std::vector<Tensor> s;
      for (int k = 0; k < moments; k++) {
        s.push_back(Tensor::zeros({n}, DType::u8, d));
        s.push_back(Tensor::zeros({blocks}, DType::f32, d));
      }
      return s;
    };
    Tensor pc = p0.clone(), pg = p0.to(kGpu);
    std::vector<Tensor> c = state(Device::cpu()), g = state(kGpu);
    for (int step = 1; step <= 3; step++) {
      Tensor grad = randn({n}).to(grad_dtype);
      update(backend(Device::cpu()), pc, grad.to(DType::f32), c, step);
      update(backend(kGpu), pg, grad.to(kGpu), g, step);
    }
    if (param_off == 0) {
      check_close("param", pg, pc, kTolF32);
    } else {
      const std::vector<float> a = pg.to(Device::cpu()).to_floats(), b = pc.to_floats();
      int64_t apart = 0;
      for (int64_t i = 0; i < n; i++) apart += std::fabs(a[i] - b[i]) > 1e-5f;
      CHECK(apart <= param_off);
    }
    for (int k = 0; k < moments; k++) {
      CAPTURE(k);
      check_close("absmax", g[2 * k + 1], c[2 * k + 1], kTolF32);
      std::vector<float> gc = g[2 * k].to(Device::cpu()).to(DType::f32).to_floats();
      std::vector<float> cc = c[2 * k].to(DType::f32).to_floats();
      int64_t off_by_one = 0, worse = 0;
      for (int64_t i = 0; i < n; i++) {
        off_by_one += std::fabs(gc[i] - cc[i]) == 1.0f;
        worse += std::fabs(gc[i] - cc[i]) > 1.0f;
      }
      CHECK(worse == 0);
      CHECK(off_by_one <= n / 100);
    }
  }
}

}  // namespace

TEST_CASE("adamw_8bit, lion_8bit, ademamix_8bit and rmsprop_8bit: the CUDA kernels give the CPU's parameters, absmax and codes") {
  check_blockwise_8bit("adamw_8bit", 2, [](Backend& be, Tensor& p, const Tensor& grad, std::vector<Tensor>& s, int step) {
    be.adamw_8bit(p, grad, s[0], s[1], s[2], s[3], adamw_args({0.9f, 0.999f, 1e-8f, 0.1f}, 1e-2f, step, true));
  });
  check_blockwise_8bit(
      "lion_8bit", 1,
      [](Backend& be, Tensor& p, const Tensor& grad, std::vector<Tensor>& s, int) {
        be.lion_8bit(p, grad, s[0], s[1], LionArgs{1e-2f, 0.9f, 0.99f, 0.1f});
      },
      /*param_off=*/3);
  check_blockwise_8bit("ademamix_8bit", 3, [](Backend& be, Tensor& p, const Tensor& grad, std::vector<Tensor>& s, int step) {
    const float bias1 = 1.0f - std::pow(0.9f, float(step)), bias2_sqrt = std::sqrt(1.0f - std::pow(0.999f, float(step)));
    const AdemamixArgs args{1e-2f, 0.9f, 0.999f, 0.9999f, 5.0f, 1e-8f, 0.1f, bias1, bias2_sqrt};
    be.ademamix_8bit(p, grad, s[0], s[1], s[2], s[3], s[4], s[5], args);
  });
  check_blockwise_8bit("rmsprop_8bit", 1, [](Backend& be, Tensor& p, const Tensor& grad, std::vector<Tensor>& s, int) {
    TorchOptimArgs args;
    args.kind = TorchOptimKind::rmsprop;
    args.lr = 1e-3f, args.weight_decay = 0.1f, args.eps = 1e-8f;
    be.rmsprop_8bit(p, grad, s[0], s[1], args);
  });
}

// bfloat16: a bf16 weight and bf16 moments with an f32 gradient, each element updated in f32 and
// rounded back. FMA contraction may move an f32 result across a bf16 midpoint: at most one unit in
// the last place of a bf16 value, and rarely. Views on and off the 8-element words (the 8-wide and
// the one-element kernels), and clipping's factor inside the update on alternate steps.
TEST_CASE("adamw on bf16 weights and moments: the CUDA kernel gives the CPU's bits but for rare last-place flips") {
  const int64_t n = 7 * 33;
  const Tensor p0 = randn({n + 1}, 0.05f).to(DType::bf16);
  for (const int64_t offset : {0, 1}) {
    CAPTURE(offset);
    auto state = [&](Device d) {
      return std::vector<Tensor>{p0.clone().to(d).narrow(0, offset, n),
                                 Tensor::zeros({n + 1}, DType::bf16, d).narrow(0, offset, n),
                                 Tensor::zeros({n + 1}, DType::bf16, d).narrow(0, offset, n)};
    };
    std::vector<Tensor> c = state(Device::cpu()), g = state(kGpu);
    for (int step = 1; step <= 4; step++) {
      const Tensor grad = randn({n});
      AdamWArgs args = adamw_args({0.9f, 0.95f, 1e-8f, 0.1f}, 3e-2f, step, true);
      if (step % 2 == 0) args.grad_scale = 0.37f;
      backend(Device::cpu()).adamw(c[0], grad, c[1], c[2], args);
      backend(kGpu).adamw(g[0], grad.to(kGpu), g[1], g[2], args);
    }
    for (int k = 0; k < 3; k++) {
      CAPTURE(k);
      CHECK(g[k].dtype() == DType::bf16);
      const std::vector<float> gv = g[k].to(Device::cpu()).to_floats(), cv = c[k].to_floats();
      int64_t flips = 0, worse = 0;
      for (int64_t i = 0; i < n; i++) {
        const float ulp = std::ldexp(1.0f, std::ilogb(std::max(std::fabs(cv[i]), 1e-30f)) - 7);
        flips += gv[i] != cv[i];
        worse += std::fabs(gv[i] - cv[i]) > ulp;
      }
      CHECK(worse == 0);
      CHECK(flips <= n / 50);
    }
  }
}

int main(int argc, char** argv) { return run_gpu_suite(argc, argv); }

// Muon: Newton-Schulz in the GPU's bf16 tensors against the CPU's f32 GEMMs of bf16-rounded
// values (the same products, another summation order, so a rounding may land one bf16 step apart
// and carry on), then three steps of
// the optimizer on a tall matrix, a wide one, an embedding (its AdamW) and a norm (left out).
// One iteration is held to bf16's 2%; five amplify a rounding apart: on an H200 (2026-12-04) they
// parted by 2.5% of the largest value at these shapes, and simulating both summation orders with
// the Frobenius norm rounded one bf16 step apart gave up to 0.8% after one iteration and 6.1% after
// five (a wrong coefficient or transpose parts them by the values' own size).
TEST_CASE("muon: Newton-Schulz and the optimizer's steps match the CPU") {
  for (const Shape& shape : {Shape{65, 33}, Shape{13, 65}}) {
    const Tensor u = randn(shape);
    check_close("newton_schulz, one step", newton_schulz(u.to(kGpu), 1), newton_schulz(u, 1), kTolBf16);
    check_close("newton_schulz, five steps", newton_schulz(u.to(kGpu), 5), newton_schulz(u, 5), 8e-2f);
  }
  const std::vector<Shape> shapes = {{65, 33}, {13, 65}, {33, 13}, {33}};
  std::vector<Tensor> cpu, gpu;
  for (const Shape& shape : shapes) {
    cpu.push_back(randn(shape));
    gpu.push_back(cpu.back().to(kGpu));
  }
  const std::vector<MuonRole> roles = {MuonRole::orthogonalised, MuonRole::orthogonalised, MuonRole::adamw,
                                       MuonRole::untrained};
  auto make = [&](std::vector<Tensor>& ts) {
    std::vector<OptimParam> params;
    for (size_t i = 0; i < ts.size(); i++) {
      ts[i].set_requires_grad(true);
      params.push_back({"p" + std::to_string(i), &ts[i], true});
    }
    return Muon(params, roles, AdamWConfig{0.95f, 0.95f, 1e-8f, 0.1f}, MuonConfig{});
  };
  Muon on_cpu = make(cpu), on_gpu = make(gpu);
  for (int step = 0; step < 3; step++) {
    for (size_t i = 0; i < shapes.size(); i++) {
      const Tensor g = randn(shapes[i]);
      cpu[i].zero_grad();
      accumulate_grad(*cpu[i].autograd_meta(), g);
      gpu[i].zero_grad();
      accumulate_grad(*gpu[i].autograd_meta(), g.to(kGpu));
    }
    CHECK(on_gpu.step(0.02f, 1.0) == doctest::Approx(on_cpu.step(0.02f, 1.0)).epsilon(1e-5));
  }
  for (size_t i = 0; i < shapes.size(); i++) check_close("muon param " + std::to_string(i), gpu[i], cpu[i], 1e-3f);
}
