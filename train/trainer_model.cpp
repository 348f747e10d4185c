// defines: Trainer::Impl::build_model and sharded_start (the model, its adapters, its ZeRO
// sharding and its optimizer, as start-up makes them), fit_micro_batch (auto_find_batch_size), apply_lisa and drop_waiting_gradients
// (which of its layers train, step by step), grow_vocabulary (its size for added tokens)
#include <algorithm>
#include <cstring>
#include <optional>

#include "engine/adafactor.h"
#include "engine/came.h"
#include "engine/ademamix.h"
#include "engine/adopt.h"
#include "engine/torchao_adamw.h"
#include "engine/grokadamw.h"
#include "engine/lion.h"
#include "engine/lomo.h"
#include "engine/stable_adamw.h"
#include "engine/backend.h"
#include "engine/user_error.h"
#include "model/hf_checkpoint.h"
#include "model/peft_adapter.h"
#include "train/lisa.h"
#include "train/memory_plan.h"
#include "train/optimizer_groups.h"
#include "train/relora.h"
#include "train/trainer_impl.h"
#include "train/unfrozen_parameters.h"
#include "train/untrained_tokens.h"

namespace llm {

void Trainer::Impl::build_model() {
  const TrainConfig& c = config;
  const bool adapter = !c.adapter.empty();
  // ZeRO-3 with an adapter: the frozen base is sharded per unit (FrozenShards); what trains is
  // small and goes through ShardedAdamW as under ZeRO-2 (gradients reduce-scattered into slices,
  // AdamW state sharded, the updated adapters all-gathered whole after each step).
  const bool shard_frozen = adapter && c.zero_stage == 3 && comm.distributed();
  // ZeRO-3 of trained weights: each rank keeps only its slices of each weight as it is drawn or
  // read, one weight at a time (below, once the optimizer that holds the slices exists).
  const bool shard_trained = !adapter && c.zero_stage == 3 && comm.distributed();
  // A resume brings its own weights, except frozen ones (an adapter run's base, the weights
  // unfrozen_parameters leaves out), which are base_model's; sparse fine-tuning's masks are made
  // from base_model's weights too.
  const bool partly_frozen = !c.unfrozen_parameters.empty();
  const bool load_base = (resumed_from.empty() || adapter || partly_frozen || !c.pruning_targets.empty()) &&
                         !c.base_model_is_preset() && !c.reinit_weights;
  base_loaded = load_base;
  std::optional<SafetensorsDir> base;  // its headers, read once
  if (load_base) base.emplace(c.base_model), base_checksum = base->sampled_checksum();
  // Under ZeRO-3 the model starts without bytes (sharded_start fills it one weight at a time), so
  // no rank ever holds the whole model. A quantised or sharded base is built on the host: only
  // NF4 or int8 codes, or this rank's slices, go to a GPU.
  const Device build = shard_trained ? device : c.quantized_base() || shard_frozen ? Device::cpu() : device;
  if (shard_trained || shard_frozen) {
    model = std::make_unique<LlamaModel>(c.model, build);
  } else {
    model = std::make_unique<LlamaModel>(c.model, build, c.seed);
    if (load_base) {
      const int64_t loaded = load_hf_weights(*model, c.base_model, vocabulary_growth(), c.seed);
      say("base_model: loaded {} tensors from {}\n", loaded, c.base_model);
      if (c.model.num_labels > 0 && !base->find(LlamaModel::kScoreHeadName))
        say("{}: {} has no score.weight (a causal LM's lm_head is not read): the score head is drawn "
            "normal(0, {}) from seed {}\n", c.reward_model ? "reward_model" : "process_reward_model", c.base_model,
            c.model.initializer_range, c.seed);
    } else if (c.reinit_weights && !c.base_model_is_preset()) {
      say("reinit_weights: {}'s architecture with fresh weights drawn from seed {}\n", c.base_model, c.seed);
    }
  }
  if (partly_frozen) {
    const int64_t training = freeze_all_but(*model, c.unfrozen_parameters, frozen_rows);
    say("unfrozen_parameters: {} of {} weight tensors train; the rest stay as base_model has them\n", training,
        model->parameters().size());
  }
  if (adapter) {
    if (c.unties_embeddings()) model->untie_embeddings();
    // Token ids within the vocabulary as loaded (added tokens included: the rows they train).
    for (const std::vector<int64_t>* rows : {&c.lora.embed_token_rows, &c.lora.head_token_rows})
      for (int64_t id : *rows)
        if (id >= model->config().vocab_size)
          throw UserError(fmt::format("{}: peft_trainable_token_indices: expected token ids below the vocabulary's {}, "
                                      "got {}", c.source, model->config().vocab_size, id));
    if (!c.lora.layer_replication.empty()) {
      model->replicate_layers(c.lora.layer_replication);
      say("peft_layer_replication: {} blocks from the base's {}, copies sharing their frozen weights\n",
          model->config().num_hidden_layers, c.model.num_hidden_layers);
    }
    model->add_lora(c.lora, c.seed, forward.compute_dtype);
    const bool adapter_loaded = resumed_from.empty() && !c.lora_model_dir.empty();
    if (adapter_loaded) {
      load_peft_adapter(*model, c.lora_model_dir);
      say("lora_model_dir: loaded the adapters of {}\n", c.lora_model_dir);
    }
    // From the loaded (or seeded) base, so a resume quantises the same weights to the same codes;
    // under ZeRO-3 the codes' layout now, their values weight by weight (sharded_start).
    if (c.quantized_base()) {
      if (c.relora) model->keep_full_linears();
      quant_bytes = model->quantize_frozen_linears(c.base_format(), c.bnb_4bit_use_double_quant);
    }
    model->store_frozen_as(forward.compute_dtype);
    if (!adapter_loaded) model->start_token_rows();
    // From the weights the forward will use (an NF4 base's dequantised codes), as PEFT does; a
    // loaded adapter or a resume brings its own.
    const bool init_dora = c.lora.use_dora && !adapter_loaded;
    if (init_dora && !shard_frozen) model->init_dora_magnitudes();
    if (shard_frozen) {
      // offload_params: the slices stay in host memory (on a CPU run that is the device anyway).
      frozen_shards = std::make_unique<FrozenShards>(comm, model->frozen_units(), device,
                                                     c.offload_params ? Device::cpu() : device);
      frozen_shards->set_prefetch(c.forward_prefetch, c.backward_prefetch);
      model->set_weight_units(frozen_shards.get());
      // Each frozen weight's slices (quantised, or cast, first); what trains whole
      // (modules_to_save) is kept whole, as under ZeRO-2.
      sharded_start(load_base, [this, init_dora](const ParamRef& p, const Tensor& value) {
        if (p.tensor->requires_grad()) {
          *p.tensor = value.to(model->device());
          p.tensor->set_requires_grad(true);
          return;
        }
        // DoRA's magnitudes start from each weight while it is whole.
        model->frozen_values(p, value, [this](const Tensor* t, const Tensor& v) { frozen_shards->keep_slice(t, v); },
                             init_dora);
      });
    }
    model->move_to(device);  // what is not sharded: the adapters (and a quantised base's codes)
    // The f32 base built on the host is gone (quantised, cast or sharded): its cached blocks go
    // back to the system, or the host would keep holding the whole model's bytes.
    if (c.quantized_base() || shard_frozen) backend(Device::cpu()).allocator().empty_cache();
  }
  if (c.bfloat16) model->store_weights_in_bf16();  // full fine-tuning (the config refuses adapters, ZeRO)
  params = model->trainable_parameters();
  // From the starting weights, base_model's even on a resume (the checkpoint is read later).
  if (!c.pruning_targets.empty()) pruning_masks = make_pruning_masks(params, c.pruning_targets);
  std::vector<OptimParam> opt_params;
  for (const ParamRef& p : params) {
    param_tensors.push_back(p.tensor);
    const OptimizerGroup group = optimizer_group(c, p.name, static_cast<int64_t>(p.tensor->shape().size()));
    opt_params.push_back({p.name, p.tensor, group.decay, group.lr_scale, LlamaModel::is_embedding_weight(p.name)});
  }
  // AdamC's peak: each group's lr before the schedule, which max_lr (optim_args) replaces.
  const float peak_lr = c.optimizer == "adamc" ? float(c.optim_arg("max_lr", c.learning_rate)) : 0.0f;
  const AdamWConfig adamw{float(c.adam_beta1), float(c.adam_beta2), float(c.adam_epsilon), float(c.weight_decay),
                          peak_lr};
  const AdamWState adamw_state = c.optimizer_8bit() ? AdamWState::blockwise_8bit : AdamWState::f32;
  const bool sharded = c.zero_stage >= 1 && comm.distributed();
  const SliceAlignment align = sharded && c.optimizer_8bit() ? kQuantSliceAlignment : SliceAlignment{};
  if (shard_trained)
    buckets = std::make_unique<GradBuckets>(comm, model->weight_units(), align);
  else if (comm.distributed())
    buckets = std::make_unique<GradBuckets>(comm, param_tensors, c.ddp_bucket_cap_mb, sharded, c.zero_stage >= 2, align);
  if (sharded) {
    // Full fine-tuning computes with compute copies in the compute dtype (bf16 on a GPU), the f32
    // master living only in the optimizer's slices. An adapter run's trainable parameters stay f32
    // (they are small, and merge_lora merges f32 adapters).
    const DType weights = adapter ? DType::f32 : forward.compute_dtype;
    auto sharded_adamw = std::make_unique<ShardedAdamW>(comm, *buckets, opt_params, adamw, adamw_state, weights);
    sharded_optimizer = sharded_adamw.get();
    if (shard_trained) {
      sharded_weights = std::make_unique<ShardedWeights>(comm, *buckets, *sharded_adamw);
      sharded_weights->set_prefetch(c.forward_prefetch, c.backward_prefetch);
      model->set_weight_units(sharded_weights.get());
    }
    optimizer = std::move(sharded_adamw);
  } else if (c.optimizer == "adopt_adamw") {  // never sharded: the config refuses it with ZeRO
    optimizer = std::make_unique<Adopt>(opt_params, adamw);
  } else if (c.optimizer_lion()) {  // as ADOPT
    optimizer = std::make_unique<Lion>(opt_params, adamw, adamw_state);
  } else if (c.optimizer_muon()) {  // as ADOPT
    optimizer = make_muon(c, std::move(opt_params));
  } else if (c.optimizer == "stable_adamw") {  // as ADOPT
    const StableAdamWConfig stable{c.optim_args.count("decouple_lr") > 0,
                                   float(c.optim_arg("max_lr", c.learning_rate))};
    optimizer = std::make_unique<StableAdamW>(opt_params, adamw, stable);
  } else if (c.optimizer == "grokadamw") {  // as ADOPT; the class's betas and eps
    const GrokAdamWConfig grok{float(c.optim_arg("alpha_init", 0.98)), float(c.optim_arg("lamb", 2.0)),
                               float(c.optim_arg("gamma", 0.1)), float(c.optim_arg("gradient_clipping", 1.0))};
    optimizer = std::make_unique<GrokAdamW>(opt_params, AdamWConfig{0.9f, 0.999f, 1e-8f, float(c.weight_decay)}, grok);
  } else if (c.optimizer_lomo()) {  // as ADOPT
    if (comm.world_size() > 1)
      throw UserError(fmt::format("{}: optimizer: expected one process with {} (each parameter updates in backward "
                                  "before a reduction could average it), got {}", c.source, c.optimizer, comm.world_size()));
    if (c.optimizer == "lomo") optimizer = std::make_unique<Lomo>(opt_params);
    else optimizer = std::make_unique<Adafactor>(opt_params, AdamWConfig{}, /*adalomo=*/true);
  } else if (c.optimizer_low_rank()) {  // as ADOPT
    if (c.optimizer_layerwise() && comm.world_size() > 1)
      throw UserError(fmt::format("{}: optimizer: expected one process with {} (each parameter updates in backward "
                                  "before a reduction could average it; transformers refuses it under DDP too), got {}",
                                  c.source, c.optimizer, comm.world_size()));
    if (!c.optimizer_apollo()) {
      optimizer = make_galore(c, std::move(opt_params));
    } else {
      std::vector<std::string> names;
      for (const ParamRef& p : model->parameters()) names.push_back(p.name);
      optimizer = make_apollo(c, std::move(opt_params), names);
    }
  } else if (c.optimizer == "adafactor") {  // as ADOPT
    optimizer = std::make_unique<Adafactor>(opt_params, adamw);
  } else if (c.optimizer == "came_pytorch") {  // as ADOPT
    const CameConfig came{c.adam_beta1, c.adam_beta2, c.adam_beta3, c.adam_epsilon2, c.optim_arg("clip_threshold", 1.0)};
    optimizer = std::make_unique<Came>(opt_params, adamw, came);
  } else if (c.optimizer_torch_optim()) {  // as ADOPT
    optimizer = std::make_unique<TorchOptimizer>(opt_params, torch_optim_config(c));
  } else if (c.optimizer_torchao()) {  // as ADOPT
    optimizer = std::make_unique<TorchaoAdamW>(opt_params, TorchaoAdamWConfig{c.adam_beta1, c.adam_beta2, c.adam_epsilon,
                                                                              c.weight_decay, c.optimizer_torchao_codes()});
  } else if (c.optimizer_schedule_free()) {  // as ADOPT; the warmup is set with the plan
    ScheduleFreeConfig sf;
    sf.kind = c.optimizer == "schedule_free_radam" ? ScheduleFreeKind::radam
              : c.optimizer == "schedule_free_sgd" ? ScheduleFreeKind::sgd
                                                   : ScheduleFreeKind::adamw;
    if (sf.kind != ScheduleFreeKind::sgd) {
      sf.beta1 = c.adam_beta1;
      sf.beta2 = c.adam_beta2;
      sf.eps = c.adam_epsilon;
    }
    sf.weight_decay = c.weight_decay;
    sf.weight_lr_power = c.optim_arg("weight_lr_power", 2.0);
    sf.r = c.optim_arg("r", 0.0);
    auto made = std::make_unique<ScheduleFree>(opt_params, sf);
    schedule_free = made.get();
    optimizer = std::move(made);
  } else if (c.optimizer_ademamix()) {  // as ADOPT; optim_args as transformers reads them
    const AdamWConfig adam{float(c.optim_arg("beta1", c.adam_beta1)), float(c.optim_arg("beta2", c.adam_beta2)),
                           float(c.optim_arg("eps", c.adam_epsilon)), float(c.weight_decay)};
    const AdemamixConfig mix{float(c.optim_arg("beta3", 0.9999)), float(c.optim_arg("alpha", 5.0)),
                             int64_t(c.optim_arg("t_beta3", 0)), int64_t(c.optim_arg("t_alpha", 0))};
    optimizer = std::make_unique<AdEMAMix>(opt_params, adam, mix, adamw_state);
  } else {
    optimizer = std::make_unique<AdamW>(opt_params, adamw, adamw_state);
  }
  // Trained weights' slices are the master slices, which exist now (a resume's come from its
  // checkpoint in restore()).
  if (shard_trained && resumed_from.empty())
    sharded_start(load_base, [this](const ParamRef& p, const Tensor& value) {
      sharded_weights->keep_slice(p.tensor, value);
    });
}

// The whole values live in host memory, one at a time: how far it rose above the shards, on the
// rank where it rose most, is logged (print_summary).
int64_t Trainer::Impl::stream_base(bool load_base, const WeightSink& sink) {
  if (load_base) return read_hf_weights(*model, config.base_model, sink, vocabulary_growth(), config.seed);
  model->draw_weights(config.seed, sink);
  return 0;
}

void Trainer::Impl::sharded_start(bool load_base, const WeightSink& keep) {
  CachingAllocator& host = backend(Device::cpu()).allocator();
  const size_t before = host.stats().in_use_bytes;
  host.start_window();
  const int64_t loaded = stream_base(load_base, keep);
  if (load_base) say("base_model: loaded {} tensors from {}\n", loaded, config.base_model);
  sharded_start_rise = static_cast<int64_t>(host.stats().window_peak_bytes - before);
  comm.allreduce_max(&sharded_start_rise, 1);
}

void Trainer::Impl::apply_lisa() {
  const int64_t start = lisa_interval_start(state.step, config.lisa_step_interval);
  if (start == lisa_drawn_at) return;
  lisa_drawn_at = start;
  const std::vector<int64_t> active =
      lisa_layers(config.model.num_hidden_layers, config.lisa_n_layers, static_cast<uint32_t>(start));
  for (const ParamRef& p : params) {
    if (p.name.rfind("model.layers.", 0) != 0) continue;  // the embedding, final norm and lm_head train
    const int64_t layer = std::stoll(p.name.substr(std::strlen("model.layers.")));
    p.tensor->set_requires_grad(std::find(active.begin(), active.end(), layer) != active.end());
  }
  std::string names;
  for (int64_t layer : active) names += (names.empty() ? "" : ", ") + std::to_string(layer);
  say("LISA: from step {}, layers {} train (of {})\n", start + 1, names, config.model.num_hidden_layers);
}

void Trainer::Impl::restart_relora() {
  const TrainConfig& c = config;
  if (state.step == 0 || state.step % c.jagged_restart_steps != 0) return;
  const float ratio = relora_prune_ratio(c.relora_prune_method, c.relora_prune_ratio);
  const double zeroed = relora_restart(*model, *optimizer, c.relora_prune_method, ratio, c.seed, state.step);
  say("ReLoRA: restart {} before step {}: the adapters merged into the base and drawn afresh; {:.2f}% of the "
      "optimizer state zero ({} pruning at {})\n", state.step / c.jagged_restart_steps, state.step + 1, 100.0 * zeroed,
      c.relora_prune_method, ratio);
}

std::vector<ParamRef> Trainer::Impl::checkpointed_weights() const {
  std::vector<ParamRef> out = params;
  if (config.relora)  // the merged base weights, which base_model no longer gives
    for (const ParamRef& p : model->adapted_base_weights()) out.push_back(p);
  return out;
}

void Trainer::Impl::drop_waiting_gradients() {
  for (Tensor* p : param_tensors)
    if (!p->requires_grad()) p->zero_grad();
}

// Axolotl's _resize_token_embeddings: the embedding and lm_head grow to the tokenizer's size (a
// multiple of 32 with resize_token_embeddings_to_32x) whenever it is the larger, whether `tokens`,
// a new special token or the tokenizer itself made it so; base_model's rows stay, the new ones
// are drawn (model/hf_checkpoint.h). With shrink_embeddings a larger model is cut to that size.
void Trainer::Impl::grow_vocabulary() {
  int64_t size = tokenizer->vocab_size();
  if (config.resize_token_embeddings_to_32x) size = (size + 31) / 32 * 32;
  if (size < config.model.vocab_size && config.shrink_embeddings) {
    say("shrink_embeddings: the model's {} ids cut to the tokenizer's {}: embed_tokens and lm_head keep their first "
        "{} rows\n", config.model.vocab_size, size, size);
    config.model.vocab_size = size;
    // As transformers' resize drops an nn.Embedding padding_idx past the new size.
    if (config.model.pad_token_id >= size) config.model.pad_token_id = -1;
    return;
  }
  if (size <= config.model.vocab_size) return;
  say("vocabulary: the tokenizer's {} ids outgrow the model's {}: embed_tokens and lm_head get {} new rows\n",
      size, config.model.vocab_size, size - config.model.vocab_size);
  config.model.vocab_size = size;
  vocabulary_grew = true;
}

void Trainer::Impl::fix_untrained_tokens(const std::string& chat_template) {
  const int64_t vocab = config.model.vocab_size, hidden = config.model.hidden_size;
  for (int64_t id : config.fix_untrained_token_ids)
    if (id >= vocab)
      throw UserError(config.source + ": fix_untrained_tokens: expected token ids below the vocabulary's " +
                      std::to_string(vocab) + ", got " + std::to_string(id));
  Tensor *embed = nullptr, *head = nullptr;
  for (const ParamRef& p : model->parameters()) {
    if (p.name == "model.embed_tokens.weight") embed = p.tensor;
    if (p.name == "lm_head.weight") head = p.tensor;
  }
  if (!head) head = embed;  // tied
  std::vector<int64_t> template_ids;  // the template's special tokens, as Axolotl looks for them in its text
  for (int32_t id = 0; id < tokenizer->vocab_size() && !chat_template.empty(); id++)
    if (const std::optional<std::string> name = tokenizer->special_name(id); name && chat_template.find(*name) != std::string::npos)
      template_ids.push_back(id);
  std::vector<std::vector<int32_t>> examples;
  const ExampleSet& set = *data.examples;
  for (int64_t e : data.split.train) examples.emplace_back(set.tokens.begin() + set.offsets[e], set.tokens.begin() + set.offsets[e + 1]);
  const std::vector<float> embed_rows = embed->to_floats(), head_rows = head == embed ? std::vector<float>() : head->to_floats();
  const UntrainedTokens fix =
      find_untrained_tokens(embed_rows.data(), head == embed ? embed_rows.data() : head_rows.data(), vocab, hidden,
                            tokenizer->pad(), config.fix_untrained_token_ids,
                            template_ids, examples, embed->requires_grad() && head->requires_grad());
  apply_untrained_tokens(fix, *embed, *head, forward.compute_dtype);
  std::string ids;
  for (int64_t id : fix.ids) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
  say("fix_untrained_tokens: {}\n", fix.ids.empty() ? std::string("no untrained token the data or chat template uses")
                                                     : "rows " + ids + " set to the trained rows' mean x their frequency");
}

// HF's auto_find_batch_size, which Axolotl passes on: accelerate retries the step with
// micro_batch_size x 0.9 (rounded down) after each out-of-memory error, the accumulation kept.
// Here the memory plan decides at start-up, before anything is allocated: the first size of that
// sequence whose plan fits. Every rank plans the same, so they agree.
void Trainer::Impl::fit_micro_batch(bool bf16) {
  const int64_t asked = config.micro_batch_size;
  auto fits = [&] {
    const double peak = plan_memory(memory_plan_input(config, comm.world_size(), bf16, device.is_cpu())).peak_bytes;
    return memory_available == 0 || peak <= static_cast<double>(memory_available);
  };
  while (!fits() && config.micro_batch_size > 1)
    config.micro_batch_size = std::max<int64_t>(1, static_cast<int64_t>(config.micro_batch_size * 0.9));
  if (config.micro_batch_size != asked)
    say("auto_find_batch_size: micro_batch_size {} does not fit the memory plan on {}; {} does (gradient accumulation "
        "unchanged, as HF's)\n", asked, device.str(), config.micro_batch_size);
}

}  // namespace llm
