// Muon as Axolotl's `optimizer: muon` runs it (axolotl-contribs-mit 0.0.6, the version Axolotl
// pins: Moonlight's Muon, after Keller Jordan's): matrices take SGD momentum orthogonalised by
// Newton-Schulz iterations; the embedding and lm_head take its own AdamW; tensors under 2-D (the
// norms) are not in its groups at all and keep their values. f32 state, world size 1 or data
// parallel without ZeRO. Composed of backend ops (GEMMs, casts, axpby, AdamW), so both backends
// run it as written.
#pragma once
#include <vector>

#include "engine/optimizer.h"

namespace llm {

enum class MuonRole { orthogonalised, adamw, untrained };

struct MuonConfig {
  float momentum = 0.95f;
  bool nesterov = true;
  int64_t ns_steps = 5;  // Newton-Schulz iterations
};

// Muon's orthogonalisation of an update u f32 (R, C) (zeropower_via_newtonschulz5): u rounded
// to bf16, transposed when R > C, divided by its Frobenius norm + 1e-7, then `steps` quintic
// steps X <- aX + (bA + cA^2)X with A = XX^T, each product and each elementwise combination
// rounded to bf16 once, as the compiled reference stores its bf16 tensors: in bf16 tensors (bf16
// GEMMs) on a GPU, in f32 ones rounded after each op on the CPU. Returns f32 (R, C) holding bf16
// values.
Tensor newton_schulz(const Tensor& u, int64_t steps);

// The step size of an orthogonalised update of an (R, C) matrix at `lr`: lr * 0.2 * sqrt(max(R,
// C)), Moonlight's match of AdamW's update RMS.
double muon_adjusted_lr(double lr, int64_t rows, int64_t cols);

class Muon final : public Optimizer {
 public:
  // roles[i] says how params[i] is updated (orthogonalised ones are 2-D). Weight decay
  // adam.weight_decay applies to every updated tensor (its groups have no exclusions); the AdamW
  // takes adam's betas and eps, eps added to sqrt(v) before the bias correction.
  Muon(std::vector<OptimParam> params, std::vector<MuonRole> roles, AdamWConfig adam, MuonConfig muon);
  // lr_scale is not read (Axolotl's Muon makes its own groups). The AdamW's bias corrections
  // count a tensor's own updates.
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  // one_cycle's cycled momentum is the SGD momentum of the matrices (torch's OneCycleLR finds
  // `momentum` in Muon's defaults, no `betas`); its AdamW keeps its betas.
  void set_beta1(double momentum) override { muon_.momentum = static_cast<float>(momentum); }
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override;
  std::string state_format() const override { return "Muon"; }
  // Its names: "<param>.momentum_buffer" of an orthogonalised matrix, "<param>.moment1" and
  // "<param>.moment2" of an AdamW one.
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

 private:
  void orthogonalised_update(size_t i, Tensor& p, const Tensor& grad, float lr, float clip);
  void adamw_update(size_t i, Tensor& p, const Tensor& grad, float lr, float clip);

  std::vector<OptimParam> params_;
  std::vector<MuonRole> roles_;
  MuonConfig muon_;
  std::vector<Tensor> first_, second_;  // momentum_buffer or moment1; moment2 (AdamW's only)
};

}  // namespace llm
