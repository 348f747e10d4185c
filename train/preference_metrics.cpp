// defines: TokenSums, pair_token_sums, kto_token_sums, PreferenceMetrics, preference_text, preference_json
#include "train/preference_metrics.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "train/metrics.h"

namespace llm {

void PreferenceMetrics::add(const PairLoss& result) {
  pairs += 1, chosen += 1, rejected += 1;
  loss += result.loss;
  reward_chosen += result.reward_chosen;
  reward_rejected += result.reward_rejected;
  accuracy += result.reward_chosen > result.reward_rejected ? 1.0 : 0.0;
  logps_chosen += result.logps_chosen;
  logps_rejected += result.logps_rejected;
  if (result.odds_ratio) log_sigmoid_odds += result.log_sigmoid_odds, log_odds += result.log_odds, odds_pairs += 1;
}

void TokenSums::add(const TokenSums& o) {
  double a[kFields], b[kFields];
  to_array(a);
  o.to_array(b);
  for (int i = 0; i < kFields; i++) a[i] += b[i];
  *this = from_array(a);
}

void TokenSums::to_array(double* out) const {
  const double values[kFields] = {batches,      tokens,        entropy,         chosen_tokens,
                                  chosen_logits, chosen_hits, rejected_tokens, rejected_logits};
  std::copy(values, values + kFields, out);
}

TokenSums TokenSums::from_array(const double* in) {
  TokenSums t;
  t.batches = in[0], t.tokens = in[1], t.entropy = in[2], t.chosen_tokens = in[3], t.chosen_logits = in[4];
  t.chosen_hits = in[5], t.rejected_tokens = in[6], t.rejected_logits = in[7];
  return t;
}

TokenSums pair_token_sums(const SlotTokenStats& st, size_t B, bool split_zero) {
  TokenSums t;
  t.batches = 1;
  const auto add = [&](size_t slot, bool chosen) {
    const double tokens = static_cast<double>(st.tokens.at(slot));
    t.tokens += tokens, t.entropy += st.entropy.at(slot);
    if (chosen) t.chosen_tokens += tokens, t.chosen_logits += st.mean_logit[slot], t.chosen_hits += st.hits.at(slot);
    else t.rejected_tokens += tokens, t.rejected_logits += st.mean_logit[slot];
  };
  for (size_t r = 0; r < B; r++) {
    add(2 * r, true);
    add(2 * r + 1, false);
    if (split_zero) add(2 * B + r, true);
  }
  return t;
}

TokenSums kto_token_sums(const SlotTokenStats& st, const std::vector<bool>& desirable, size_t stride) {
  TokenSums t;
  t.batches = 1;
  for (size_t r = 0; r < desirable.size(); r++) {
    const size_t slot = stride * r;
    const double tokens = static_cast<double>(st.tokens.at(slot));
    t.tokens += tokens, t.entropy += st.entropy.at(slot);
    if (desirable[r]) t.chosen_tokens += tokens, t.chosen_logits += st.mean_logit.at(slot);
    else t.rejected_tokens += tokens, t.rejected_logits += st.mean_logit.at(slot);
  }
  return t;
}

void PreferenceMetrics::add_token_ratios(const TokenSums& t, PreferenceLog log) {
  if (t.batches == 0) return;  // no rank had a batch: no record (an evaluation's spare round)
  const auto ratio = [](double sum, double count) { return count > 0 ? sum / count : 0.0; };
  entropy += ratio(t.entropy, t.tokens), entropy_terms += 1;
  const bool pairs = log == PreferenceLog::pairs;
  if (pairs || t.chosen_tokens > 0) logits_chosen += ratio(t.chosen_logits, t.chosen_tokens), logits_chosen_terms += 1;
  if (pairs || t.rejected_tokens > 0)
    logits_rejected += ratio(t.rejected_logits, t.rejected_tokens), logits_rejected_terms += 1;
  if (pairs) token_accuracy += ratio(t.chosen_hits, t.chosen_tokens), token_accuracy_terms += 1;
}

void PreferenceMetrics::add_kto_row(bool desirable, double policy_logps, const RowLoss& result) {
  pairs += 1;
  loss += result.loss;
  (desirable ? chosen : rejected) += 1;
  (desirable ? reward_chosen : reward_rejected) += result.reward;
  (desirable ? logps_chosen : logps_rejected) += policy_logps;
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
  const auto divide = [](double count, std::initializer_list<double*> values) {
    if (count > 0)
      for (double* v : values) *v /= count;
  };
  divide(pairs, {&m.loss, &m.accuracy});
  divide(chosen, {&m.reward_chosen, &m.logps_chosen});
  divide(rejected, {&m.reward_rejected, &m.logps_rejected});
  divide(kl_terms, {&m.kl});
  divide(nll_terms, {&m.nll});
  divide(odds_pairs, {&m.log_sigmoid_odds, &m.log_odds});
  divide(extremes, {&m.min_reward, &m.max_reward});
  divide(entropy_terms, {&m.entropy});
  divide(logits_chosen_terms, {&m.logits_chosen});
  divide(logits_rejected_terms, {&m.logits_rejected});
  divide(token_accuracy_terms, {&m.token_accuracy});
  return m;
}

PreferenceMetrics PreferenceMetrics::as_one_micro_batch() const {
  PreferenceMetrics m = means();
  for (double* count : {&m.pairs, &m.chosen, &m.rejected, &m.kl_terms, &m.nll_terms, &m.odds_pairs, &m.extremes,
                        &m.entropy_terms, &m.logits_chosen_terms, &m.logits_rejected_terms, &m.token_accuracy_terms})
    *count = *count > 0 ? 1 : 0;
  return m;
}

// In the order of the checkpoint's preference_since_log_<i> keys: the first seven were DPO's (a
// checkpoint written before a field existed reads it as 0).
void PreferenceMetrics::to_array(double* out) const {
  const double values[kFields] = {pairs,    loss,     reward_chosen, reward_rejected, accuracy, logps_chosen,
                                  logps_rejected, chosen, rejected, kl, kl_terms, nll, nll_terms,
                                  log_sigmoid_odds, log_odds, odds_pairs, min_reward, max_reward, extremes,
                                  entropy, entropy_terms, logits_chosen, logits_chosen_terms, logits_rejected,
                                  logits_rejected_terms, token_accuracy, token_accuracy_terms};
  std::copy(values, values + kFields, out);
}

PreferenceMetrics PreferenceMetrics::from_array(const double* in) {
  PreferenceMetrics m;
  m.pairs = in[0], m.loss = in[1], m.reward_chosen = in[2], m.reward_rejected = in[3];
  m.accuracy = in[4], m.logps_chosen = in[5], m.logps_rejected = in[6];
  m.chosen = in[7], m.rejected = in[8], m.kl = in[9], m.kl_terms = in[10], m.nll = in[11], m.nll_terms = in[12];
  m.log_sigmoid_odds = in[13], m.log_odds = in[14], m.odds_pairs = in[15];
  m.min_reward = in[16], m.max_reward = in[17], m.extremes = in[18];
  m.entropy = in[19], m.entropy_terms = in[20], m.logits_chosen = in[21], m.logits_chosen_terms = in[22];
  m.logits_rejected = in[23], m.logits_rejected_terms = in[24], m.token_accuracy = in[25];
  m.token_accuracy_terms = in[26];
  return m;
}

std::vector<std::pair<const char*, double>> preference_values(const PreferenceMetrics& m, PreferenceLog log) {
  if (log == PreferenceLog::reward)
    return {{"min_reward", m.min_reward},
            {"mean_reward", (m.reward_chosen + m.reward_rejected) / 2},
            {"max_reward", m.max_reward},
            {"accuracy", m.accuracy},
            {"margin", m.reward_chosen - m.reward_rejected}};
  std::vector<std::pair<const char*, double>> tokens;  // TRL's token-level logs, where formed
  if (m.entropy_terms > 0) tokens.push_back({"entropy", m.entropy});
  if (m.logits_chosen_terms > 0) tokens.push_back({"logits/chosen", m.logits_chosen});
  if (m.logits_rejected_terms > 0) tokens.push_back({"logits/rejected", m.logits_rejected});
  if (m.token_accuracy_terms > 0) tokens.push_back({"mean_token_accuracy", m.token_accuracy});
  if (log == PreferenceLog::pairs) {
    std::vector<std::pair<const char*, double>> out = tokens;
    out.insert(out.end(), {
        {"rewards/chosen", m.reward_chosen}, {"rewards/rejected", m.reward_rejected},
        {"rewards/accuracies", m.accuracy},  {"rewards/margins", m.reward_chosen - m.reward_rejected},
        {"logps/chosen", m.logps_chosen},    {"logps/rejected", m.logps_rejected}});
    if (m.nll_terms > 0) out.push_back({"nll_loss", m.nll});
    if (m.odds_pairs > 0) {
      out.push_back({"log_odds_ratio", m.log_sigmoid_odds});
      out.push_back({"log_odds_chosen", m.log_odds});
    }
    return out;
  }
  std::vector<std::pair<const char*, double>> out = tokens;
  out.push_back({"kl", m.kl});
  if (m.chosen > 0) out.insert(out.end(), {{"rewards/chosen", m.reward_chosen}, {"logps/chosen", m.logps_chosen}});
  if (m.rejected > 0)
    out.insert(out.end(), {{"rewards/rejected", m.reward_rejected}, {"logps/rejected", m.logps_rejected}});
  if (m.chosen > 0 && m.rejected > 0) out.push_back({"rewards/margins", m.reward_chosen - m.reward_rejected});
  return out;
}

std::string preference_text(const PreferenceMetrics& means, PreferenceLog log) {
  std::string out;
  for (const auto& [name, value] : preference_values(means, log))
    out += fmt::format("{}{} {:.4g}", out.empty() ? "" : " | ", name, value);
  return out;
}

std::string preference_json(const PreferenceMetrics& means, PreferenceLog log, const std::string& prefix) {
  std::string out;
  for (const auto& [name, value] : preference_values(means, log)) out += fmt::format(", \"{}{}\": {}", prefix, name, json_number(value));
  return out;
}

}  // namespace llm
