// defines: Muon, newton_schulz, muon_adjusted_lr
#include "engine/muon.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/dtype.h"
#include "engine/ops.h"
#include "engine/ops/gemm_call.h"

namespace llm {

namespace {

// The quintic iteration's coefficients (a, b, c), chosen for the largest slope at zero: it maps
// singular values to about 0.7-1.2 rather than exactly 1, which does not hurt training.
constexpr float kA = 3.4445f, kB = -4.7750f, kC = 2.0315f;

// x's values rounded to bf16 in place: nothing to do for a bf16 tensor (a GPU's, whose kernels
// store rounded results); an f32 one (the CPU's, whose GEMMs are f32) goes through a bf16 copy.
void keep_bf16(Tensor& x) {
  if (x.dtype() == DType::bf16) return;
  Backend& be = backend(x.device());
  Tensor half = Tensor::empty(x.shape(), DType::bf16, x.device());
  be.cast(x, half);
  be.cast(half, x);
}

}  // namespace

Tensor newton_schulz(const Tensor& u, int64_t steps) {
  LLM_CHECK(u.dim() == 2 && u.dtype() == DType::f32, "newton_schulz: expected an f32 matrix, got " + u.str());
  const Device dev = u.device();
  Backend& be = backend(dev);
  // bf16 tensors where the backend computes bf16 GEMMs fast (a GPU); f32 ones rounded after each
  // step where it computes in f32 (the CPU): the same values either way, up to summation order.
  const DType dtype = be.fast_bf16() ? DType::bf16 : DType::f32;
  const bool tall = u.size(0) > u.size(1);
  Tensor x = (tall ? u.transpose(0, 1).contiguous() : u.clone()).to(dtype);
  keep_bf16(x);
  const int64_t rows = x.size(0);
  // Spectral norm at most 1: the Frobenius norm (a bf16 scalar, as the norm of a bf16 tensor)
  // bounds it.
  const float norm = bf16_to_f32(f32_to_bf16(static_cast<float>(std::sqrt(sum_squares(x)))));
  scale_(x, 1.0f / (norm + 1e-7f));
  keep_bf16(x);

  Tensor a = Tensor::empty({rows, rows}, dtype, dev), ca = Tensor::empty({rows, rows}, dtype, dev);
  Tensor a2 = Tensor::empty({rows, rows}, dtype, dev), bx = Tensor::empty(x.shape(), dtype, dev);
  for (int64_t s = 0; s < steps; s++) {
    gemm(matrices(x), false, matrices(x), true, a, 1, 0.0f);  // A = X X^T
    keep_bf16(a);
    // B = b * A + c * A @ A, which Python reads as b A + ((c A) @ A).
    be.axpby(kC, a, 0.0f, a, ca);
    keep_bf16(ca);
    gemm(matrices(ca), false, matrices(a), false, a2, 1, 0.0f);
    keep_bf16(a2);
    be.axpby(kB, a, 1.0f, a2, a2);
    keep_bf16(a2);
    gemm(matrices(a2), false, matrices(x), false, bx, 1, 0.0f);  // B @ X
    keep_bf16(bx);
    be.axpby(kA, x, 1.0f, bx, x);  // X = a X + B @ X
    keep_bf16(x);
  }
  return (tall ? x.transpose(0, 1).contiguous() : x).to(DType::f32);
}

double muon_adjusted_lr(double lr, int64_t rows, int64_t cols) {
  return lr * (0.2 * std::sqrt(static_cast<double>(std::max(rows, cols))));
}

Muon::Muon(std::vector<OptimParam> params, std::vector<MuonRole> roles, AdamWConfig adam, MuonConfig muon)
    : Optimizer(adam), params_(std::move(params)), roles_(std::move(roles)), muon_(muon) {
  LLM_CHECK(roles_.size() == params_.size(), "Muon: one role per parameter");
  for (size_t i = 0; i < params_.size(); i++) {
    const Tensor& w = *params_[i].param;
    LLM_CHECK(w.dtype() == DType::f32, "Muon: " + params_[i].name + " is " + w.str() + "; it updates f32 parameters");
    LLM_CHECK(roles_[i] != MuonRole::orthogonalised || w.dim() == 2,
              "Muon: " + params_[i].name + " is " + w.str() + "; it orthogonalises matrices");
    const bool kept = roles_[i] != MuonRole::untrained, adamw = roles_[i] == MuonRole::adamw;
    first_.push_back(kept ? Tensor::zeros(w.shape(), DType::f32, w.device()) : Tensor());
    second_.push_back(adamw ? Tensor::zeros(w.shape(), DType::f32, w.device()) : Tensor());
  }
  missed_.assign(params_.size(), 0);
}

void Muon::orthogonalised_update(size_t i, Tensor& p, const Tensor& grad, float lr, float clip) {
  Backend& be = backend(p.device());
  LLM_CHECK(grad.dtype() == DType::f32, "Muon: the gradient of " + params_[i].name + " is " + grad.str());
  Tensor& buf = first_[i];
  be.axpby(muon_.momentum, buf, clip, grad, buf);  // SGD's momentum: buf = mu buf + g
  Tensor u = buf;
  if (muon_.nesterov) {  // g + mu buf
    u = Tensor::empty(buf.shape(), DType::f32, buf.device());
    be.axpby(muon_.momentum, buf, clip, grad, u);
  }
  const Tensor o = newton_schulz(u, muon_.ns_steps);
  const float decay = static_cast<float>(1.0 - double(lr) * config_.weight_decay);
  be.axpby(decay, p, -static_cast<float>(muon_adjusted_lr(lr, p.size(0), p.size(1))), o, p);
}

void Muon::adamw_update(size_t i, Tensor& p, const Tensor& grad, float lr, float clip) {
  // AdamW's kernel with eps / sqrt(1 - beta2^t) in eps's place computes its
  // lr sqrt(1 - beta2^t) / (1 - beta1^t) m / (eps + sqrt(v)).
  AdamWArgs args = adamw_args(config_, lr, t_ - missed_[i], /*decay=*/true);
  args.eps = config_.eps / args.bias2_sqrt;
  args.grad_scale = clip;
  backend(p.device()).adamw(p, grad, first_[i], second_[i], args);
}

double Muon::step(float lr, double max_norm, bool update) {
  return each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    switch (roles_[i]) {
      case MuonRole::orthogonalised: return orthogonalised_update(i, p, grad, lr, clip);
      case MuonRole::adamw: return adamw_update(i, p, grad, lr, clip);
      case MuonRole::untrained: return;
    }
  });
}

size_t Muon::state_bytes() const {
  size_t bytes = 0;
  for (size_t i = 0; i < params_.size(); i++)
    for (const Tensor* t : {&first_[i], &second_[i]})
      if (t->defined()) bytes += t->nbytes();
  return bytes;
}

std::string Muon::describe() const {
  int64_t count[3] = {0, 0, 0};
  for (MuonRole r : roles_) count[static_cast<int>(r)]++;
  std::string out = "Muon (f32 state): " + std::to_string(count[0]) + " matrices orthogonalised, " +
                    std::to_string(count[1]) + " AdamW (embed_tokens, lm_head)";
  if (count[2] > 0)
    out += ", " + std::to_string(count[2]) +
           " under 2-D left out (Axolotl's Muon factory does not optimise them: they keep their values)";
  return out;
}

std::vector<TensorEntry> Muon::state_table() const {
  std::vector<TensorEntry> out;
  for (size_t i = 0; i < params_.size(); i++) {
    const Shape& shape = params_[i].param->shape();
    const std::string& name = params_[i].name;
    if (roles_[i] == MuonRole::orthogonalised) out.push_back({name + ".momentum_buffer", DType::f32, shape});
    if (roles_[i] == MuonRole::adamw) {
      out.push_back({name + ".moment1", DType::f32, shape});
      out.push_back({name + ".moment2", DType::f32, shape});
    }
  }
  return out;
}

void Muon::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) {
    if (roles_[i] == MuonRole::orthogonalised) put(params_[i].name + ".momentum_buffer", first_[i]);
    if (roles_[i] == MuonRole::adamw) {
      put(params_[i].name + ".moment1", first_[i]);
      put(params_[i].name + ".moment2", second_[i]);
    }
  }
}

}  // namespace llm
