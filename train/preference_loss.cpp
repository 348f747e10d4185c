// defines: pair_loss (DPO's sigmoid loss with label smoothing, IPO's squared loss), rpo_term,
// kto_row_loss, kto_kl
#include "train/preference_loss.h"

#include <algorithm>
#include <cmath>

namespace llm {
namespace {

// log sigmoid(x) without overflow for either sign.
double log_sigmoid(double x) { return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); }
double sigmoid(double x) { return std::exp(log_sigmoid(x)); }

}  // namespace

PairLoss pair_loss(const PreferenceLossConfig& config, const PairLogps& p) {
  PairLoss out;
  const double beta = config.beta;
  const double chosen_ratio = p.policy_chosen - p.reference_chosen;
  const double rejected_ratio = p.policy_rejected - p.reference_rejected;
  out.reward_chosen = beta * chosen_ratio;
  out.reward_rejected = beta * rejected_ratio;
  if (config.rl == "ipo") {
    // Averages over each response's tokens (TRL clamps a count to at least 1).
    const double nc = static_cast<double>(std::max<int64_t>(p.chosen_tokens, 1));
    const double nr = static_cast<double>(std::max<int64_t>(p.rejected_tokens, 1));
    const double gap = chosen_ratio / nc - rejected_ratio / nr - 1.0 / (2.0 * beta);
    out.loss = gap * gap;
    out.d_chosen = 2.0 * gap / nc;
    out.d_rejected = -2.0 * gap / nr;
    return out;
  }
  const double z = beta * (chosen_ratio - rejected_ratio), e = config.label_smoothing;
  out.loss = -(1.0 - e) * log_sigmoid(z) - e * log_sigmoid(-z);
  // d/dz of -log sigmoid(z) is -sigmoid(-z); of -log sigmoid(-z), sigmoid(z).
  const double d_logits = beta * (-(1.0 - e) * sigmoid(-z) + e * sigmoid(z));
  out.d_chosen = d_logits;
  out.d_rejected = -d_logits;
  return out;
}

RpoTerm rpo_term(double alpha, double sum, int64_t count, int64_t pairs) {
  if (count <= 0) return {};  // no chosen target to learn (TRL would give NaN)
  const double n = static_cast<double>(count), p = static_cast<double>(pairs);
  return {alpha * p * (-sum / n), -alpha * p / n};
}

RowLoss kto_row_loss(const KtoLossConfig& config, double logratio, double kl, bool desirable) {
  // 1 - sigmoid(x) = sigmoid(-x); its derivative in x is -sigmoid(x) sigmoid(-x).
  const double x = config.beta * (desirable ? logratio - kl : kl - logratio);
  const double weight = desirable ? config.desirable_weight : config.undesirable_weight;
  const double slope = weight * config.beta * sigmoid(x) * sigmoid(-x);
  return {weight * sigmoid(-x), desirable ? -slope : slope, config.beta * logratio};
}

double kto_kl(double sum_of_rank_means, int64_t ranks) {
  return ranks > 0 ? std::max(0.0, sum_of_rank_means / static_cast<double>(ranks)) : 0.0;
}

}  // namespace llm
