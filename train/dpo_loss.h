// The preference losses of Axolotl's rl (TRL's DPOTrainer), pair by pair on the host: a micro-batch
// holds few pairs, and each pair's loss needs four sums the device has already reduced.
//   dpo (loss_type sigmoid): z = (policy_chosen - reference_chosen) - (policy_rejected -
//     reference_rejected) over summed log-likelihoods; loss = -(1 - e) log sigmoid(beta z)
//     - e log sigmoid(-beta z), e = dpo_label_smoothing (conservative DPO; 0: plain DPO).
//   ipo: the same log-ratios averaged over each response's tokens; loss = (z - 1 / (2 beta))^2.
// Rewards, as TRL logs them: beta (policy - reference) of each response, over summed log-likelihoods.
#pragma once
#include <cstdint>
#include <string>

namespace llm {

struct PreferenceLossConfig {
  std::string rl = "dpo";  // dpo | ipo
  double beta = 0.1;
  double label_smoothing = 0.0;
};

// One pair: summed log-likelihoods of each response under the policy and the reference, and each
// response's count of tokens (targets).
struct PairLogps {
  double policy_chosen = 0, policy_rejected = 0, reference_chosen = 0, reference_rejected = 0;
  int64_t chosen_tokens = 1, rejected_tokens = 1;
};

// A pair's loss, its gradient with respect to the policy's two log-likelihoods, and its rewards.
struct PairLoss {
  double loss = 0, d_chosen = 0, d_rejected = 0;
  double reward_chosen = 0, reward_rejected = 0;
};
PairLoss pair_loss(const PreferenceLossConfig& config, const PairLogps& pair);

// RPO (rpo_alpha, TRL's before 1.0): each pair's loss plus alpha x the mean NLL of the micro-batch's
// chosen response tokens (sum: their summed log-likelihood, count: how many; TRL's cross_entropy
// leaves out targets of token id 0, which the caller keeps out of both). For `pairs` pairs: the
// added loss summed over them, and its gradient with respect to each chosen log-likelihood.
struct RpoTerm {
  double loss = 0, d_chosen = 0;
};
RpoTerm rpo_term(double alpha, double sum, int64_t count, int64_t pairs);

// TRL's logged means over pairs: rewards/chosen, rewards/rejected, rewards/accuracies (chosen's
// reward above rejected's), rewards/margins, logps/chosen, logps/rejected, and the loss.
struct PreferenceMetrics {
  double pairs = 0, loss = 0, reward_chosen = 0, reward_rejected = 0, accuracy = 0, logps_chosen = 0,
         logps_rejected = 0;
  void add(const PairLogps& pair, const PairLoss& result);
  void add(const PreferenceMetrics& other);
  PreferenceMetrics means() const;  // each sum over pairs divided by their count (pairs: the count)
  // The sums as one array, for a reduction over ranks, and back.
  static constexpr int kFields = 7;
  void to_array(double* out) const;
  static PreferenceMetrics from_array(const double* in);
};

// The means of m but the loss as a log line ("rewards/chosen 0.012 | ... ") and as metrics.jsonl members
// (", \"<prefix>rewards/chosen\": 0.012, ..."), TRL's names.
std::string preference_text(const PreferenceMetrics& means);
std::string preference_json(const PreferenceMetrics& means, const std::string& prefix);

}  // namespace llm
