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
//   dpo / ipo and kto, TRL 1.9's token-level logs: entropy (the mean over every response token of
//     its softmax's entropy; kto: the training sequences'), logits/chosen and logits/rejected (the
//     mean logit of a chosen / rejected response's token), and dpo / ipo's mean_token_accuracy
//     (the share of chosen tokens that are their logits' argmax): each the mean of the
//     micro-batches' ratios of sums over every rank's tokens (TokenSums).
// Not logged: CPO's and ORPO's logits/* (simpo, orpo), means of whole padded logit tensors.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "train/preference_loss.h"

namespace llm {

// Which trainer's metrics a log shows: DPO's and its kin's, KTO's or the RewardTrainer's.
enum class PreferenceLog { pairs, kto, reward };

// The sums behind one micro-batch's token-level logs, on one rank, then over all of them (TRL
// gathers these sums, then divides); batches counts the ranks that had a batch.
struct TokenSums {
  double batches = 0, tokens = 0, entropy = 0;  // over every response token
  double chosen_tokens = 0, chosen_logits = 0, chosen_hits = 0, rejected_tokens = 0, rejected_logits = 0;
  static constexpr int kFields = 8;
  void add(const TokenSums& other);
  void to_array(double* out) const;
  static TokenSums from_array(const double* in);
};

// Per slot (a response of a pair batch) the sums over its tokens of their softmax entropies,
// mean logits and argmax hits (engine/ops.h's SequenceRowSums; none for KTO, which logs no
// token accuracy), on the host; and its tokens.
struct SlotTokenStats {
  std::vector<float> entropy, mean_logit, hits;
  std::vector<int64_t> tokens;
};
// A pair batch's sums over B pairs: slot 2r its chosen response (with slot 2B + r, its chosen
// targets of id 0, when split_zero), 2r + 1 its rejected one.
TokenSums pair_token_sums(const SlotTokenStats& slots, size_t B, bool split_zero);
// A KTO batch's: row r's own completion in slot stride x r, a chosen one where desirable[r].
TokenSums kto_token_sums(const SlotTokenStats& slots, const std::vector<bool>& desirable, size_t stride);

struct PreferenceMetrics {
  double pairs = 0;  // pairs (kto: rows)
  double loss = 0, reward_chosen = 0, reward_rejected = 0, accuracy = 0, logps_chosen = 0, logps_rejected = 0;
  double chosen = 0, rejected = 0;  // the responses summed in reward_/logps_chosen and _rejected
  double kl = 0, kl_terms = 0;      // kto: the sum of the KL estimates and their count
  double nll = 0, nll_terms = 0;    // the sum of the micro-batches' NLL and their count
  double log_sigmoid_odds = 0, log_odds = 0, odds_pairs = 0;  // orpo: sums over its pairs
  // reward_model: the sums of the micro-batches' lowest and highest scores, and their count
  double min_reward = 0, max_reward = 0, extremes = 0;
  // The token-level logs: sums of the micro-batches' ratios and their counts
  double entropy = 0, entropy_terms = 0, logits_chosen = 0, logits_chosen_terms = 0;
  double logits_rejected = 0, logits_rejected_terms = 0, token_accuracy = 0, token_accuracy_terms = 0;
  void add(const PairLoss& result);
  // One micro-batch's token-level ratios from its sums over every rank, as `log`'s trainer adds
  // them: DPOTrainer's each (0 where no token), KTOTrainer's logits/* only where a side had tokens.
  void add_token_ratios(const TokenSums& all_ranks, PreferenceLog log);
  void add_kto_row(bool desirable, double policy_logps, const RowLoss& result);
  void add(const PreferenceMetrics& other);
  PreferenceMetrics means() const;  // loss and accuracy per pair, the rest per response or estimate
  // A micro-batch's sums as its means, each counted once: TRL logs the mean of its micro-batches'
  // means (dpo / ipo / simpo / orpo), which an epoch's smaller last micro-batch tells apart.
  PreferenceMetrics as_one_micro_batch() const;
  // The sums as one array, for a reduction over ranks and a checkpoint, and back.
  static constexpr int kFields = 27;
  void to_array(double* out) const;
  static PreferenceMetrics from_array(const double* in);
};

// The means of m but the loss, by TRL's names for `log`'s trainer ("rewards/chosen", ...), in its order.
std::vector<std::pair<const char*, double>> preference_values(const PreferenceMetrics& means, PreferenceLog log);
// The same as a log line ("rewards/chosen 0.012 | ... ") and as metrics.jsonl members
// (", \"<prefix>rewards/chosen\": 0.012, ...").
std::string preference_text(const PreferenceMetrics& means, PreferenceLog log);
std::string preference_json(const PreferenceMetrics& means, PreferenceLog log, const std::string& prefix);

}  // namespace llm
