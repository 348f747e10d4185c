// APOLLO (Zhu et al. 2025, "SGD-like Memory, AdamW-level Performance"), as apollo_torch 1.0.3's
// APOLLOAdamW runs under transformers' apollo_adamw and apollo_adamw_layerwise. A projected
// matrix's gradient G (m x n) is taken to rank r through a basis (random: a Gaussian of variance
// 1 / r drawn from torch's CPU generator; svd: GaLore's top singular vectors) refreshed every
// update_proj_gap of its own updates; transformers' old AdamW keeps its moments of that low-rank
// R and gives N = m / (sqrt(v) + eps). Nothing is projected back: G itself is scaled, per channel
// (each of its rows when m >= n, else each column: ||N_j|| / (||R_j|| + 1e-8)) or as a whole
// (tensor), then held to a 1.01-fold growth of its norm over the last update (Fira's limiter), and
// added at lr sqrt(1 - beta2^t) / (1 - beta1^t) x sqrt(scale). The other parameters take the same
// AdamW unprojected. For world size 1 or data parallel without ZeRO; layer-wise for world size 1.
// No weight decay: transformers builds APOLLO's groups without one (the class's default 0).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "engine/low_rank_optimizer.h"

namespace llm {

enum class ApolloBasis { random, svd };
// channel: a factor per row (m >= n) or per column of G; tensor: one factor.
enum class ApolloScaling { channel, tensor };

struct ApolloConfig {
  int64_t rank = 128;             // a random basis draws any rank; an SVD's keeps at most min(m, n)
  int64_t update_proj_gap = 200;  // a basis is redrawn when its parameter's update count is a multiple
  float scale = 1.0f;             // sqrt(scale) multiplies the step
  GaloreSide side = GaloreSide::std_side;
  ApolloBasis basis = ApolloBasis::random;
  ApolloScaling scaling = ApolloScaling::channel;
};

class Apollo final : public LowRankOptimizer {
 public:
  // projected[i]: whether params[i] (an f32 matrix) has its gradient projected; seeds[i]: its
  // first random basis' seed (apollo_torch's: the parameter's 1-based position in its optimizer);
  // plain: the unprojected parameters' AdamW (the class's betas and eps), low_rank: the projected
  // ones' (the Trainer's adam_beta1, adam_beta2 and adam_epsilon).
  Apollo(std::vector<OptimParam> params, std::vector<bool> projected, std::vector<int64_t> seeds, AdamWConfig plain,
         AdamWConfig low_rank, ApolloConfig apollo, bool layerwise = false);
  void set_beta1(double beta1) override;  // one_cycle cycles both groups' beta1
  size_t state_bytes() const override;
  std::string describe() const override;
  std::string state_format() const override;
  // Each parameter's moments (moment_table, of the low-rank shape when projected), then a
  // projected one's basis "<param>.apollo_projector" (f32; zero before its first update) and
  // "<param>.apollo_scaled_grad_norm" (f32 (1): the limiter's last norm).
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

  // The low-rank shape of a projected m x n gradient, and its basis' shape, under `config`.
  static Shape low_rank_shape(const Shape& weight, const ApolloConfig& config);
  static Shape projector_shape(const Shape& weight, const ApolloConfig& config);
  // Whether channel scaling's factors fit the gradient: one a row of R for a tall G (m of them, or
  // one), one a column of R for a wide G (n, or one). std always fits; elsewhere apollo_torch's
  // broadcast fails where they do not.
  static bool scaling_fits(const Shape& weight, const ApolloConfig& config);

 private:
  struct Slot {
    bool projected = false;
    bool from_right = false;  // the basis P (r x n) multiplies G from the right; else (m x r) from the left
    bool by_rows = false;     // channel factors per row of R (m >= n), else per column
    int64_t seed = 0;         // of the basis drawn after `bases` draws
    int64_t bases = 0;
    Tensor projector, scaled_grad_norm;
    Shape state_shape;  // the low-rank shape when projected, else the parameter's
    std::optional<AdamWMoments> moments;
  };
  void update(size_t i, Tensor& p, const Tensor& grad, float lr, float clip) override;
  void refresh_basis(Slot& slot, const Tensor& grad, int64_t draw);
  std::vector<float> scaling_factors(const Slot& slot, const Tensor& normalised, const Tensor& low_rank) const;

  std::vector<Slot> slots_;
  AdamWConfig low_rank_;
  ApolloConfig apollo_;
};

}  // namespace llm
