// GaLore (Zhao et al. 2024, "Gradient Low-Rank Projection"), as the galore_torch package (1.0)
// runs it under transformers' galore_adamw, galore_adamw_8bit and galore_adafactor: a projected
// matrix's gradient G
// is taken to rank r through an orthonormal basis P from the SVD of G (refreshed every
// update_proj_gap of its own updates), the inner optimizer's state lives in that low-rank space,
// and the step it makes is carried back through P and scaled. The other parameters take the same
// optimizer unprojected. For world size 1 or data parallel without ZeRO; layer-wise (transformers'
// galore_*_layerwise: each parameter updated in backward as its gradient completes) for world size 1.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/low_rank_optimizer.h"
#include "engine/qgalore_basis.h"

namespace llm {

struct GaloreConfig {
  int64_t rank = 128;             // at most min(m, n) of each matrix in effect
  int64_t update_proj_gap = 200;  // a basis is recomputed when its parameter's update count is a multiple
  float scale = 0.25f;            // of the step carried back
  GaloreSide side = GaloreSide::std_side;
  // Q-GaLore (engine/qgalore_basis.h): the basis kept as quant_bits-bit codes in groups of
  // quant_group elements (0 bits: f32), and with queue_size > 0 the gap growing by gamma_proj
  // once the top singular vectors' mean similarity over the last queue_size bases reaches
  // cos_threshold.
  int quant_bits = 0;
  int64_t quant_group = 256;
  int64_t queue_size = 0;
  double cos_threshold = 0.4;
  int64_t gamma_proj = 2;
  // bitsandbytes' min_8bit_size: the elements from which bnb_adamw_8bit's state is 8-bit.
  int64_t min_8bit_size = kMin8bitSize;
};

// The optimizer each parameter's state runs, as the packages galore_torch builds on run it:
// galore_adamw is transformers' old AdamW (f32 moments, eps added to sqrt(v) before the bias
// correction, weight decay after the step); galore_adamw_8bit bitsandbytes' 8-bit AdamW
// (blockwise 8-bit moments for tensors of kMin8bitSize elements or more, the low-rank ones counted
// by their own size; decay before the step, for a projected matrix after it); galore_adafactor
// transformers' Adafactor as the Trainer sets it (engine/adafactor.h; factored second moments of a
// matrix, the low-rank one's rows and columns for a projected one; decay before the step).
enum class GaloreInner { hf_adamw, bnb_adamw_8bit, adafactor };

class Galore final : public LowRankOptimizer {
 public:
  // projected[i]: whether params[i] (an f32 matrix) has its gradient projected; layerwise: each
  // parameter updated in backward (updates_in_backward), unclipped.
  Galore(std::vector<OptimParam> params, std::vector<bool> projected, AdamWConfig adam, GaloreConfig galore,
         GaloreInner inner, bool layerwise = false);
  size_t state_bytes() const override;
  std::string describe() const override;
  std::string state_format() const override;
  // Each parameter's state (AdamW's moment_table or Adafactor's names, of the low-rank shape when
  // projected), then a projected one's basis "<param>.galore_projector" (f32; zero before its
  // first update), or Q-GaLore's "<param>.qgalore_projector.codes" (u8), ".scales" and ".zeros"
  // (f32 per group) and "<param>.qgalore_top_vector" (f32), its gap and similarities scalar
  // state "qgalore_schedule.<param>".
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;
  std::map<std::string, std::string> scalar_state() const override;
  void restore_scalar_state(const std::map<std::string, std::string>& metadata) override;

  // The low-rank shape a projected m x n gradient takes, and its basis' shape, under `config`.
  static Shape low_rank_shape(const Shape& weight, const GaloreConfig& config);
  static Shape projector_shape(const Shape& weight, const GaloreConfig& config);

 private:
  struct Slot {
    bool projected = false;
    bool from_right = false;  // the basis P (r x n) multiplies G from the right; else Q (m x r) from the left
    Tensor projector;         // f32, or Q-GaLore's codes below
    QGaloreBasis quantised;
    BasisSchedule schedule;   // its gap (and Q-GaLore's growth of it)
    Shape state_shape;                    // the low-rank shape when projected, else the parameter's
    std::optional<AdamWMoments> moments;  // the AdamWs'
    Tensor row, col;                      // Adafactor's running means (col undefined for a vector)
  };
  void update(size_t i, Tensor& p, const Tensor& grad, float lr, float clip) override;
  void inner_step(size_t i, Tensor& target, const Tensor& grad, float lr, float clip, bool decay);
  void projected_update(size_t i, Tensor& p, const Tensor& grad, float lr, float clip);
  void refresh_basis(Slot& slot, const Tensor& grad);
  bool quantised_bases() const { return galore_.quant_bits > 0; }

  std::vector<Slot> slots_;
  GaloreConfig galore_;
  GaloreInner inner_;
};

}  // namespace llm
