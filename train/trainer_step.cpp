// defines: the forward and backward of one optimizer step of Trainer::Impl: each batch's forward
// options, the micro-batches with their share of the step's loss, and the hook that reduces (or
// applies) gradients while the last backward runs; and supervised fine-tuning's log record fields.
#include <algorithm>

#include <fmt/core.h>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "train/metrics.h"
#include "train/trainer_impl.h"

namespace llm {

ForwardOptions Trainer::Impl::options_for(const Batch& batch) const {
  ForwardOptions opt = forward;
  // Packed rows: each example attends within itself, unless no attention key asked for that.
  // Diffusion's bidirectional rows always: their padding is a document of its own.
  if (batch.doc_ids.defined() && (config.diffusion.on || !config.packing_attends_across_documents()))
    opt.doc_ids = batch.doc_ids.to(device);
  opt.bidirectional = config.diffusion.on;
  // S2's groups are a share of the row, as Axolotl's patch takes them of each batch's length: of
  // sequence_len in training, of an eval row (eval_sequence_len may be longer) in evaluation.
  if (opt.attention == AttentionKind::s2)
    opt.s2_group_size = static_cast<int64_t>(static_cast<double>(batch.inputs.size(1)) * config.s2_group_size_ratio);
  // QAT fake-quantises from step fake_quant_after_n_steps + 1 on, as Axolotl's callback switches
  // it before that step; an evaluation computes as the step before it did.
  const int64_t steps_done = grad_enabled() ? state.step : std::max<int64_t>(state.step - 1, 0);
  if (config.qat_active(steps_done)) opt.qat = config.qat;
  return opt;
}

double Trainer::Impl::accumulate_gradients() {
  const TrainConfig& c = config;
  for (Tensor* p : param_tensors) p->zero_grad();
  // As transformers' Trainer (num_items_in_batch): the step's loss is the sum of every token loss
  // of its micro-batches, divided by this rank's count of targets and averaged over the ranks (as
  // Axolotl sets it up), or with average_tokens_across_devices divided by every rank's count. So
  // the micro-batches are drawn first, to count; then each one's mean loss is weighted by its count.
  // They go to the device together, now: a copy from pageable host memory may wait for the
  // device's queue, which is short here (the last step's norm was read) and long mid-step.
  std::vector<Batch> micro_batches;
  std::vector<Tensor> targets_host, inputs_host;  // the loss counts targets here; diffusion draws its masks here
  double counts[3] = {0, 0, 0};  // targets, tokens, labels: exact in a double up to 2^53
  // An epoch's last step may take fewer (StepPlan::updates_per_epoch).
  const int64_t count = std::min(c.gradient_accumulation_steps,
                                 loader->num_batches_per_epoch() - loader->cursor().batch);
  for (int64_t micro = 0; micro < count; micro++) {
    Batch& b = micro_batches.emplace_back(loader->next());
    counts[0] += static_cast<double>(b.num_targets);
    counts[1] += static_cast<double>(b.num_tokens);
    counts[2] += static_cast<double>(b.num_labels);
    targets_host.push_back(b.targets);
    inputs_host.push_back(b.inputs);
    for (Tensor* t : {&b.inputs, &b.targets, &b.positions, &b.doc_ids})
      if (t->defined()) *t = t->to(device);
  }
  const double local_targets = counts[0];
  comm.allreduce_sum(counts, 3);
  const bool global = c.average_tokens_across_devices;
  // The divisor of this rank's token losses; the gradient reduction then averages over the ranks.
  const double divisor = global ? counts[0] / comm.world_size() : local_targets;
  tokens_since_log += counts[1];
  state.trainable_tokens += static_cast<int64_t>(counts[2]);
  state.input_tokens += static_cast<int64_t>(counts[1]);
  // Each micro-batch's mean loss stays on the device until every backward is queued: reading
  // one per micro-batch would make the host wait for the GPU before queueing the next.
  std::vector<Tensor> losses;
  std::vector<double> shares;  // each micro-batch's weight in the step's loss
  std::vector<DiffusionPass> diffusion;
  // Only the last micro-batch's backward completes the gradients: reduce while it runs. ZeRO-3
  // reduces every micro-batch's, as no rank keeps whole gradients (nor weights) in between.
  const bool every = buckets && buckets->reduces_every_pass();
  for (size_t micro = 0; micro < micro_batches.size(); micro++) {
    const Batch& b = micro_batches[micro];
    ForwardOptions opt = options_for(b);
    // LoRA dropout's masks and NEFTune's noise: a function of the seed, the step and the
    // micro-batch (and, inside, layer and module), so a resumed run draws what the uninterrupted
    // one drew.
    opt.dropout_seed = mix_seed(mix_seed(c.seed, static_cast<uint64_t>(state.step)), micro);
    opt.no_dropout = c.process_reward_model;  // PRMConfig's disable_dropout (LoRA's too)
    opt.neftune_noise_alpha = static_cast<float>(c.neftune_noise_alpha);
    opt.targets_host = targets_host[micro];
    // Diffusion: each micro-batch's loss is a mean over its rows already (train/diffusion.h); the
    // step logs the mean over its micro-batches (Axolotl logs its stored losses' mean), but their
    // gradients add up: the Trainer divides by the accumulation steps only when the model takes
    // no loss kwargs, and Llama's forward does, while the plugin's loss ignores num_items_in_batch.
    shares.push_back(c.diffusion.on ? 1.0 / static_cast<double>(micro_batches.size())
                     : divisor > 0  ? static_cast<double>(b.num_targets) / divisor
                                    : 0.0);
    const float weight = c.diffusion.on ? 1.0f : static_cast<float>(shares.back());
    opt.loss_grad_seed = weight;
    if (c.diffusion.on) diffusion.push_back(diffusion_pass(b, inputs_host[micro], mix_seed(opt.dropout_seed, comm.rank()), opt));
    Tensor loss = c.diffusion.on ? diffusion.back().loss : model->loss(b.inputs, b.targets, b.positions, opt);
    const bool last = micro + 1 == micro_batches.size();
    LeafReadyHookScope hook(backward_hook(last, every));
    backward(loss, Tensor::full({}, weight, DType::f32, device));
    if (every) buckets->end_pass();
    losses.push_back(loss.detach());
  }
  if (buckets) buckets->finish();
  // The step's only reads besides the gradient norm's: the non-finite check needs the loss on
  // the host before the update, and every backward is queued by now.
  for (const DiffusionPass& pass : diffusion) pass.add_to(diffusion_since_log, c.diffusion.importance_weighting);
  double loss = 0.0;  // this rank's share of the mean
  for (size_t micro = 0; micro < micro_batches.size(); micro++)
    loss += static_cast<double>(losses[micro].item()) * shares[micro] / comm.world_size();
  comm.allreduce_sum(&loss, 1);
  return loss;
}

Trainer::Impl::DiffusionPass Trainer::Impl::diffusion_pass(const Batch& b, const Tensor& inputs_host, uint64_t seed,
                                                           ForwardOptions opt) {
  const int64_t B = b.inputs.size(0), S = b.inputs.size(1);
  DiffusionDraw draw = draw_diffusion_masks(inputs_host.to_ints(), b.labels.to_ints(), B, S, config.diffusion,
                                                  diffusion_mask_id, {tokenizer->bos(), tokenizer->eos(), tokenizer->pad()},
                                                  seed);
  const int64_t K = static_cast<int64_t>(draw.targets.size());
  opt.targets_host = Tensor::from_ints(draw.targets, {K});
  Tensor hits;
  const Tensor logps = model->row_logps(Tensor::from_ints(draw.noisy, {B, S}).to(device), b.positions.to(device),
                                        Tensor::from_ints(draw.rows, {K}).to(device), opt.targets_host.to(device),
                                        Tensor::from_ints(draw.sequences, {K}).to(device), B, opt, &hits);
  Tensor loss = sum(mul(logps, Tensor::from_floats(draw.coefficients, {B}).to(device)));
  return {std::move(loss), logps.detach(), std::move(hits), std::move(draw)};
}

void Trainer::Impl::DiffusionPass::add_to(DiffusionMetrics& m, bool importance_weighting) const {
  double ce_sum = 0, hit_count = 0;  // the masked tokens' cross-entropies (minus their log-likelihoods), argmax hits
  for (const float row : logps.to_floats()) ce_sum -= row;
  for (const float row : hits.to_floats()) hit_count += row;
  m.add(draw, logps.numel(), ce_sum, hit_count, importance_weighting);
}

LeafReadyHook Trainer::Impl::backward_hook(bool last, bool every) {
  if (buckets) return last || every ? buckets->start_pass() : LeafReadyHook();
  LeafReadyHook update = optimizer->pass_updates(static_cast<float>(step_lr));
  if (!update || frozen_rows.empty()) return update;
  return [this, update](AutogradMeta& leaf) {
    for (const FrozenRows& f : frozen_rows)
      if (f.param->autograd_meta().get() == &leaf) zero_frozen_rows({f});
    update(leaf);
  };
}

std::string Trainer::Impl::supervised_log_json(double loss, double seconds) {
  std::string out = perplexity_json("ppl", loss);
  if (!config.include_tkps) return out;
  // As AxolotlTrainer.log: the window's trainable tokens over its wall time, per rank.
  const double rate = seconds > 0 ? static_cast<double>(state.trainable_tokens - trainable_at_last_log) /
                                        static_cast<double>(comm.world_size()) / seconds
                                  : 0.0;
  trainable_at_last_log = state.trainable_tokens;
  return out + fmt::format(", \"tokens/train_per_sec_per_gpu\": {:.2f}, \"tokens/trainable\": {}", rate,
                           state.trainable_tokens);
}

}  // namespace llm
