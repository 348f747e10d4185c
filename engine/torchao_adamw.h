// torchao's AdamW8bit, AdamW4bit and AdamWFp8 as an Optimizer (engine/torchao_adamw_math.h has the
// update): per parameter m and v as codes (8 bits, or 4 packed two a byte) of torchao's maps, or as
// float8_e4m3fn bytes, with an f32
// scale per kQuantBlock elements when the parameter has at least 4096 elements, a multiple of
// kQuantBlock (torchao's rule; the token embedding too), else f32; for world size 1 or data
// parallel without ZeRO.
#pragma once
#include <vector>

#include "engine/optimizer.h"
#include "engine/torchao_adamw_math.h"

namespace llm {

// transformers (Axolotl for AdamWFp8) hands it the Adam betas and eps; the rates' complements come
// from these doubles, as torchao's Python floats.
struct TorchaoAdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  TorchaoCodes codes = TorchaoCodes::dynamic_8bit;
};

class TorchaoAdamW final : public Optimizer {
 public:
  TorchaoAdamW(std::vector<OptimParam> params, const TorchaoAdamWConfig& config);
  void set_beta1(double beta1) override;  // one_cycle's
  // Each parameter's own step count (torchao's state["step"]): LISA's frozen layers miss updates.
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override;
  std::string state_format() const override;
  // AdamW's names: "<param>.exp_avg" and "<param>.exp_avg_sq", or their ".codes" and ".absmax" (the scales).
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

  // Whether torchao keeps a parameter of `numel` elements' moments quantised.
  static bool quantises(int64_t numel) { return numel >= kMin8bitSize && numel % kQuantBlock == 0; }

 private:
  std::vector<OptimParam> params_;
  TorchaoAdamWConfig ao_;
  std::vector<AdamWMoments> moments_;
};

}  // namespace llm
