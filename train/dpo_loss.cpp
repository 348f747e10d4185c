// defines: pair_loss (DPO's sigmoid loss with label smoothing, IPO's squared loss), PreferenceMetrics
#include "train/dpo_loss.h"

#include <algorithm>
#include <utility>
#include <vector>
#include <cmath>

#include <fmt/core.h>

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

void PreferenceMetrics::add(const PairLogps& pair, const PairLoss& result) {
  pairs += 1;
  loss += result.loss;
  reward_chosen += result.reward_chosen;
  reward_rejected += result.reward_rejected;
  accuracy += result.reward_chosen > result.reward_rejected ? 1.0 : 0.0;
  logps_chosen += pair.policy_chosen;
  logps_rejected += pair.policy_rejected;
}

void PreferenceMetrics::add(const PreferenceMetrics& o) {
  double a[kFields], b[kFields];
  to_array(a);
  o.to_array(b);
  for (int i = 0; i < kFields; i++) a[i] += b[i];
  *this = from_array(a);
}

PreferenceMetrics PreferenceMetrics::means() const {
  PreferenceMetrics m = *this;
  if (pairs <= 0) return m;
  for (double* v : {&m.loss, &m.reward_chosen, &m.reward_rejected, &m.accuracy, &m.logps_chosen, &m.logps_rejected})
    *v /= pairs;
  return m;
}

void PreferenceMetrics::to_array(double* out) const {
  const double values[kFields] = {pairs, loss, reward_chosen, reward_rejected, accuracy, logps_chosen, logps_rejected};
  std::copy(values, values + kFields, out);
}

PreferenceMetrics PreferenceMetrics::from_array(const double* in) {
  PreferenceMetrics m;
  m.pairs = in[0], m.loss = in[1], m.reward_chosen = in[2], m.reward_rejected = in[3];
  m.accuracy = in[4], m.logps_chosen = in[5], m.logps_rejected = in[6];
  return m;
}

namespace {
std::vector<std::pair<const char*, double>> named(const PreferenceMetrics& m) {
  return {{"rewards/chosen", m.reward_chosen}, {"rewards/rejected", m.reward_rejected},
          {"rewards/accuracies", m.accuracy},  {"rewards/margins", m.reward_chosen - m.reward_rejected},
          {"logps/chosen", m.logps_chosen},    {"logps/rejected", m.logps_rejected}};
}
}  // namespace

std::string preference_text(const PreferenceMetrics& means) {
  std::string out;
  for (const auto& [name, value] : named(means)) out += fmt::format("{}{} {:.4g}", out.empty() ? "" : " | ", name, value);
  return out;
}

std::string preference_json(const PreferenceMetrics& means, const std::string& prefix) {
  std::string out;
  for (const auto& [name, value] : named(means)) out += fmt::format(", \"{}{}\": {:.9g}", prefix, name, value);
  return out;
}

}  // namespace llm
