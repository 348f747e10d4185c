// defines: Trainer (set-up with its stop points; the step loop with its logging, early stopping and
// saves; a step's forward and backward is trainer_step.cpp, evaluation trainer_eval.cpp)
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/stop_signal.h"
#include "train/best_model.h"
#include "train/trainer_impl.h"
#include "engine/user_error.h"
#include "io/added_tokens.h"
#include "io/python_text.h"
#include "model/generate.h"

namespace llm {

namespace {
constexpr int64_t kMaxBadSteps = 5;  // consecutive non-finite steps before giving up

// One GPU per local rank; the CPU when none is usable (said once, by rank 0).
Device choose_device(const TrainConfig& c, const Communicator& comm) {
  const int gpus = device_count(DeviceType::cuda);
  const int local_rank = c.local_rank >= 0 ? c.local_rank : comm.local_rank();
  if (c.device == "cuda" && gpus == 0)
    throw UserError(c.source + ": device: cuda was asked for, but this build sees no usable CUDA device");
  if (c.device == "cpu" || gpus == 0) {
    if (c.device == "auto" && comm.is_main())
      fmt::print("device: no usable CUDA device (none visible, or no CUDA backend in this build): "
                 "training on the CPU\n");
    return Device::cpu();
  }
  if (local_rank >= gpus)
    throw UserError(c.source + ": local_rank " + std::to_string(local_rank) + " needs GPU " +
                    std::to_string(local_rank) + ", but only " + std::to_string(gpus) + " are visible");
  return Device::cuda(local_rank);
}

// Test hook: LLM_TRAIN_FAIL_RANK=r and LLM_TRAIN_FAIL_STEP=s make rank r fail at step s, so the
// tests can check that one rank's error ends the whole job.
void maybe_inject_failure(const Communicator& comm, int64_t step) {
  const char* rank = std::getenv("LLM_TRAIN_FAIL_RANK");
  const char* at = std::getenv("LLM_TRAIN_FAIL_STEP");
  if (rank && at && std::atoi(rank) == comm.rank() && std::atoll(at) == step)
    throw std::runtime_error(fmt::format("rank {}: injected failure at step {} (LLM_TRAIN_FAIL_RANK)",
                                         comm.rank(), step));
}

// What the device can still give (Backend::available_memory). Test hook: LLM_TRAIN_AVAILABLE_MEMORY=bytes
// stands in for it, so the tests can see a small model refused.
uint64_t available_memory(const Device& device) {
  if (const char* bytes = std::getenv("LLM_TRAIN_AVAILABLE_MEMORY")) return std::strtoull(bytes, nullptr, 10);
  return backend(device).available_memory();
}

// The id of the token `name`: a special token's, or the one id its text encodes to (an added
// token is whole in any text).
int32_t token_id(const Tokenizer& tokenizer, const std::string& name) {
  if (std::optional<int32_t> id = tokenizer.special_id(name)) return *id;
  const std::vector<int32_t> ids = tokenizer.encode(name);
  if (ids.size() != 1) throw UserError("diffusion: mask_token_str '" + name + "' is not one token of the tokenizer");
  return ids[0];
}

std::string format_duration(double seconds) {
  int64_t s = static_cast<int64_t>(seconds);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

// A stop point of start-up: every rank passes the same ones in the same order and they agree (the
// largest signal number any rank saw), so the ranks stop together and none is left waiting in a
// collective for one that has gone.
void Trainer::Impl::stop_point(const char* during) {
  int64_t signal = stop_signal();
  comm.allreduce_max(&signal, 1);
  if (signal != 0) throw StopRequested(static_cast<int>(signal), during);
}

Trainer::Impl::Impl(TrainConfig cfg, Purpose purpose) : config(std::move(cfg)), comm(Communicator::get()) {
  const TrainConfig& c = config;
  // One run id for every rank, rank 0's (which its checkpoints carry): each rank tells this run's
  // checkpoints from others' by it, and must tell them as the others do (load_best_model's
  // collective read hung where ranks 1.. took rank 0's best checkpoint for another run's).
  comm.broadcast(run_id.data(), run_id.size(), 0);
  // Before anything loads: an unusable output_dir, or one another run holds, fails at once. Rank
  // 0 alone writes there, so it alone holds the lock.
  if (comm.is_main() && purpose != Purpose::inference) output_lock = lock_output_dir(c);
  if (purpose != Purpose::train) print_config_warnings();  // a run prints them in its summary
  // Ray's workers are data-parallel ranks: another count would train another global batch.
  if (c.use_ray && c.ray_num_workers != comm.world_size())
    throw EveryRankError(c.source + ": ray_num_workers: expected the number of ranks mpirun started, " +
                    std::to_string(comm.world_size()) + ", got " + std::to_string(c.ray_num_workers) +
                    " (Ray is not used here: start them with mpirun -np " + std::to_string(c.ray_num_workers) + ")");
  // Axolotl builds a device mesh on several ranks and then runs its DistMuon (dion's algorithm:
  // other Newton-Schulz coefficients, no Nesterov, the norms trained by AdamW), not this Muon.
  if (c.optimizer_muon() && comm.world_size() > 1)
    throw EveryRankError(c.source + ": optimizer: expected one rank with muon (on several Axolotl runs its DistMuon, "
                    "dion's Muon, which is not built here), got " + std::to_string(comm.world_size()) + " ranks");
  std::unique_ptr<Tokenizer> file_tokenizer = make_tokenizer(c.tokenizer_config, c.added_tokens_overrides, c.source);
  tokenizer_file_vocab = file_tokenizer->vocab_size();
  // Diffusion's mask token, as Axolotl resolves it: mask_token_id when it is a plain token, else
  // the token mask_token_str names, added when the tokenizer lacks it.
  added_tokens = c.tokens;
  const DiffusionSettings& diffusion = c.diffusion;
  const bool mask_by_name = diffusion.on && !(diffusion.mask_token_id >= 0 &&
                                              diffusion.mask_token_id < file_tokenizer->base_vocab_size());
  if (mask_by_name && std::find(added_tokens.begin(), added_tokens.end(), diffusion.mask_token()) == added_tokens.end())
    added_tokens.push_back(diffusion.mask_token());
  tokenizer = with_special_tokens(with_added_tokens(std::move(file_tokenizer), added_tokens, c.source), c.special_tokens,
                                  c.source);
  // TRL's RewardTrainer pads with EOS where the tokenizer names no pad token (Llama 3's HF files
  // name none; Axolotl sets none unless special_tokens does), and scores the last non-pad token.
  // Recorded as the run's special_tokens.pad_token: the exported tokenizer names it, as TRL saves its
  // tokenizer with that pad token, and a resume pads alike.
  if (c.reward_model && !tokenizer->pad_named()) {
    const std::string eos = tokenizer->special_name(tokenizer->eos()).value_or("");
    config.special_tokens.pad_token = eos;
    tokenizer = with_special_tokens(std::move(tokenizer), {"", "", eos}, c.source);
    say("reward_model: the tokenizer names no pad token: {} pads, as TRL's RewardTrainer pads with EOS\n", eos);
  }
  if (diffusion.on) {
    diffusion_mask_id = mask_by_name ? token_id(*tokenizer, diffusion.mask_token()) : static_cast<int32_t>(diffusion.mask_token_id);
    diffusion_mask_added = diffusion_mask_id >= tokenizer_file_vocab;
    // As for `tokens`: an adapter's export must carry the new row (PEFT saves the grown tables).
    if (diffusion_mask_added && !c.adapter.empty() && !(c.lora.saves("embed_tokens") && c.lora.saves("lm_head")))
      throw UserError(c.source + ": diffusion: expected lora_modules_to_save: [embed_tokens, lm_head] with an adapter, "
                      "since the mask token " + diffusion.mask_token() + " is added to the vocabulary (or a mask_token_id "
                      "below " + std::to_string(tokenizer->base_vocab_size()) + ", a plain token), got neither");
    say("diffusion: mask token {} (id {}{}), eps {}, importance weighting {}; every attention bidirectional\n",
        mask_by_name ? diffusion.mask_token() : "id", diffusion_mask_id, diffusion_mask_added ? ", added" : "",
        diffusion.eps, diffusion.importance_weighting ? "on" : "off");
  }
  grow_vocabulary();
  if (purpose == Purpose::preprocess) {  // no device, no model: the data and its batches
    const DataConfig data_config = load_data();
    print_data_summary();
    preprocessed_path = data_config.dataset_prepared_path;
    return;
  }
  device = choose_device(c, comm);
  // bfloat16's weights are bf16: a GPU computes in it whatever bf16 says, as a bf16 HF model does.
  const bool bf16 = !device.is_cpu() &&
                    (c.bfloat16 || c.bf16 == "true" || (c.bf16 == "auto" && backend(device).fast_bf16()));
  forward.compute_dtype = bf16 ? DType::bf16 : DType::f32;
  // The model with its adapter, which a training run's plan would overstate.
  if (purpose == Purpose::merge || purpose == Purpose::inference) {
    build_model();
    return;
  }
  forward.recompute_every_n_layers = c.gradient_checkpointing ? c.gradient_checkpointing_every_n_layers : 0;
  forward.offload_recompute_inputs = c.gradient_checkpointing_offload;
  forward.attention = c.attention_kernel();
  peak_bf16_tflops = backend(device).peaks().bf16_tflops;
  forward.fp8 = c.fp8;
  forward.ssmax = {c.scaling_softmax, c.scaling_softmax_factor, c.scaling_softmax_bias};
  if (c.use_eaft) forward.token_weighting = {c.eaft_k, static_cast<float>(c.eaft_alpha)};
  forward.token_weighting.dft = c.use_dft;
  backend(device).set_tf32(c.tf32 == "true" || (c.tf32 == "auto" && backend(device).fast_bf16()));  // sm_80+ both
  if (c.attention == AttentionKind::cudnn && !device.is_cpu() && !bf16)
    throw UserError(c.source + ": sdp_attention (cuDNN) runs in bf16 only; set bf16: true (or auto "
                    "on sm_80+), or use flash_attention for f32");
  if (purpose == Purpose::evaluate) {  // the model as the config loads it, and the data; nothing of a run
    build_model();
    load_data();
    print_data_summary();
    if (has_reference()) compute_reference_logps();
    return;
  }
  // Before the model is allocated: a run whose plan exceeds what the device has fails now, in one
  // line, instead of in an allocation minutes later.
  memory_available = available_memory(device);
  if (c.auto_find_batch_size) fit_micro_batch(bf16);
  check_memory(c, plan_memory(memory_plan_input(c, comm.world_size(), bf16, device.is_cpu())), memory_available,
               device.str());
  stop_point("reading the config");
  if (c.resume_from_checkpoint.empty() && c.auto_resume_from_checkpoints) {
    // Rank 0 alone streams the candidates (every byte of each) to find the newest valid one; the
    // others take its choice, so no other rank reads a checkpoint whole.
    std::string found;
    if (comm.is_main())
      found = find_latest_valid_checkpoint(c.output_dir, [this](const std::string& why) { say("warning: {}\n", why); })
                  .value_or("");
    int64_t length = static_cast<int64_t>(found.size());
    comm.broadcast(&length, sizeof(length), 0);
    found.resize(static_cast<size_t>(length));
    comm.broadcast(found.data(), found.size(), 0);
    resumed_from = found;
  } else {
    resumed_from = c.resume_from_checkpoint;
  }
  if (comm.is_main()) find_other_runs_checkpoints();
  // Opened (and checked against its manifest as far as its files' headers) before the data and
  // the model, so that a checkpoint that does not hold together is refused before minutes of
  // set-up; the tensors are read in restore(), each rank reading what it keeps.
  OpenCheckpoint checkpoint;
  if (!resumed_from.empty()) checkpoint = open_checkpoint(resumed_from);
  // A max_steps below the checkpoint's step is refused here, before the token cache is rebuilt
  // (num_epochs' count needs the data: restore() checks it).
  if (!resumed_from.empty() && c.max_steps > 0) checked_saved_step(checkpoint.trainer, c.max_steps);
  stop_point("reading the checkpoint");
  build_model();
  stop_point("loading the model");

  const DataConfig data_config = load_data();
  if (c.fix_untrained_tokens && resumed_from.empty()) fix_untrained_tokens(data_config.chat_template_source);
  plan = plan_steps(c, epoch_shape, !data.split.val.empty());
  // Evaluations advance the global generator HF's group_by_length draws each epoch's order from.
  loader->set_evaluations_before_epoch([p = plan](int64_t epoch) {
    return int64_t{p.eval_on_start} + (p.eval_steps > 0 ? std::min(epoch * p.updates_per_epoch, p.total_steps) / p.eval_steps : 0);
  });
  if (schedule_free) schedule_free->set_warmup_steps(plan.trainer_warmup_steps);
  load_best = loads_best_model_at_end(c, plan.eval_steps > 0);
  schedule = lr_schedule(c, plan);
  plateau = lr_plateau(c, !data.split.val.empty());

  if (has_reference() && resumed_from.empty()) compute_reference_logps();  // a resume reads them
  if (!resumed_from.empty()) restore(checkpoint);
  stop_point("restoring the checkpoint");
  if (comm.is_main())
    metrics = std::make_unique<MetricsLog>(
        c.output_dir + "/metrics.jsonl", resumed_from.empty() ? std::nullopt : std::optional<int64_t>(state.step),
        checkpoint.metrics_log, [this](const std::string& why) { say("warning: {}\n", why); });
  if (metrics && c.use_tensorboard) {
    const std::string dir = tensorboard_dir(c.output_dir);
    metrics->also_to_tensorboard(dir);
    say("use_tensorboard: every log record's numbers also go to {}\n", dir);
  }

  print_summary();
}

WeightUnits* Trainer::Impl::weight_units() const {
  if (sharded_weights) return sharded_weights.get();
  return frozen_shards.get();
}

// Axolotl's LossWatchDogCallback, at the end of a step before that step's log line: the newest
// log record, when it is a training loss above the threshold, counts one more violation (the same
// record again at each step end until the next log), at or below it resets the count; an
// evaluation record in between counts nothing. True once `patience` violations are reached.
bool Trainer::Impl::loss_watchdog_says_stop() {
  if (config.loss_watchdog_threshold <= 0 || !state.newest_logged_loss) return false;
  if (*state.newest_logged_loss <= config.loss_watchdog_threshold) {
    state.watchdog_violations = 0;
    return false;
  }
  return ++state.watchdog_violations >= config.loss_watchdog_patience;
}

// one_cycle's beta1 (or momentum) of the next update, set as soon as the last one is done, as torch's
// OneCycleLR sets it: Schedule-Free's switches between y and x read it in between.
void Trainer::Impl::set_next_beta1() {
  if (const std::optional<double> beta1 = schedule.beta1(state.step)) optimizer->set_beta1(*beta1);
}

TrainResult Trainer::Impl::run() {
  TrainResult result;
  const TrainConfig& c = config;
  // mpirun hands ranks a pseudo-terminal even when its own output goes to a file: no bar there.
  const bool tty = !comm.distributed() && isatty(fileno(stdout));
  auto start = std::chrono::steady_clock::now(), last_log = start;
  trainable_at_last_log = state.trainable_tokens;
  const int64_t first_step = state.step;
  set_next_beta1();  // OneCycleLR sets it when built
  const auto patience_ran_out = [&] {
    return c.early_stopping_patience > 0 && state.patience_counter >= c.early_stopping_patience;
  };
  // Without load_best every best was saved; with it, only those at HF's save steps.
  const auto say_early_stop = [&](const char* when) {
    say("early stopping{}: {} evaluations without improvement; best eval_loss {:.6f} at step {}{}\n", when,
        state.patience_counter, *state.best_eval_loss, state.best_step,
        state.best_step == state.best_checkpoint_step ? " (" + state.best_checkpoint_dir + ")"
        : !load_best ? " (" + config.output_dir + "/" + checkpoint_dir_name(state.best_step) + ")"
                     : " (not a save step, so no checkpoint holds it)");
  };
  // The checkpoint early stopping wrote as it ended the run (auto-resume finds it in a finished
  // run's output_dir) continues exactly by training nothing more: that run ended there. A larger
  // early_stopping_patience given on resume lets it go on.
  result.stopped_early = patience_ran_out();
  if (result.stopped_early) say_early_stop(" (at the checkpoint's step, before this resume)");
  // What follows a step: its evaluation, the saves and the reasons to stop; true when the run
  // stops here. A checkpoint whose evaluation a stop signal cut short runs it first on resume.
  const auto finish_step = [&](bool watchdog_stop) {
    const bool evaluates = plan.eval_steps > 0 && (state.step % plan.eval_steps == 0 || state.step == plan.total_steps);
    bool improved = false;
    try {
      improved = evaluates && evaluate_and_record(false, tty);
    } catch (const EvaluationStopped& stopped) {
      // Saved before its evaluation, as it stands: a resume runs the evaluation, then all below.
      state.evaluation_due = true;
      result.last_checkpoint = save(true);
      say("\nstopped by {} during the evaluation at step {}: checkpoint written to {} (its evaluation runs first on "
          "resume); continue with ./llm_train --resume {}\n", signal_name(stopped.signal), state.step,
          result.last_checkpoint, result.last_checkpoint);
      result.interrupted = true;
      return true;
    }
    const bool early_stop = patience_ran_out();
    // Every rank must agree to stop at the same step: mpirun delivers signals at different times.
    int64_t stop_flag = stop_signal() != 0 ? 1 : 0;
    comm.allreduce_max(&stop_flag, 1);
    const bool stop_signal = stop_flag > 0;
    // HF's save_strategy best saves each new best. Early stopping where HF's load_best_model_at_end
    // is off (save_steps not a multiple of eval_steps, which Axolotl refuses) saves them too, so
    // its best checkpoint exists.
    const bool best_save = improved && (c.save_strategy == "best" || (c.early_stopping_patience > 0 && !load_best));
    // The checkpoints HF's Trainer writes too; the others (a best above, a stop to resume from) are
    // ours. The last step saves under steps (DefaultFlowCallback) and epoch (its epoch's end), not no or best.
    const bool saves_last = c.save_strategy != "no" && c.save_strategy != "best";
    auto hf_saves = [&](int64_t step) {
      return (plan.save_steps > 0 && step % plan.save_steps == 0) || (c.save_first_step && step == 1) ||
             (saves_last && step == plan.total_steps);
  };
    if (hf_saves(state.step) || best_save || watchdog_stop || stop_signal) {
      if (hf_saves(state.step)) record_save(state, state.best_step >= 0 && hf_saves(state.best_step), c.output_dir);
      // save_only_model leaves the optimizer out, but not of the checkpoints a stop writes to resume from.
      result.last_checkpoint = save(!c.save_only_model || stop_signal || watchdog_stop);
    }
    if (early_stop) {
      say_early_stop("");
      result.stopped_early = true;
      return true;
    }
    if (watchdog_stop) {
      say("loss watchdog: the logged loss was above loss_watchdog_threshold {} at {} step ends in a row; "
          "stopping (checkpoint {})\n", c.loss_watchdog_threshold, state.watchdog_violations, result.last_checkpoint);
      result.stopped_by_watchdog = true;
      return true;
    }
    if (stop_signal) {
      say("\nstopped by signal: checkpoint written to {}; continue with ./llm_train --resume {}\n",
                 result.last_checkpoint, result.last_checkpoint);
      result.interrupted = true;
      return true;
    }
    return false;
  };
  // HF's eval_on_start evaluates again after a resume, repeating the checkpoint step's evaluation
  // in the log and counting it against early stopping's patience, so a resumed run could stop
  // where the run that saved the checkpoint would have gone on (Axolotl's issue #3305, its fix
  // #3575 skips it). A resume continues exactly: the start's evaluation is a fresh run's alone.
  if (plan.eval_on_start && first_step == 0 && state.step < plan.total_steps) {
    try {
      evaluate_and_record(true, tty);
    } catch (const EvaluationStopped& stopped) {
      throw StopRequested(stopped.signal, "the evaluation at the start");
    }
  }
  bool stopped = false;
  if (state.evaluation_due) {  // the resumed step's evaluation, which a stop signal cut short
    state.evaluation_due = false;
    // The watchdog counted this step's log already: its verdict stands as it was then.
    stopped = finish_step(c.loss_watchdog_threshold > 0 && state.watchdog_violations >= c.loss_watchdog_patience);
  }
  while (!stopped && !result.stopped_early && state.step < plan.total_steps) {
    maybe_inject_failure(comm, state.step + 1);
    if (c.lisa()) apply_lisa();
    if (c.relora) restart_relora();
    optimizer->set_training(true);  // HF's training_step calls optimizer.train()
    const double lr = step_lr = plateau ? plateau->lr : schedule.lr(state.step);
    const bool updated_in_backward = optimizer->updates_in_backward();
    const double step_loss = preference() ? accumulate_preference_gradients() : accumulate_gradients();
    if (c.lisa()) drop_waiting_gradients();
    zero_frozen_rows(frozen_rows);  // before the norm: Axolotl's hook zeroes them in backward
    const double grad_norm = optimizer->step(static_cast<float>(lr), c.max_grad_norm, std::isfinite(step_loss));
    apply_pruning_masks(pruning_masks);
    if (std::isfinite(step_loss) && std::isfinite(grad_norm)) {
      state.bad_steps = 0;
    } else if (++state.bad_steps >= kMaxBadSteps) {
      throw std::runtime_error(fmt::format("{} steps in a row had a non-finite loss or gradient norm "
                                           "(last: step {}); stopping. Lower learning_rate or check the data",
                                           kMaxBadSteps, state.step + 1));
    } else {
      result.non_finite_steps++;
      say("step {}: non-finite loss ({}) or grad norm ({}): {}\n", state.step + 1, step_loss, grad_norm,
          updated_in_backward ? "the parameters with a non-finite gradient kept their weights (the others were "
                                "updated in backward)"
                              : "update skipped");
    }
    state.step++;
    set_next_beta1();  // before an evaluation at this step, as OneCycleLR's scheduler.step() follows optimizer.step()
    result.last_loss = static_cast<float>(step_loss);
    state.loss_since_log += step_loss;
    state.steps_since_log++;
    // HF's state.epoch over a map-style dataset: the epochs done and this one's share of
    // micro-batches (not of steps: an epoch's last step may take fewer). A pretraining stream's
    // epochs are its passes here, where HF counts max_steps as one epoch.
    const DataCursor at = loader->cursor();
    const double epoch = at.epoch + static_cast<double>(at.batch) / loader->num_batches_per_epoch();
    const bool watchdog_stop = loss_watchdog_says_stop();

    // The plugin's callback runs at the step's end, before the Trainer logs, evaluates and saves.
    if (c.diffusion.on && c.diffusion.generate_samples && state.step % c.diffusion.generation_interval == 0)
      log_diffusion_samples();
    // Axolotl's RL builder sets HF's logging_first_step: step 1 logs too.
    if (state.step % plan.logging_steps == 0 || state.step == plan.total_steps || (!c.rl.empty() && state.step == 1)) {
      const auto loss_to_log = static_cast<float>(state.loss_since_log / state.steps_since_log);
      state.loss_since_log = 0.0;
      state.steps_since_log = 0;
      state.newest_logged_loss = loss_to_log;
      auto now = std::chrono::steady_clock::now();
      double since = std::chrono::duration<double>(now - last_log).count();
      double elapsed = std::chrono::duration<double>(now - start).count();
      double tokens_per_s = since > 0 ? tokens_since_log / since : 0.0;  // real tokens, no padding
      tokens_since_log = 0;
      double eta = elapsed / std::max<int64_t>(1, state.step - first_step) * (plan.total_steps - state.step);
      AllocatorStats mem = backend(device).allocator().stats();
      const PreferenceMetrics pairs = preference_since_log.means();
      preference_since_log = {};
      const DiffusionMetrics masks = diffusion_since_log;
      diffusion_since_log = {};
      say("{}step {}/{} | epoch {:.2f} | loss {:.6f}{} | lr {:.3e} | grad_norm {:.4f} | {:.0f} tok/s{} | "
                 "elapsed {} | eta {} | mem {:.1f} MiB (peak {:.1f}, reserved {:.1f})\n",
                 tty ? "\r\033[K" : "", state.step, plan.total_steps, epoch, loss_to_log,
                 preference() ? " | " + preference_text(pairs, preference_log()) : masks.text(), lr, grad_norm,
                 tokens_per_s, mfu_text(tokens_per_s), format_duration(elapsed), format_duration(eta),
                 mem.in_use_bytes / 1048576.0, mem.peak_bytes / 1048576.0, mem.reserved_bytes / 1048576.0);
      if (metrics)
        metrics->train(state.step, epoch, loss_to_log, lr, grad_norm, tokens_per_s,
                       preference()   ? preference_json(pairs, preference_log(), "") + num_tokens_json("")
                       : supervised() ? supervised_log_json(loss_to_log, since)
                                      : masks.json(""));
      last_log = now;
    } else if (tty) {
      const int width = 30, done = static_cast<int>(width * state.step / plan.total_steps);
      say("\r[{}{}] {}/{}", std::string(done, '='), std::string(width - done, ' '), state.step, plan.total_steps);
      std::fflush(stdout);
    }

    if (finish_step(watchdog_stop)) break;
  }
  if (const WeightUnits* units = weight_units())
    say("ZeRO-3: {} unit all-gathers, {} of them prefetched ({} unused)\n", units->counts().gathers,
        units->counts().ahead, units->counts().unused);
  if (!result.interrupted) {
    // Schedule-Free's model is its average x (a no-op after an evaluation at this step, which a
    // best checkpoint's weights were saved after).
    optimizer->set_training(false);
    if (load_best && state.best_checkpoint_step >= 0 && state.best_checkpoint_step != state.step) load_best_model();
    export_final_model();  // collective under ZeRO-3
    if (comm.is_main()) settle_checkpoints(c.output_dir, result.last_checkpoint.empty() ? resumed_from : result.last_checkpoint);
    if (comm.is_main() && !result.stopped_by_watchdog) {  // HF's train() ends so: a limit of 1 keeps the best alone
      prune_checkpoints(c.output_dir, c.save_total_limit, best_to_keep(), CheckpointsPruned::at_the_end);
      std::error_code ec;
      const std::optional<int64_t> best = best_to_keep();
      if (best && !result.last_checkpoint.empty() && !std::filesystem::exists(result.last_checkpoint, ec))
        result.last_checkpoint = c.output_dir + "/" + checkpoint_dir_name(*best);
    }
  }
  result.steps = state.step;
  result.best_eval_loss = state.best_eval_loss;
  result.best_step = state.best_step;
  return result;
}

Trainer::Trainer(TrainConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

std::string Trainer::preprocess(TrainConfig config) {
  return Impl(std::move(config), Impl::Purpose::preprocess).preprocessed_path;
}
Trainer::~Trainer() = default;
TrainResult Trainer::run() { return impl_->run(); }

std::string Trainer::sample_text(int lines, int64_t max_new_tokens) {
  if (!impl_->comm.is_main() && !impl_->model->gathers_units()) return "";
  // A diffusion model fills masks bidirectionally: token-by-token causal sampling reads it wrongly
  // (its denoised samples print every generation_interval steps instead).
  if (impl_->config.diffusion.on) return "  (none: a diffusion model, which causal sampling does not read)\n";
  if (impl_->model->config().num_labels > 0) return "  (none: a classifier scores; it has no lm_head to sample from)\n";
  std::string out;
  const Tokenizer& tok = *impl_->tokenizer;
  for (int i = 0; i < lines; i++) {
    SampleOptions opt;
    opt.max_new_tokens = max_new_tokens, opt.context = impl_->config.data.sequence_len, opt.temperature = 0.8f;
    opt.stop_tokens = {tok.eos()}, opt.seed = impl_->config.seed + i, opt.ssmax = impl_->forward.ssmax;
    std::vector<int32_t> ids = sample(*impl_->model, {tok.bos()}, opt);
    out += "  > " + one_line(decode_utf8_replacing(tok.decode(ids))) + "\n";
  }
  return out;
}

}  // namespace llm
