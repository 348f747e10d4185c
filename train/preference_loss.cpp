// defines: pair_loss (DPO's sigmoid loss with label smoothing, IPO's squared loss, SimPO's, ORPO's
// odds ratio), bradley_terry_loss, wpo_weight, rpo_term, kto_row_loss, kto_kl
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

std::vector<std::pair<std::string, double>> dpo_terms(const PreferenceLossConfig& config) {
  if (config.loss_types.empty()) return {{config.rl == "ipo" ? "ipo" : "sigmoid", 1.0}};
  std::vector<std::pair<std::string, double>> out;
  for (size_t i = 0; i < config.loss_types.size(); i++)
    out.push_back({config.loss_types[i], i < config.loss_weights.size() ? config.loss_weights[i] : 1.0});
  return out;
}

double dpo_nll_weight(const PreferenceLossConfig& config, double rpo_alpha) {
  double weight = rpo_alpha;
  for (const auto& [type, w] : dpo_terms(config))
    if (type == "sft") weight = std::max(weight, 0.0) + w;
  return weight;
}

PairLoss pair_loss(const PreferenceLossConfig& config, const PairLogps& p) {
  const bool dpo = config.rl == "dpo" || config.rl == "ipo";
  const std::vector<std::pair<std::string, double>> terms = dpo ? dpo_terms(config) : decltype(dpo_terms(config)){};
  const bool ipo_term = std::any_of(terms.begin(), terms.end(), [](const auto& t) { return t.first == "ipo"; });
  // IPO (any ipo term), SimPO and ORPO average each response's log-likelihoods over its tokens (a
  // count of at least 1) before the loss, and TRL's rewards and logged logps are of those averages.
  const bool averaged = ipo_term || config.rl == "simpo" || config.rl == "orpo" || config.norm_loss;
  const double nc = averaged ? static_cast<double>(std::max<int64_t>(p.chosen_tokens, 1)) : 1.0;
  const double nr = averaged ? static_cast<double>(std::max<int64_t>(p.rejected_tokens, 1)) : 1.0;
  const double beta = config.beta;
  const double chosen_ratio = (p.policy_chosen - p.reference_chosen) / nc;
  const double rejected_ratio = (p.policy_rejected - p.reference_rejected) / nr;
  PairLoss out;
  double reward_weight = 1;  // dpo: the sum of its sigmoid and ipo terms' weights (TRL's weighted rewards)
  // d(loss) / d(chosen_ratio) and d(loss) / d(rejected_ratio)
  double d_chosen_ratio = 0, d_rejected_ratio = 0;
  if (dpo) {
    reward_weight = 0;
    for (const auto& [type, weight] : terms) {
      double d_margin = 0;  // d(term) / d(chosen_ratio - rejected_ratio)
      if (type == "ipo") {
        const double gap = chosen_ratio - rejected_ratio - 1.0 / (2.0 * beta);
        out.loss += weight * gap * gap;
        d_margin = 2.0 * gap;
      } else if (type == "sigmoid") {
        const double z = beta * (chosen_ratio - rejected_ratio), e = config.label_smoothing;
        out.loss += weight * (-(1.0 - e) * log_sigmoid(z) - e * log_sigmoid(-z));
        // d/dz of -log sigmoid(z) is -sigmoid(-z); of -log sigmoid(-z), sigmoid(z).
        d_margin = beta * (-(1.0 - e) * sigmoid(-z) + e * sigmoid(z));
      } else {
        continue;  // sft: the trainer's NLL term (dpo_nll_weight), no reward
      }
      reward_weight += weight;
      d_chosen_ratio += weight * d_margin, d_rejected_ratio -= weight * d_margin;
    }
  } else if (config.rl == "orpo") {
    const double c = chosen_ratio, r = rejected_ratio;  // no reference: the averaged log-likelihoods
    const double z = (c - r) - (log1m_exp(c) - log1m_exp(r));
    out.odds_ratio = true, out.log_odds = z, out.log_sigmoid_odds = log_sigmoid(z);
    out.loss = -beta * out.log_sigmoid_odds;
    // dz/dc = 1 + e^c / (1 - e^c) = 1 / (1 - e^c); dz/dr = -1 / (1 - e^r).
    const double d_z = -beta * sigmoid(-z);
    d_chosen_ratio = d_z / -std::expm1(std::min(c, -1e-12));
    d_rejected_ratio = -d_z / -std::expm1(std::min(r, -1e-12));
  } else {  // simpo
    const double z = beta * (chosen_ratio - rejected_ratio) - config.simpo_gamma;
    out.loss = -log_sigmoid(z);
    d_chosen_ratio = -beta * sigmoid(-z), d_rejected_ratio = -d_chosen_ratio;
  }
  out.reward_chosen = reward_weight * beta * chosen_ratio;
  out.reward_rejected = reward_weight * beta * rejected_ratio;
  out.logps_chosen = p.policy_chosen / nc;
  out.logps_rejected = p.policy_rejected / nr;
  out.d_chosen = p.weight * d_chosen_ratio / nc;
  out.d_rejected = p.weight * d_rejected_ratio / nr;
  out.loss *= p.weight;
  return out;
}

double wpo_weight(double chosen_aligned, int64_t chosen_tokens, double rejected_aligned, int64_t rejected_tokens) {
  const auto mean = [](double sum, int64_t tokens) { return sum / static_cast<double>(std::max<int64_t>(tokens, 1)); };
  return std::exp(mean(chosen_aligned, chosen_tokens)) * std::exp(mean(rejected_aligned, rejected_tokens));
}

PairLoss bradley_terry_loss(double chosen, double rejected, double center) {
  PairLoss out;
  const double z = chosen - rejected, sum = chosen + rejected;
  out.loss = -log_sigmoid(z) + center * sum * sum;
  out.d_chosen = -sigmoid(-z) + 2 * center * sum, out.d_rejected = sigmoid(-z) + 2 * center * sum;
  out.reward_chosen = chosen, out.reward_rejected = rejected;
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
