// GaLore (Zhao et al. 2024, "Gradient Low-Rank Projection"), as the galore_torch package (1.0)
// runs it under transformers' galore_adamw, galore_adamw_8bit and galore_adafactor: a projected
// matrix's gradient G
// is taken to rank r through an orthonormal basis P from the SVD of G (refreshed every
// update_proj_gap of its own updates), the inner optimizer's state lives in that low-rank space,
// and the step it makes is carried back through P and scaled. The other parameters take the same
// optimizer unprojected. For world size 1 or data parallel without ZeRO; layer-wise (transformers'
// galore_*_layerwise: each parameter updated in backward as its gradient completes) for world size 1.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "engine/linalg.h"
#include "engine/optimizer.h"

namespace llm {

// Which side of G its basis comes from: galore_torch's proj_type. std projects a tall (or square)
// G from the right with its top right singular vectors (G P^T, r x n basis) and a wide G from the
// left with its top left ones (Q^T G, m x r); reverse_std the other way round; right and left
// always that side.
enum class GaloreSide { std_side, reverse_std, right, left };

struct GaloreConfig {
  int64_t rank = 128;             // at most min(m, n) of each matrix in effect
  int64_t update_proj_gap = 200;  // a basis is recomputed when its parameter's update count is a multiple
  float scale = 0.25f;            // of the step carried back
  GaloreSide side = GaloreSide::std_side;
};

// The optimizer each parameter's state runs, as the packages galore_torch builds on run it:
// galore_adamw is transformers' old AdamW (f32 moments, eps added to sqrt(v) before the bias
// correction, weight decay after the step); galore_adamw_8bit bitsandbytes' 8-bit AdamW
// (blockwise 8-bit moments for tensors of kMin8bitSize elements or more, the low-rank ones counted
// by their own size; decay before the step, for a projected matrix after it); galore_adafactor
// transformers' Adafactor as the Trainer sets it (engine/adafactor.h; factored second moments of a
// matrix, the low-rank one's rows and columns for a projected one; decay before the step).
enum class GaloreInner { hf_adamw, bnb_adamw_8bit, adafactor };

// The basis galore_torch slices from a gradient's SVD, `basis`'s shape: the top right singular
// vectors as rows (from_right: r x n) or the top left ones as columns (m x r), each signed so that
// its largest element (the first of equal ones) is positive. A singular vector's sign is its
// LAPACK's choice (MKL's under torch's CPU wheels, cuSOLVER's on a GPU, OpenBLAS's here, each its
// own), and it shows once a recomputed basis meets the moments of the last one: a fixed choice
// makes a run the same on any LAPACK.
std::vector<float> galore_basis(const ThinSvd& svd, bool from_right, const Shape& basis);

class Galore final : public Optimizer {
 public:
  // projected[i]: whether params[i] (an f32 matrix) has its gradient projected; layerwise: each
  // parameter updated in backward (updates_in_backward), unclipped.
  Galore(std::vector<OptimParam> params, std::vector<bool> projected, AdamWConfig adam, GaloreConfig galore,
         GaloreInner inner, bool layerwise = false);
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  // Layer-wise (one pass a step): a parameter whose gradient is not finite keeps its weights and
  // state (as a whole step with a non-finite norm would), the others update; step() then returns
  // a non-finite norm.
  bool updates_in_backward() const override { return layerwise_; }
  LeafReadyHook pass_updates(float lr) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override;
  std::string state_format() const override;
  // Each parameter's state (AdamW's moment_table or Adafactor's names, of the low-rank shape when
  // projected), then a projected one's basis "<param>.galore_projector" (f32; zero before its
  // first update).
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

  // The low-rank shape a projected m x n gradient takes, and its basis' shape, under `config`.
  static Shape low_rank_shape(const Shape& weight, const GaloreConfig& config);
  static Shape projector_shape(const Shape& weight, const GaloreConfig& config);

 private:
  struct Slot {
    bool projected = false;
    bool from_right = false;  // the basis P (r x n) multiplies G from the right; else Q (m x r) from the left
    Tensor projector;
    Shape state_shape;                    // the low-rank shape when projected, else the parameter's
    std::optional<AdamWMoments> moments;  // the AdamWs'
    Tensor row, col;                      // Adafactor's running means (col undefined for a vector)
  };
  void update(size_t i, Tensor& p, const Tensor& grad, float lr, float clip);
  void inner_step(size_t i, Tensor& target, const Tensor& grad, float lr, float clip, bool decay);
  void projected_update(size_t i, Tensor& p, const Tensor& grad, float lr, float clip);

  std::vector<OptimParam> params_;
  std::vector<Slot> slots_;
  GaloreConfig galore_;
  GaloreInner inner_;
  bool layerwise_ = false;
  std::vector<bool> updated_;  // layer-wise: by parameter, in the step's pass (empty before it)
};

}  // namespace llm
