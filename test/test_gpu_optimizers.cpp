// GPU (ctest label gpu): the optimizers' fused CUDA updates (AdamW, ADOPT, Schedule-Free, torchao's
// AdamW, Lion, AdEMAMix, Adafactor, CAME) against the CPU's over several steps, through test/gpu_op_compare.h (the 8-bit and
// bf16-state ones in test_gpu_low_precision); the word-wide ones also against their element-wise form. Without a CUDA device it says so and exits 77.
#define DOCTEST_CONFIG_IMPLEMENT
#include <array>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/came.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "test/gpu_op_compare.h"

using namespace llm;
using namespace llm::testing;

namespace {

// One more step on views one element in (as a ZeRO slice can be: no 16-byte word aligns) takes
// the element-wise kernel; it must give the wide kernel's bits on the same values (cuda/vec.cuh,
// cuda/fused_update.cuh). `tensors`: a param and its state on the GPU, as earlier steps left
// them; `update(tensors, grad)` steps them in place.
void check_off_word(const std::vector<Tensor>& tensors, DType grad_dtype,
                    const std::function<void(std::vector<Tensor>&, const Tensor&)>& update) {
  const int64_t n = tensors[0].numel();
  std::vector<Tensor> views, compact;
  for (const Tensor& t : tensors) {
    views.push_back(t.clone().narrow(0, 1, n - 1));
    compact.push_back(t.narrow(0, 1, n - 1).clone());
  }
  const Tensor grad = randn({n}).to(grad_dtype).to(kGpu).narrow(0, 1, n - 1);
  update(views, grad);
  update(compact, grad.clone());
  for (size_t k = 0; k < tensors.size(); k++) {
    CAPTURE(k);
    CHECK(bit_identical(views[k].contiguous(), compact[k]));
  }
}

}  // namespace

TEST_CASE("adamw: the fused update matches the CPU over several steps") {
  const int64_t n = 7 * 33;
  Tensor p0 = randn({n});
  for (DType grad_dtype : kDtypes) {
    CAPTURE(std::string(dtype_name(grad_dtype)));
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
    const AdamWArgs args = adamw_args({0.9f, 0.999f, 1e-8f, 0.1f}, 1e-2f, 4, true);
    check_off_word({pg, mg, vg}, grad_dtype, [&](std::vector<Tensor>& t, const Tensor& g) {
      backend(kGpu).adamw(t[0], g, t[1], t[2], args);
    });
  }
}

TEST_CASE("adopt: the fused update matches the CPU over several steps, the first one filling v only") {
  const int64_t n = 7 * 33;
  Tensor p0 = randn({n});
  for (DType grad_dtype : kDtypes) {
    CAPTURE(std::string(dtype_name(grad_dtype)));
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
    const AdoptArgs args{1e-2f, 0.9f, 0.9999f, 1e-6f, 0.1f, std::pow(4.0f, 0.25f), false};
    check_off_word({pg, mg, vg}, grad_dtype, [&](std::vector<Tensor>& t, const Tensor& g) {
      backend(kGpu).adopt(t[0], g, t[1], t[2], args);
    });
  }
}

// Schedule-Free: AdamW's step (v and the normalised gradient), RAdam's before its rectification
// (v kept, the gradient as it is) and SGD's (no v), then the switch to x and back.
TEST_CASE("schedule_free: the fused update and its lerp match the CPU over several steps") {
  const int64_t n = 7 * 33;
  Tensor p0 = randn({n});
  for (DType grad_dtype : kDtypes)
    for (const bool second_moment : {true, false}) {
      CAPTURE(std::string(dtype_name(grad_dtype)));
      CAPTURE(second_moment);
      Tensor yc = p0.clone(), zc = p0.clone(), vc = Tensor::zeros({n}, DType::f32);
      Tensor yg = p0.to(kGpu), zg = p0.to(kGpu), vg = Tensor::zeros({n}, DType::f32, kGpu);
      for (int step = 0; step < 4; step++) {
        Tensor grad = randn({n}).to(grad_dtype);
        const float averaging = 1.0f / float(step + 1), lr = 1e-2f;
        const ScheduleFreeArgs args{averaging, lr * (0.9f * (1 - averaging) - 1), lr, 0.999f, 1e-3f,
                                    1 - std::pow(0.999f, float(step + 1)), 1e-8f, 0.1f, step % 2 ? 0.5f : 1.0f,
                                    second_moment, second_moment && step != 1};
        backend(Device::cpu()).schedule_free(yc, grad.to(DType::f32), zc, second_moment ? &vc : nullptr, args);
        backend(kGpu).schedule_free(yg, grad.to(kGpu), zg, second_moment ? &vg : nullptr, args);
      }
      check_close("schedule_free y", yg, yc, kTolF32);
      check_close("schedule_free z", zg, zc, kTolF32);
      if (second_moment) check_close("schedule_free v", vg, vc, kTolF32);
      for (const float weight : {1 - 1 / 0.9f, 0.1f, 0.75f}) {  // eval, train, and the far end's formula
        backend(Device::cpu()).lerp(yc, zc, weight);
        backend(kGpu).lerp(yg, zg, weight);
      }
      check_close("lerp", yg, yc, kTolF32);
      const ScheduleFreeArgs args{0.2f, 1e-2f * (0.9f * 0.8f - 1), 1e-2f, 0.999f, 1e-3f, 1 - std::pow(0.999f, 5.0f),
                                  1e-8f, 0.1f, 1.0f, second_moment, second_moment};
      std::vector<Tensor> state{yg, zg};
      if (second_moment) state.push_back(vg);
      check_off_word(state, grad_dtype, [&](std::vector<Tensor>& t, const Tensor& g) {
        backend(kGpu).schedule_free(t[0], g, t[1], second_moment ? &t[2] : nullptr, args);
        backend(kGpu).lerp(t[0], t[1], 0.1f);
      });
    }
}

// torch.optim's SGD (Nesterov momentum, its first step's buffer), Adagrad (decayed rate) and
// centered RMSprop with momentum (all three state tensors), f32 or bf16 gradients; SGD and Adagrad
// keep one state tensor, the other two null as the optimizer passes them (read as 0, never stored).
TEST_CASE("torch_optim: SGD, Adagrad and RMSprop match the CPU over several steps") {
  const int64_t n = 4099;  // not a multiple of a block
  Tensor p0 = randn({n});
  for (DType grad_dtype : kDtypes)
    for (const TorchOptimKind kind : {TorchOptimKind::sgd, TorchOptimKind::adagrad, TorchOptimKind::rmsprop}) {
      CAPTURE(std::string(dtype_name(grad_dtype)));
      CAPTURE(int(kind));
      std::vector<Tensor> cpu, gpu;
      for (int k = 0; k < 3; k++) {
        cpu.push_back(Tensor::zeros({n}, DType::f32, Device::cpu()));
        gpu.push_back(Tensor::zeros({n}, DType::f32, kGpu));
      }
      Tensor pc = p0.clone(), pg = p0.to(kGpu);
      const bool rmsprop = kind == TorchOptimKind::rmsprop;
      auto state_of = [&](std::vector<Tensor>& t, size_t first) {
        return std::array<Tensor*, 3>{&t[first], rmsprop ? &t[first + 1] : nullptr, rmsprop ? &t[first + 2] : nullptr};
      };
      auto args_at = [&](int step) {
        TorchOptimArgs args;
        args.kind = kind;
        args.lr = 1e-2f;
        args.weight_decay = 0.1f;
        args.momentum = 0.9f;
        args.nesterov = true;
        args.first_step = step == 1;
        args.alpha = 0.9f;
        args.one_minus_alpha = 0.1f;
        args.eps = 1e-8f;
        args.centered = true;
        args.grad_scale = step == 2 ? 0.5f : 1.0f;
        return args;
      };
      for (int step = 1; step <= 3; step++) {
        Tensor grad = randn({n}).to(grad_dtype);
        const TorchOptimArgs args = args_at(step);
        backend(Device::cpu()).torch_optim(pc, grad.to(DType::f32), state_of(cpu, 0), args);
        backend(kGpu).torch_optim(pg, grad.to(kGpu), state_of(gpu, 0), args);
      }
      check_close("torch_optim param", pg, pc, kTolF32);
      for (int k = 0; k < 3; k++) check_close("torch_optim state", gpu[k], cpu[k], kTolF32);
      check_off_word({pg, gpu[0], gpu[1], gpu[2]}, grad_dtype, [&](std::vector<Tensor>& t, const Tensor& g) {
        backend(kGpu).torch_optim(t[0], g, state_of(t, 1), args_at(4));
      });
    }
}

// torchao's AdamW: f32 moments, and 8-bit, 4-bit or fp8 ones requantised as its OptimState8bit,
// OptimState4bit and OptimStateFp8 (a code may differ by one entry where FMA contraction moves a
// moment across a midpoint: for fp8 codes the next value in order, -0 and +0 one; 4-bit codes are compared
// unpacked, so the kernel's pairing of lanes is checked).
TEST_CASE("torchao_adamw: the update matches the CPU over several steps, f32, 8-bit, 4-bit and fp8 moments") {
  const int64_t n = 8200 * 256;  // more blocks than an H100's resident warps: each walks several
  Tensor p0 = randn({n});
  for (DType grad_dtype : kDtypes)
    for (const int format : {-1, 0, 1, 2}) {  // -1: f32 moments; else a TorchaoCodes
      CAPTURE(std::string(dtype_name(grad_dtype)));
      CAPTURE(format);
      const bool quantised = format >= 0;
      const TorchaoCodes codes = quantised ? static_cast<TorchaoCodes>(format) : TorchaoCodes::dynamic_8bit;
      const int bits = code_bits(codes);
      AdamWMoments cpu({n}, quantised, Device::cpu(), DType::f32, bits, QuantZeros::byte_0),
          gpu({n}, quantised, kGpu, DType::f32, bits, QuantZeros::byte_0);
      Tensor pc = p0.clone(), pg = p0.to(kGpu);
      for (int step = 1; step <= 3; step++) {
        Tensor grad = randn({n}).to(grad_dtype);
        // Step 3's v weight 0.6 takes the lerp from its far end.
        const TorchaoAdamWArgs args{1e-2f, 1e-3f, lerp_weight(0.1), lerp_weight(step == 3 ? 0.6 : 1e-3),
                                    1 - std::pow(0.9f, float(step)), std::sqrt(1 - std::pow(0.999f, float(step))), 1e-8f,
                                    step == 2 ? 0.5f : 1.0f, codes};
        backend(Device::cpu()).torchao_adamw(pc, grad.to(DType::f32), cpu.m, cpu.m_absmax, cpu.v, cpu.v_absmax, args);
        backend(kGpu).torchao_adamw(pg, grad.to(kGpu), gpu.m, gpu.m_absmax, gpu.v, gpu.v_absmax, args);
      }
      check_close("torchao_adamw param", pg, pc, kTolF32);
      if (!quantised) {
        check_close("torchao_adamw m", gpu.m, cpu.m, kTolF32);
        check_close("torchao_adamw v", gpu.v, cpu.v, kTolF32);
        continue;
      }
      check_close("torchao_adamw m scale", gpu.m_absmax, cpu.m_absmax, kTolF32);
      check_close("torchao_adamw v scale", gpu.v_absmax, cpu.v_absmax, kTolF32);
      for (const auto& [ours, theirs] : {std::pair{&gpu.m, &cpu.m}, std::pair{&gpu.v, &cpu.v}}) {
        const Tensor ours_codes = ours->to(Device::cpu());
        int64_t apart = 0;
        for (int64_t i = 0; i < n; i++) {
          // An fp8 byte's place in value order (sign and magnitude bits).
          auto rank = [&](int code) { return codes == TorchaoCodes::fp8 && code >= 0x80 ? 0x80 - code : code; };
          const int a = rank(bits == 4 ? read_code<4>(ours_codes.data<uint8_t>(), i) : ours_codes.data<uint8_t>()[i]);
          const int b = rank(bits == 4 ? read_code<4>(theirs->data<uint8_t>(), i) : theirs->data<uint8_t>()[i]);
          CHECK(std::abs(a - b) <= 1);
          apart += a != b;
        }
        CHECK(apart <= n / 100);
      }
    }
}

// Lion's sign step: an element whose interpolated momentum is within rounding of 0 may step the
// other way on the GPU (FMA contraction), so a few elements may differ by 2 lr; m as the CPU's.
TEST_CASE("lion: the fused update matches the CPU over several steps") {
  const int64_t n = 7 * 33;
  Tensor p0 = randn({n});
  for (DType grad_dtype : kDtypes) {
    CAPTURE(std::string(dtype_name(grad_dtype)));
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
    check_off_word({pg, mg}, grad_dtype, [&](std::vector<Tensor>& t, const Tensor& g) {
      backend(kGpu).lion(t[0], g, t[1], LionArgs{1e-2f, 0.9f, 0.99f, 0.1f, 1.0f});
    });
  }
}

TEST_CASE("ademamix: the fused update matches the CPU over several steps") {
  const int64_t n = 7 * 33;
  Tensor p0 = randn({n});
  for (DType grad_dtype : kDtypes) {
    CAPTURE(std::string(dtype_name(grad_dtype)));
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
    const AdemamixArgs args{1e-2f, 0.9f, 0.999f, 0.9999f, 5.0f, 1e-8f, 0.1f, 1.0f - std::pow(0.9f, 5.0f),
                            std::sqrt(1.0f - std::pow(0.999f, 5.0f))};
    check_off_word(g, grad_dtype, [&](std::vector<Tensor>& t, const Tensor& gr) {
      backend(kGpu).ademamix(t[0], gr, t[1], t[2], t[3], args);
    });
  }
}

// Adafactor on a matrix whose column sums take two chunks of rows and on a vector, with weight
// decay and clipping's factor: the same sums in other orders, so within f32 rounding.
TEST_CASE("adafactor: the update matches the CPU's on a matrix and a vector over several steps") {
  for (const Shape& shape : {Shape{300, 37}, Shape{7 * 33}}) {
    const bool matrix = shape.size() == 2;
    Tensor p0 = randn(shape);
    for (DType grad_dtype : kDtypes) {
      CAPTURE(std::string(dtype_name(grad_dtype)));
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

// CAME through its optimizer on both devices: a matrix (its second moment and instability
// factored), a vector (per element, stepping along m), bf16 gradients on the GPU too; parameters
// and every state tensor against the CPU's after several steps, one of them clipped.
TEST_CASE("came: the update matches the CPU's on a matrix and a vector over several steps") {
  for (DType grad_dtype : kDtypes) {
    CAPTURE(std::string(dtype_name(grad_dtype)));
    const std::vector<Shape> shapes{{300, 37}, {7 * 33}};
    std::vector<Tensor> cpu, gpu;
    for (const Shape& s : shapes) cpu.push_back(randn(s));
    for (const Tensor& t : cpu) gpu.push_back(t.to(kGpu));
    const auto make = [&](std::vector<Tensor>& ws) {
      std::vector<OptimParam> params;
      for (size_t i = 0; i < ws.size(); i++) {
        ws[i].set_requires_grad(true);
        params.push_back({"w" + std::to_string(i), &ws[i], true, 1.0f, false});
      }
      return Came(params, AdamWConfig{0.9f, 0.999f, 1e-30f, 0.1f}, CameConfig{0.9, 0.999, 0.9999, 1e-16, 1.0});
    };
    Came on_cpu = make(cpu), on_gpu = make(gpu);
    for (int step = 1; step <= 3; step++) {
      for (size_t i = 0; i < shapes.size(); i++) {
        const Tensor grad = randn(shapes[i], 0.1f).to(grad_dtype);
        cpu[i].autograd_meta()->grad = grad.to(DType::f32);
        gpu[i].autograd_meta()->grad = grad.to(kGpu);
      }
      const double max_norm = step == 2 ? 0.5 : 0.0;  // clipping's factor inside the update
      on_cpu.step(1e-2f, max_norm);
      on_gpu.step(1e-2f, max_norm);
    }
    for (size_t i = 0; i < shapes.size(); i++) check_close("came param", gpu[i], cpu[i], kTolF32);
    std::map<std::string, Tensor> cpu_state;
    on_cpu.export_state([&](const std::string& name, const Tensor& t) { cpu_state[name] = t.clone(); });
    on_gpu.export_state([&](const std::string& name, const Tensor& t) { check_close(name, t, cpu_state.at(name), kTolF32); });
    CHECK(cpu_state.size() == 7);  // the matrix's m and four means, the vector's m and second moment
  }
}

int main(int argc, char** argv) { return run_gpu_suite(argc, argv); }
