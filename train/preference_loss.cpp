// defines: pair_loss (DPO's sigmoid loss with label smoothing, IPO's squared loss, SimPO's, ORPO's
// odds ratio), rpo_term, kto_row_loss, kto_kl
#include "train/preference_loss.h"

#include <algorithm>
#include <cmath>

namespace llm {
namespace {

// log sigmoid(x) without overflow for either sign.
double log_sigmoid(double x) { return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); }
double sigmoid(double x) { return std::exp(log_sigmoid(x)); }

// log(1 - e^x) for x < 0, accurate at both ends. An average log-likelihood of exactly 0 (every
// token certain) would make it -inf: it is held just below.
double log1m_exp(double x) {
  x = std::min(x, -1e-12);
  return x > -std::log(2.0) ? std::log(-std::expm1(x)) : std::log1p(-std::exp(x));
}

}  // namespace

PairLoss pair_loss(const PreferenceLossConfig& config, const PairLogps& p) {
  // IPO, SimPO and ORPO average each response's log-likelihoods over its tokens (a count of at
  // least 1) before the loss, and TRL's rewards and logged logps are of those averages.
  const bool averaged = config.rl == "ipo" || config.rl == "simpo" || config.rl == "orpo" || config.norm_loss;
  const double nc = averaged ? static_cast<double>(std::max<int64_t>(p.chosen_tokens, 1)) : 1.0;
  const double nr = averaged ? static_cast<double>(std::max<int64_t>(p.rejected_tokens, 1)) : 1.0;
  const double beta = config.beta;
  const double chosen_ratio = (p.policy_chosen - p.reference_chosen) / nc;
  const double rejected_ratio = (p.policy_rejected - p.reference_rejected) / nr;
  PairLoss out;
  out.reward_chosen = beta * chosen_ratio;
  out.reward_rejected = beta * rejected_ratio;
  out.logps_chosen = p.policy_chosen / nc;
  out.logps_rejected = p.policy_rejected / nr;
  // d(loss) / d(chosen_ratio) and d(loss) / d(rejected_ratio)
  double d_chosen_ratio = 0, d_rejected_ratio = 0;
  if (config.rl == "ipo") {
    const double gap = chosen_ratio - rejected_ratio - 1.0 / (2.0 * beta);
    out.loss = gap * gap;
    d_chosen_ratio = 2.0 * gap, d_rejected_ratio = -2.0 * gap;
  } else if (config.rl == "orpo") {
    const double c = chosen_ratio, r = rejected_ratio;  // no reference: the averaged log-likelihoods
    const double z = (c - r) - (log1m_exp(c) - log1m_exp(r));
    out.odds_ratio = true, out.log_odds = z, out.log_sigmoid_odds = log_sigmoid(z);
    out.loss = -beta * out.log_sigmoid_odds;
    // dz/dc = 1 + e^c / (1 - e^c) = 1 / (1 - e^c); dz/dr = -1 / (1 - e^r).
    const double d_z = -beta * sigmoid(-z);
    d_chosen_ratio = d_z / -std::expm1(std::min(c, -1e-12));
    d_rejected_ratio = -d_z / -std::expm1(std::min(r, -1e-12));
  } else {
    const double gamma = config.rl == "simpo" ? config.simpo_gamma : 0.0;
    const double z = beta * (chosen_ratio - rejected_ratio) - gamma, e = config.label_smoothing;
    out.loss = -(1.0 - e) * log_sigmoid(z) - e * log_sigmoid(-z);
    // d/dz of -log sigmoid(z) is -sigmoid(-z); of -log sigmoid(-z), sigmoid(z).
    const double d_margin = beta * (-(1.0 - e) * sigmoid(-z) + e * sigmoid(z));
    d_chosen_ratio = d_margin, d_rejected_ratio = -d_margin;
  }
  out.d_chosen = d_chosen_ratio / nc;
  out.d_rejected = d_rejected_ratio / nr;
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
