// defines: the preference-training parts of Trainer::Impl (rl: dpo / ipo / simpo / orpo / kto, and
// reward_model's pairs through train/trainer_reward.cpp): the reference log-likelihoods, one step's
// gradients over pairs (rows), and evaluation over them.
//
// rl: kto lays a row out as a pair: its prompt with its completion (document 0) and with another
// row's completion (document 1, io/kto.h), whose log-likelihoods give TRL's KL estimate. Training
// runs the two apart, the KL sequences without gradient as TRL does; the reference and evaluation
// passes (no gradient) take the pair rows whole.
//
// The reference (none for simpo and orpo) is what TRL runs, frozen, beside the policy: a full
// run's second copy of the starting model; a LoRA run's model with its fresh adapters off, the
// base alone (equal to the starting model unless init_lora_weights: false drew B), as Axolotl
// hands TRL a LoRA config; with an adapter loaded from lora_model_dir, the starting model, as TRL
// copies a PeftModel's pretrained adapter into its frozen "ref" adapter (DPO after SFT: the SFT
// model is the reference). Here each pair's two log-likelihoods under it are computed once, before
// the first step, and kept (in every checkpoint too), as TRL's precompute_ref_log_probs: the same
// numbers without a second model in memory or a second forward per step.
#include <fmt/core.h>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "train/trainer_impl.h"

namespace llm {
namespace {

// Each counted position's sequence in its batch: row b holds one pair, its chosen response
// sequence 2b (the row's document 0), its rejected one 2b + 1; and each sequence's target count.
// With split_zero (rpo_alpha), chosen targets of token id 0 count in sequence 2B + b instead:
// TRL's NLL term leaves them out (its cross_entropy's ignore_index=0), its DPO term does not.
// With chosen_prompts (orpo), the chosen prompt's tokens become targets too, in sequence 2B + b:
// ORPO's NLL is over the whole chosen sequence, its odds ratio over the response.
struct PairSequences {
  Tensor sequences;             // i32 (B*S), in host memory
  Tensor targets;               // i32 (B*S), in host memory: the batch's, with chosen_prompts more
  std::vector<int64_t> tokens;  // (2B), or (3B) with split_zero or chosen_prompts
};

PairSequences pair_sequences(const Batch& b, bool split_zero, bool chosen_prompts) {
  const int64_t B = b.inputs.size(0), S = b.inputs.size(1);
  const std::vector<int32_t> docs = b.doc_ids.to(Device::cpu()).to_ints();
  std::vector<int32_t> targets = b.targets.to(Device::cpu()).to_ints();
  std::vector<bool> prompt_target(targets.size(), false);
  if (chosen_prompts) {  // each position of document 0 predicts the next one of it
    const std::vector<int32_t> inputs = b.inputs.to(Device::cpu()).to_ints();
    for (int64_t i = 0; i < B * S; i++)
      if (docs[i] == 0 && targets[i] == kIgnoreIndex && (i + 1) % S != 0 && docs[i + 1] == 0)
        targets[i] = inputs[i + 1], prompt_target[i] = true;
  }
  std::vector<int32_t> sequences(static_cast<size_t>(B * S), 0);
  PairSequences out{Tensor(), Tensor(), std::vector<int64_t>(static_cast<size_t>((split_zero || chosen_prompts ? 3 : 2) * B), 0)};
  for (int64_t i = 0; i < B * S; i++) {
    if (targets[i] == kIgnoreIndex) continue;
    int32_t s = static_cast<int32_t>(2 * (i / S) + docs[i]);  // a target lies in document 0 or 1
    if (split_zero && docs[i] == 0 && targets[i] == 0) s = static_cast<int32_t>(2 * B + i / S);
    if (prompt_target[i]) s = static_cast<int32_t>(2 * B + i / S);
    sequences[i] = s;
    out.tokens[s]++;
  }
  out.sequences = Tensor::from_ints(sequences, {B * S});
  out.targets = Tensor::from_ints(targets, {B * S});
  return out;
}

// Each row's example `k` of a pair batch (KTO: 0 its training sequence, 1 its KL sequence), one
// example a row, unpadded beyond the longest.
Batch sequences_batch(const ExampleSet& data, const Batch& b, size_t k, const RowLayout& pair_layout) {
  std::vector<Row> rows;
  for (const Row& row : b.rows) rows.push_back({row.at(k)});
  std::vector<int64_t> which(rows.size());
  for (size_t r = 0; r < rows.size(); r++) which[r] = static_cast<int64_t>(r);
  const RowLayout layout{pair_layout.sequence_len / 2, false, false, pair_layout.pad};
  return make_batch(data, rows, which.data(), static_cast<int64_t>(rows.size()), layout);
}

// Each counted position's row: the sequence ids of a batch of one example a row.
Tensor row_sequences(const Batch& b) {
  const int64_t S = b.inputs.size(1);
  const std::vector<int32_t> targets = b.targets.to(Device::cpu()).to_ints();
  std::vector<int32_t> sequences(targets.size(), 0);
  for (size_t i = 0; i < targets.size(); i++)
    if (targets[i] != kIgnoreIndex) sequences[i] = static_cast<int32_t>(static_cast<int64_t>(i) / S);
  return Tensor::from_ints(sequences, {static_cast<int64_t>(sequences.size())});
}

// Each slot's count of targets: sequences and targets (B*S) in host memory.
std::vector<int64_t> slot_tokens(const Tensor& sequences, const Tensor& targets, int64_t slots) {
  const std::vector<int32_t> ids = sequences.to_ints(), t = targets.to_ints();
  std::vector<int64_t> out(static_cast<size_t>(slots), 0);
  for (size_t i = 0; i < t.size(); i++)
    if (t[i] != kIgnoreIndex) out.at(static_cast<size_t>(ids[i]))++;
  return out;
}

}  // namespace

Tensor Trainer::Impl::pair_logps(const Batch& b, const Tensor& sequences, int64_t slots, const Tensor& targets_host,
                                 std::vector<float>* aligned, SlotTokenStats* stats, bool adapters_off) {
  ForwardOptions opt = options_for(b);
  opt.no_dropout = true;  // TRL's disable_dropout
  opt.adapters_off = adapters_off;
  opt.targets_host = targets_host;
  Tensor aligned_sums, entropy, mean_logit, hits;
  SequenceRowSums sums;
  if (aligned) sums.aligned = &aligned_sums;
  if (stats) sums.entropy = &entropy, sums.mean_logit = &mean_logit;
  if (stats && !kto()) sums.argmax_hits = &hits;  // KTOTrainer logs no token accuracy
  Tensor logps = model->sequence_logps(b.inputs.to(device), targets_host.to(device), b.positions.to(device), sequences,
                                       slots, opt, sums);
  if (aligned) *aligned = aligned_sums.to_floats();
  if (stats)
    *stats = {entropy.to_floats(), mean_logit.to_floats(), hits.defined() ? hits.to_floats() : std::vector<float>{},
              slot_tokens(sequences, targets_host.to(Device::cpu()), slots)};
  return logps;
}

void Trainer::Impl::add_token_ratios(const std::vector<TokenSums>& rounds, PreferenceMetrics& m) {
  constexpr int kFields = TokenSums::kFields;
  int64_t count = static_cast<int64_t>(rounds.size());
  comm.allreduce_max(&count, 1);
  std::vector<double> sums(static_cast<size_t>(count * kFields), 0.0);
  for (size_t i = 0; i < rounds.size(); i++) rounds[i].to_array(sums.data() + i * kFields);
  comm.allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
  for (int64_t i = 0; i < count; i++) m.add_token_ratios(TokenSums::from_array(sums.data() + i * kFields), preference_log());
}

void Trainer::Impl::compute_reference_logps() {
  NoGradGuard no_grad;
  const bool fresh_adapters = config.lora_model_dir.empty();  // else the loaded adapters are the reference's too
  std::vector<Row> rows = data.train_rows;
  rows.insert(rows.end(), data.val_rows.begin(), data.val_rows.end());
  const int64_t batch = config.micro_batch_size, world = comm.world_size();
  const int64_t batches = (static_cast<int64_t>(rows.size()) + batch - 1) / batch;
  std::vector<int64_t> order(rows.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = static_cast<int64_t>(i);
  // Round i: rank r computes global batch i * world + r. Every rank runs as many rounds (ZeRO-3
  // gathers weights with all of them in each forward); one past the end recomputes batch 0 for
  // nothing.
  std::vector<double> sums(static_cast<size_t>(data.examples->size()), 0.0);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t round = 0; round * world < batches; round++) {
    const int64_t g = round * world + comm.rank();
    const bool real = g < batches;
    const int64_t first = real ? g * batch : 0;
    const int64_t count = std::min<int64_t>(batch, static_cast<int64_t>(rows.size()) - first);
    const Batch b = make_batch(*data.examples, rows, order.data() + first, count, data.val_layout);
    const PairSequences s = pair_sequences(b, false, false);
    const std::vector<float> logps =
        pair_logps(b, s.sequences, 2 * count, s.targets, nullptr, nullptr, fresh_adapters).to_floats();
    if (!real) continue;
    for (size_t r = 0; r < b.rows.size(); r++)
      for (size_t k = 0; k < 2; k++) sums[static_cast<size_t>(b.rows[r][k])] = logps[2 * r + k];
  }
  comm.allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
  reference_logps.assign(sums.begin(), sums.end());  // kept as f32: a resume reads the same values
  say("{}: reference log-likelihoods of {} {} from {} ({:.1f} s)\n", config.rl, rows.size(), kto() ? "rows" : "pairs",
      config.adapter.empty() || !fresh_adapters ? "the starting model" : "the base, its new adapters off",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

PreferenceMetrics Trainer::Impl::pair_metrics(const Batch& b, const std::vector<float>& logps,
                                              const std::vector<float>& aligned, const std::vector<int64_t>& tokens,
                                              std::vector<float>* grads, double weight) const {
  const PreferenceLossConfig losses = loss_config();
  const size_t B = b.rows.size();
  const bool split = split_zero_targets();  // chosen targets of id 0 apart (rpo_alpha)
  const auto reference = [&](size_t r, int k) {  // simpo and orpo have none
    return has_reference() ? reference_logps.at(static_cast<size_t>(b.rows[r][k])) : 0.0f;
  };
  PreferenceMetrics m;
  if (grads) grads->assign(logps.size(), 0.0f);
  for (size_t r = 0; r < B; r++) {
    // WPO's weight: no split then (the config refuses rpo_alpha with it).
    const double wpo = aligned.empty() ? 1.0 : wpo_weight(aligned[2 * r], tokens[2 * r], aligned[2 * r + 1], tokens[2 * r + 1]);
    const PairLogps pair{logps[2 * r] + (split ? logps[2 * B + r] : 0.0f), logps[2 * r + 1], reference(r, 0),
                         reference(r, 1), tokens[2 * r] + (split ? tokens[2 * B + r] : 0), tokens[2 * r + 1], wpo};
    const PairLoss result = pair_loss(losses, pair);
    m.add(result);
    if (!grads) continue;
    (*grads)[2 * r] = static_cast<float>(result.d_chosen * weight);
    (*grads)[2 * r + 1] = static_cast<float>(result.d_rejected * weight);
    if (split) (*grads)[2 * B + r] = static_cast<float>(result.d_chosen * weight);
  }
  // DPO's (rpo_alpha and sft terms), CPO's (cpo_alpha, simpo) or ORPO's (1) alpha x the chosen
  // responses' mean NLL (ORPO's: of the whole chosen sequences, their prompts in slots 2B + r), on
  // each pair's loss; logged as nll_loss (CPO logs 0 when its alpha is 0).
  const bool simpo = config.rl == "simpo";
  const double alpha = orpo() ? 1.0 : simpo ? config.cpo_alpha : dpo_nll_weight(losses, config.rpo_alpha);
  if (alpha >= 0) {
    double sum = 0;
    int64_t count = 0;
    for (size_t r = 0; r < B; r++) {
      sum += logps[2 * r], count += tokens[2 * r];
      if (orpo()) sum += logps[2 * B + r], count += tokens[2 * B + r];
    }
    const RpoTerm nll = rpo_term(alpha, sum, count, static_cast<int64_t>(B));
    m.loss += nll.loss;
    m.nll += count > 0 && !(simpo && alpha == 0) ? -sum / static_cast<double>(count) : 0.0;
    m.nll_terms += 1;
    if (grads)
      for (size_t r = 0; r < B; r++) {
        (*grads)[2 * r] += static_cast<float>(nll.d_chosen * weight);
        if (orpo()) (*grads)[2 * B + r] = static_cast<float>(nll.d_chosen * weight);
      }
  }
  return m;
}

PreferenceMetrics Trainer::Impl::kto_metrics(const Batch& b, const std::vector<float>& logps, bool real,
                                             std::vector<float>* grads, double weight) {
  const size_t B = b.rows.size();
  const auto reference = [&](size_t r, int k) { return reference_logps.at(static_cast<size_t>(b.rows[r][k])); };
  // TRL's KL estimate: each rank's mean of policy - reference over its mismatched sequences,
  // averaged over the ranks (every rank takes part, with or without a batch of its own).
  double kl_parts[2] = {0, 0};
  if (real && B > 0) {
    for (size_t r = 0; r < B; r++) kl_parts[0] += logps[2 * r + 1] - reference(r, 1);
    kl_parts[0] /= static_cast<double>(B);
    kl_parts[1] = 1;
  }
  comm.allreduce_sum(kl_parts, 2);
  const double kl = kto_kl(kl_parts[0], static_cast<int64_t>(kl_parts[1]));
  if (grads) grads->assign(logps.size(), 0.0f);
  PreferenceMetrics m;
  if (!real) return m;
  m.kl = kl, m.kl_terms = 1;
  const KtoLossConfig loss_config{config.rl_beta, config.kto_desirable_weight, config.kto_undesirable_weight};
  const std::vector<bool> desirable_row = desirable_rows(b);
  for (size_t r = 0; r < B; r++) {
    const bool desirable = desirable_row[r];
    const RowLoss result = kto_row_loss(loss_config, logps[2 * r] - reference(r, 0), kl, desirable);
    m.add_kto_row(desirable, logps[2 * r], result);
    if (grads) (*grads)[2 * r] = static_cast<float>(result.d_policy * weight);
  }
  return m;
}

std::vector<bool> Trainer::Impl::desirable_rows(const Batch& b) const {
  std::vector<bool> out;
  for (const Row& row : b.rows) out.push_back(data.examples->desirable.at(static_cast<size_t>(row[0])) != 0);
  return out;
}

Tensor Trainer::Impl::kto_logps(const Batch& b, double weight, PreferenceMetrics& step, TokenSums& tokens,
                                std::vector<float>& grads) {
  // The KL sequences under no gradient, as TRL's torch.no_grad forward: the backward then holds
  // only the training sequences' activations. Each batch takes one sequence a row.
  const Batch mismatched = sequences_batch(*data.examples, b, 1, data.train_layout);
  const Batch matched = sequences_batch(*data.examples, b, 0, data.train_layout);
  const int64_t B = static_cast<int64_t>(b.rows.size());
  std::vector<float> kl;
  {
    NoGradGuard no_grad;
    kl = pair_logps(mismatched, row_sequences(mismatched), B, mismatched.targets).to_floats();
  }
  SlotTokenStats stats;  // TRL's entropy and logits/* are of the training sequences
  Tensor logps = pair_logps(matched, row_sequences(matched), B, matched.targets, nullptr, &stats);
  tokens = kto_token_sums(stats, desirable_rows(b), 1);
  const std::vector<float> own = logps.to_floats();
  std::vector<float> both(static_cast<size_t>(2 * B)), pair_grads;
  for (int64_t r = 0; r < B; r++) both[2 * r] = own[r], both[2 * r + 1] = kl[r];
  step.add(kto_metrics(b, both, true, &pair_grads, weight));
  grads.resize(static_cast<size_t>(B));
  for (int64_t r = 0; r < B; r++) grads[r] = pair_grads[2 * r];
  return logps;
}

double Trainer::Impl::accumulate_preference_gradients() {
  const TrainConfig& c = config;
  for (Tensor* p : param_tensors) p->zero_grad();
  const int64_t count = std::min(c.gradient_accumulation_steps, loader->num_batches_per_epoch() - loader->cursor().batch);
  std::vector<Batch> micro_batches;
  std::vector<PairSequences> sequences;
  // The tokens that are not padding, and of them those TRL counts: a KTO row's KL sequence is
  // forwarded outside TRL's batch attention mask.
  double tokens[2] = {0, 0};
  for (int64_t micro = 0; micro < count; micro++) {
    Batch& b = micro_batches.emplace_back(loader->next());
    if (!kto() && !reward()) sequences.push_back(pair_sequences(b, split_zero_targets(), orpo()));
    tokens[0] += static_cast<double>(b.num_tokens);
    if (!kto()) tokens[1] += static_cast<double>(b.num_tokens);
    else
      for (const Row& row : b.rows) tokens[1] += static_cast<double>(data.examples->length(row[0]));
  }
  comm.allreduce_sum(tokens, 2);
  tokens_since_log += tokens[0];
  state.input_tokens += static_cast<int64_t>(tokens[1]);
  // TRL's loss is the mean over a micro-batch's pairs, and the Trainer averages the step's
  // micro-batches (an epoch's last one may hold fewer pairs, torch's smaller last batch); the
  // gradient reduction averages over ranks, whose micro-batches accelerate keeps as many and as full.
  const double micro_share = 1.0 / static_cast<double>(micro_batches.size());
  const bool every = buckets && buckets->reduces_every_pass();
  PreferenceMetrics step;
  std::vector<double> extremes;  // reward_model's
  std::vector<TokenSums> token_rounds;  // token_metrics()'s, a micro-batch each
  for (size_t micro = 0; micro < micro_batches.size(); micro++) {
    const Batch& b = micro_batches[micro];
    const double weight = micro_share / static_cast<double>(b.rows.size());
    std::vector<float> grads;
    Tensor logps;
    if (kto()) {
      logps = kto_logps(b, weight, step, token_rounds.emplace_back(), grads);
    } else if (reward()) {  // scores, in the place of log-likelihoods
      logps = reward_scores(b);
      const std::vector<float> scores = logps.to_floats();
      step.add(reward_metrics(scores, &grads, weight).as_one_micro_batch());
      push_reward_extremes(scores, extremes);
    } else {
      const PairSequences& s = sequences[micro];
      std::vector<float> aligned;
      SlotTokenStats stats;
      logps = pair_logps(b, s.sequences, static_cast<int64_t>(s.tokens.size()), s.targets,
                         c.dpo_use_weighting ? &aligned : nullptr, token_metrics() ? &stats : nullptr);
      if (token_metrics()) token_rounds.push_back(pair_token_sums(stats, b.rows.size(), split_zero_targets()));
      // The pairs' losses need the log-likelihoods on the host: one read per micro-batch.
      step.add(pair_metrics(b, logps.to_floats(), aligned, s.tokens, &grads, weight).as_one_micro_batch());
    }
    const bool last = micro + 1 == micro_batches.size();
    LeafReadyHookScope hook(backward_hook(last, every));
    backward(logps, Tensor::from_floats(grads, logps.shape()).to(device));
    if (every) buckets->end_pass();
  }
  if (buckets) buckets->finish();
  double sums[PreferenceMetrics::kFields];
  step.to_array(sums);
  comm.allreduce_sum(sums, PreferenceMetrics::kFields);
  step = PreferenceMetrics::from_array(sums);
  if (reward()) add_reward_extremes(std::move(extremes), step);
  if (token_metrics()) add_token_ratios(token_rounds, step);
  preference_since_log.add(step);
  return step.pairs > 0 ? step.loss / step.pairs : 0.0;
}

PreferenceMetrics Trainer::Impl::evaluate_preference() {
  NoGradGuard no_grad;
  // TRL logs the mean of the eval batches' means; the Trainer's eval_loss weighs each batch by its
  // pairs (the last batch may hold fewer).
  PreferenceMetrics batches, pairs;
  std::vector<double> extremes;         // reward_model's
  std::vector<TokenSums> token_rounds;  // token_metrics()'s, a batch each
  for_each_eval_batch([&](const Batch& b, bool real) {
    if (reward()) {
      const std::vector<float> scores = reward_scores(b).to_floats();
      const PreferenceMetrics m = reward_metrics(scores, nullptr, 0.0);
      if (real) pairs.add(m), batches.add(m.as_one_micro_batch());
      push_reward_extremes(real ? scores : std::vector<float>{}, extremes);
      return;
    }
    const PairSequences s = pair_sequences(b, split_zero_targets(), orpo());
    std::vector<float> aligned;  // TRL weighs the evaluation's pairs too
    SlotTokenStats stats;
    const std::vector<float> logps = pair_logps(b, s.sequences, static_cast<int64_t>(s.tokens.size()), s.targets,
                                                config.dpo_use_weighting ? &aligned : nullptr,
                                                token_metrics() ? &stats : nullptr)
                                         .to_floats();
    if (token_metrics())  // a KTO pair row's own completion in slot 2r, its KL one in 2r + 1
      token_rounds.push_back(!real  ? TokenSums{}
                             : kto() ? kto_token_sums(stats, desirable_rows(b), 2)
                                     : pair_token_sums(stats, b.rows.size(), split_zero_targets()));
    if (kto()) {
      batches.add(kto_metrics(b, logps, real, nullptr, 0.0));
    } else if (real) {
      const PreferenceMetrics m = pair_metrics(b, logps, aligned, s.tokens, nullptr, 0.0);
      pairs.add(m);
      batches.add(m.as_one_micro_batch());
    }
  });
  constexpr int kFields = PreferenceMetrics::kFields;
  double sums[2 * kFields];
  batches.to_array(sums);
  pairs.to_array(sums + kFields);
  comm.allreduce_sum(sums, 2 * kFields);
  PreferenceMetrics per_batch = PreferenceMetrics::from_array(sums);
  if (reward()) add_reward_extremes(std::move(extremes), per_batch);
  if (token_metrics()) add_token_ratios(token_rounds, per_batch);
  PreferenceMetrics out = per_batch.means();
  if (!kto()) out.loss = PreferenceMetrics::from_array(sums + kFields).means().loss;
  return out;
}

}  // namespace llm
