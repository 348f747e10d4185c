// What preference training logs, as TRL logs it, from sums over a logging window (or an
// evaluation) that ranks reduce and a checkpoint keeps.
//   dpo / ipo / simpo (per pair): rewards/chosen, rewards/rejected, rewards/accuracies (chosen's
//     reward above rejected's), rewards/margins, logps/chosen, logps/rejected: the means of the
//     micro-batches' means over pairs;
//     nll_loss (with rpo_alpha, simpo's cpo_alpha, and orpo): the mean of the micro-batches' NLL of
//     their chosen responses (orpo: whole chosen sequences); orpo's log_odds_ratio and
//     log_odds_chosen: the means over pairs of log sigmoid(z) and z.
//   kto (per row): kl (the mean of the micro-batches' estimates), rewards/chosen and logps/chosen
//     (means over desirable rows, when there were any), the same of the undesirable rows as
//     rejected, and rewards/margins when there were both.
//   reward_model (TRL's RewardTrainer, per pair): min_reward, mean_reward and max_reward (of
//     every score), accuracy (chosen's score above rejected's) and margin (chosen's minus
//     rejected's): the means of the micro-batches' values, min and max each over every rank's
//     scores of the micro-batch (TRL's gathered logits).
// TRL's logits/* (means of whole padded logit tensors) are not logged.
#pragma once
#include <string>

#include "train/preference_loss.h"

namespace llm {

struct PreferenceMetrics {
  double pairs = 0;  // pairs (kto: rows)
  double loss = 0, reward_chosen = 0, reward_rejected = 0, accuracy = 0, logps_chosen = 0, logps_rejected = 0;
  double chosen = 0, rejected = 0;  // the responses summed in reward_/logps_chosen and _rejected
  double kl = 0, kl_terms = 0;      // kto: the sum of the KL estimates and their count
  double nll = 0, nll_terms = 0;    // the sum of the micro-batches' NLL and their count
  double log_sigmoid_odds = 0, log_odds = 0, odds_pairs = 0;  // orpo: sums over its pairs
  // reward_model: the sums of the micro-batches' lowest and highest scores, and their count
  double min_reward = 0, max_reward = 0, extremes = 0;
  void add(const PairLoss& result);
  void add_kto_row(bool desirable, double policy_logps, const RowLoss& result);
  void add(const PreferenceMetrics& other);
  PreferenceMetrics means() const;  // loss and accuracy per pair, the rest per response or estimate
  // A micro-batch's sums as its means, each counted once: TRL logs the mean of its micro-batches'
  // means (dpo / ipo / simpo / orpo), which an epoch's smaller last micro-batch tells apart.
  PreferenceMetrics as_one_micro_batch() const;
  // The sums as one array, for a reduction over ranks and a checkpoint, and back.
  static constexpr int kFields = 19;
  void to_array(double* out) const;
  static PreferenceMetrics from_array(const double* in);
};

// Which trainer's metrics a log shows: DPO's and its kin's, KTO's or the RewardTrainer's.
enum class PreferenceLog { pairs, kto, reward };
// The means of m but the loss as a log line ("rewards/chosen 0.012 | ... ") and as metrics.jsonl
// members (", \"<prefix>rewards/chosen\": 0.012, ..."), TRL's names for `log`'s trainer.
std::string preference_text(const PreferenceMetrics& means, PreferenceLog log);
std::string preference_json(const PreferenceMetrics& means, PreferenceLog log, const std::string& prefix);

}  // namespace llm
