// The preference losses of Axolotl's rl (TRL's DPOTrainer and KTOTrainer), pair by pair (row by row)
// on the host: a micro-batch holds few, and each loss needs a few sums the device has already reduced.
//   dpo (loss_type sigmoid): z = (policy_chosen - reference_chosen) - (policy_rejected -
//     reference_rejected) over summed log-likelihoods; loss = -(1 - e) log sigmoid(beta z)
//     - e log sigmoid(-beta z), e = dpo_label_smoothing (conservative DPO; 0: plain DPO).
//     With dpo_loss_type, the weighted sum of its sigmoid, ipo and sft terms (dpo_terms).
//   ipo: the same log-ratios averaged over each response's tokens; loss = (z - 1 / (2 beta))^2.
//   dpo with norm_loss (Axolotl's dpo_norm_loss): DPO's loss on those averaged log-ratios.
//   simpo (TRL's CPOTrainer, loss_type simpo): no reference; z = beta (chosen - rejected) - gamma
//     over log-likelihoods averaged over each response's tokens; loss = -log sigmoid(z).
//   orpo (TRL's ORPOTrainer): no reference; over log-likelihoods averaged over each response's
//     tokens, c and r, the log odds ratio z = (c - r) - (log(1 - e^c) - log(1 - e^r)); the pair's
//     odds-ratio term -beta log sigmoid(z) (beta: Axolotl's orpo_alpha), to which the trainer adds
//     the micro-batch's NLL of its chosen sequences, prompts included (rpo_term, alpha 1).
//   kto (loss_type kto): r = policy - reference of a row's completion; a desirable row's loss
//     w_d (1 - sigmoid(beta (r - kl))), an undesirable one's w_u (1 - sigmoid(beta (kl - r))), kl
//     the micro-batch's KL estimate (the mean of policy - reference over its mismatched sequences,
//     averaged over ranks, at least 0; no gradient flows through it).
// Rewards, as TRL logs them: beta (policy - reference) of each response, over the log-likelihoods
// the loss uses (summed; averaged for ipo, simpo and orpo).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace llm {

struct PreferenceLossConfig {
  std::string rl = "dpo";  // dpo | ipo | simpo | orpo
  double beta = 0.1;
  double label_smoothing = 0.0;
  double simpo_gamma = 0.5;  // SimPO's target margin
  bool norm_loss = false;    // dpo on averaged log-likelihoods (Axolotl's dpo_norm_loss)
  // rl: dpo's terms (TRL's loss_type list: sigmoid, ipo, sft) and their weights (empty: 1 each);
  // no terms: rl's own loss.
  std::vector<std::string> loss_types;
  std::vector<double> loss_weights;
};

// The dpo / ipo terms of a pair's loss with their weights: `loss_types` (ipo among them averages
// every term's log-likelihoods, as TRL), or rl's own. A sigmoid or ipo term adds weight x beta x
// the log-ratios to the rewards; an sft term adds weight x the micro-batch's chosen NLL (the
// trainer's, as rpo_term) and no reward, as TRL's.
std::vector<std::pair<std::string, double>> dpo_terms(const PreferenceLossConfig& config);
// The weight of dpo's NLL term: rpo_alpha (< 0: none) plus the sft terms' weights; < 0: no NLL.
double dpo_nll_weight(const PreferenceLossConfig& config, double rpo_alpha);

// One pair: summed log-likelihoods of each response under the policy and the reference (0 for
// simpo and orpo), and each response's count of tokens (targets).
struct PairLogps {
  double policy_chosen = 0, policy_rejected = 0, reference_chosen = 0, reference_rejected = 0;
  int64_t chosen_tokens = 1, rejected_tokens = 1;
  double weight = 1;  // WPO's (wpo_weight): the pair's loss and gradient scaled by it
};

// WPO's weight of a pair (TRL's use_weighting, Eq. 2 of Zhou et al. 2024): the product over its two
// responses of exp(mean over the response's tokens of log p - log sum_v p_v^2), from their
// aligned sums (linear_sequence_logps) and token counts (at least 1); a constant of the step.
double wpo_weight(double chosen_aligned, int64_t chosen_tokens, double rejected_aligned, int64_t rejected_tokens);

// A pair's loss, its gradient with respect to the policy's two summed log-likelihoods, its rewards,
// and the policy's log-likelihoods as the loss uses them (what TRL logs as logps/*); orpo's log odds
// ratio z and log sigmoid(z) (TRL's log_odds_chosen and log_odds_ratio).
struct PairLoss {
  double loss = 0, d_chosen = 0, d_rejected = 0;
  double reward_chosen = 0, reward_rejected = 0;
  double logps_chosen = 0, logps_rejected = 0;
  bool odds_ratio = false;
  double log_odds = 0, log_sigmoid_odds = 0;
};
PairLoss pair_loss(const PreferenceLossConfig& config, const PairLogps& pair);

// A reward model's pair (TRL's RewardTrainer): its chosen and rejected scores; loss
// -log sigmoid(chosen - rejected) + center (chosen + rejected)^2 (center_rewards_coefficient),
// its gradient with respect to each score, the scores as rewards.
PairLoss bradley_terry_loss(double chosen, double rejected, double center = 0);

// RPO (rpo_alpha, TRL's before 1.0), CPO's behaviour cloning (cpo_alpha, with simpo) and ORPO's
// NLL (alpha 1, every chosen target, prompt included): each pair's
// loss plus alpha x the mean NLL of the micro-batch's chosen response tokens (sum: their summed
// log-likelihood, count: how many; TRL's DPO cross_entropy leaves out targets of token id 0, which
// the caller then keeps out of both). For `pairs` pairs: the added loss summed over them, and its
// gradient with respect to each chosen log-likelihood.
struct RpoTerm {
  double loss = 0, d_chosen = 0;
};
RpoTerm rpo_term(double alpha, double sum, int64_t count, int64_t pairs);

// KTO: the weights of desirable and undesirable rows (kto_desirable_weight, kto_undesirable_weight).
struct KtoLossConfig {
  double beta = 0.1, desirable_weight = 1, undesirable_weight = 1;
};
// A row's loss, its gradient with respect to the policy's log-likelihood of its completion, and
// its reward; logratio = policy - reference.
struct RowLoss {
  double loss = 0, d_policy = 0, reward = 0;
};
RowLoss kto_row_loss(const KtoLossConfig& config, double logratio, double kl, bool desirable);
// The micro-batch's KL estimate from its ranks' means of policy - reference (TRL's gathered mean,
// clamped at 0).
double kto_kl(double sum_of_rank_means, int64_t ranks);

}  // namespace llm
