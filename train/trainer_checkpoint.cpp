// defines: Trainer::Impl::export_weights, ::save and ::restore (the contents of a checkpoint, both
// ways, and what a resume changes; its warnings of an edited config are trainer_resume_warnings.cpp),
// and the guard of output_dir against another run's checkpoints
#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <type_traits>
#include <unordered_map>

#include "engine/backend.h"
#include "io/crc32.h"
#include "train/trainer_impl.h"
#include "engine/user_error.h"

namespace llm {

namespace fs = std::filesystem;

namespace {

// What a data cursor counts: micro-batches of rows of whole examples (io/dataset.h).
constexpr const char* kDataLayout = "example_rows";

// The whole of [begin, end) as an integer in [min, max].
std::optional<int64_t> parse_bounded(const char* begin, const char* end, int64_t min, int64_t max) {
  int64_t value = 0;
  const auto [stop, error] = std::from_chars(begin, end, value);
  if (error == std::errc() && stop == end && value >= min && value <= max) return value;
  return std::nullopt;
}

// The integer metadata value `key`, which must lie in [min, max]; anything else (text, an
// overflow, a value out of range) is one line naming the file and the key.
int64_t metadata_int(const TensorFile& file, const std::string& key, int64_t min,
                     int64_t max = std::numeric_limits<int64_t>::max()) {
  const std::string& text = file.require_metadata(key);
  if (const auto value = parse_bounded(text.data(), text.data() + text.size(), min, max)) return *value;
  throw UserError(fmt::format("{}: metadata {}: expected an integer in [{}, {}], got '{}'", file.path,
                              key, min, max, text));
}

// missed_updates (AdamW under LISA): a comma-separated count per trained parameter; absent when
// every parameter took every update.
std::vector<int64_t> metadata_counts(const TensorFile& file, const std::string& key, int64_t max) {
  if (!file.metadata.count(key)) return {};
  const std::string& text = file.metadata.at(key);
  std::vector<int64_t> out;
  for (size_t begin = 0; begin <= text.size();) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const auto value = parse_bounded(text.data() + begin, text.data() + end, 0, max);
    if (!value)
      throw UserError(fmt::format("{}: metadata {}: expected comma-separated integers in [0, {}], got '{}'",
                                  file.path, key, max, text));
    out.push_back(*value);
    begin = end + 1;
  }
  return out;
}

// best_eval_loss: "none" before the first evaluation, else a finite loss (a float; a double for
// a sum of losses).
template <class Real = float>
std::optional<Real> metadata_loss(const TensorFile& file, const std::string& key) {
  const std::string& text = file.require_metadata(key);
  if (text == "none") return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const Real value = std::is_same_v<Real, float> ? std::strtof(text.c_str(), &end) : std::strtod(text.c_str(), &end);
  if (!text.empty() && *end == '\0' && errno == 0 && std::isfinite(value)) return value;
  throw UserError(file.path + ": metadata " + key + ": expected a finite loss or 'none', got '" + text + "'");
}

// A log window of metrics (preference or diffusion), kept as "<prefix>_since_log_<i>" metadata
// values so that a resumed run logs the means an unbroken one would.
template <class Metrics>
void write_window(std::map<std::string, std::string>& m, const std::string& prefix, const Metrics& window) {
  double values[Metrics::kFields];
  window.to_array(values);
  for (int i = 0; i < Metrics::kFields; i++) m[prefix + "_since_log_" + std::to_string(i)] = fmt::format("{:.17g}", values[i]);
}

// The window write_window kept; a field that file lacks is 0 (a checkpoint from before it).
template <class Metrics>
Metrics read_window(const TensorFile& file, const std::string& prefix) {
  double values[Metrics::kFields];
  for (int i = 0; i < Metrics::kFields; i++) {
    const std::string key = prefix + "_since_log_" + std::to_string(i);
    values[i] = file.metadata.count(key) ? metadata_loss<double>(file, key).value_or(0.0) : 0.0;
  }
  return Metrics::from_array(values);
}

}  // namespace

std::vector<TensorEntry> Trainer::Impl::weight_table() const {
  std::vector<TensorEntry> out;
  for (const ParamRef& p : checkpointed_weights())
    out.push_back({p.name, sharded_optimizer ? DType::f32 : p.tensor->dtype(), p.tensor->shape()});
  return out;
}

void Trainer::Impl::export_weights(const TensorSink& put) {
  if (!sharded_optimizer) {
    for (const ParamRef& p : checkpointed_weights()) put(p.name, *p.tensor);
    return;
  }
  // The master, not the compute copy (bf16 on a GPU): a checkpoint resumes from what AdamW updates.
  std::unordered_map<const Tensor*, const std::string*> names;
  for (const ParamRef& p : params) names[p.tensor] = &p.name;
  const std::vector<GradBucket>& all = buckets->buckets();
  for (size_t i = 0; i < all.size(); i++) {
    const GradBucket& b = all[i];
    Tensor flat = Tensor::empty({b.padded}, DType::f32, Device::cpu());  // freed before the next bucket's
    sharded_optimizer->gather_master(i, flat);
    if (comm.is_main())
      for (size_t j = 0; j < b.params.size(); j++)
        put(*names.at(b.params[j]), b.part_of(flat, j).reshape(b.params[j]->shape()));
  }
}

// Checkpoints in output_dir of a run other than this one (a new run: any; a resume: those whose
// manifest names another run, or, where either run cannot be read (a legacy checkpoint has no
// manifest), those in another directory than the one resumed), and, resuming a checkpoint named
// outright, this run's own checkpoints after it (the continuation it abandons). Writing among
// them would replace some step by step and mix two runs (a later auto-resume would take the
// newest), so they are refused before anything is written unless the config says to replace
// them (HF's overwrite_output_dir): then they are removed once this run's first checkpoint is safe.
void Trainer::Impl::find_other_runs_checkpoints() {
  const TrainConfig& c = config;
  const std::optional<std::string> resumed_run =
      resumed_from.empty() ? std::nullopt : checkpoint_run_id(resumed_from);
  const std::optional<int64_t> resumed_step = resumed_from.empty() ? std::nullopt : checkpoint_step(resumed_from);
  std::error_code ec;
  const fs::path resumed_path = checkpoint_path(resumed_from);
  const auto beside_resumed = [&](const std::string& dir) {
    return fs::equivalent(fs::path(dir).parent_path(), resumed_path.parent_path(), ec);
  };
  for (const std::string& dir : list_checkpoints(c.output_dir)) {
    const std::optional<std::string> id = checkpoint_run_id(dir);
    const bool same_run = !resumed_from.empty() && (id && resumed_run ? *id == *resumed_run : beside_resumed(dir));
    if (!same_run) other_runs_checkpoints.push_back(dir);
    else if (!c.resume_from_checkpoint.empty() && resumed_step && checkpoint_step(dir) > resumed_step)
      abandoned_checkpoints.push_back(dir);
  }
  if (c.overwrite_output_dir) return;
  if (!abandoned_checkpoints.empty())
    throw UserError(c.source + ": output_dir: " + c.output_dir + " holds " + std::to_string(abandoned_checkpoints.size()) +
                    " checkpoint(s) of this run after " + resumed_from + ", newest " + abandoned_checkpoints.back() +
                    "; going on here would mix two continuations (a later auto-resume takes the newest): resume "
                    "the newest, resume into another output_dir (--output_dir), or set overwrite_output_dir: true "
                    "(--overwrite_output_dir true beside --resume) to replace them");
  if (other_runs_checkpoints.empty()) return;
  const std::string& newest = other_runs_checkpoints.back();
  const std::string count = std::to_string(other_runs_checkpoints.size());
  if (resumed_from.empty() && c.auto_resume_from_checkpoints)
    throw UserError(c.source + ": output_dir: " + c.output_dir + " holds " + count + " checkpoint(s), none of them "
                    "one auto_resume_from_checkpoints can resume (each said why above), newest " + newest +
                    "; choose another output_dir, or set overwrite_output_dir: true to replace them");
  if (resumed_from.empty())
    throw UserError(c.source + ": output_dir: " + c.output_dir + " holds " + count +
                    " checkpoint(s) of an earlier run, newest " + newest + "; resume it (--resume " + newest +
                    ", or auto_resume_from_checkpoints: true), choose another output_dir, or set "
                    "overwrite_output_dir: true to replace them");
  throw UserError(c.source + ": output_dir: " + c.output_dir + " holds " + count + " checkpoint(s) of another run "
                  "than " + resumed_from + "'s, newest " + newest + "; resume into another output_dir "
                  "(--output_dir), or set overwrite_output_dir: true to replace them");
}

// overwrite_output_dir: the other runs' checkpoints go once this run has one of its own (`saved`),
// those that this run's saves have not already replaced; so do the ones of the continuation a
// resume abandoned, but the one just written.
void Trainer::Impl::remove_replaced_checkpoints(const std::string& saved) {
  int64_t removed = 0, abandoned = 0;
  std::error_code ec;
  for (const std::string& dir : other_runs_checkpoints) {
    const std::optional<std::string> id = checkpoint_run_id(dir);
    if (id && *id == run_id) continue;
    if (fs::remove_all(dir, ec) > 0 && !ec) removed++;
  }
  for (const std::string& dir : abandoned_checkpoints)
    if (!fs::equivalent(dir, saved, ec) && fs::remove_all(dir, ec) > 0 && !ec) abandoned++;
  if (removed > 0)
    say("overwrite_output_dir: removed {} checkpoint(s) of an earlier run from {}\n", removed, config.output_dir);
  if (abandoned > 0)
    say("overwrite_output_dir: removed {} checkpoint(s) of this run after {} from {}\n", abandoned, resumed_from,
        config.output_dir);
  other_runs_checkpoints.clear();
  abandoned_checkpoints.clear();
}

std::string Trainer::Impl::save(bool with_optimizer) {
  CheckpointSave c;
  c.config_yaml = config_to_yaml(config_to_save(config));  // resuming names this checkpoint
  c.run_id = run_id;
  if (metrics) c.metrics_log = metrics->contents();  // rank 0's: the others keep no log
  // Made while written: under ZeRO one bucket's weights, then one bucket's moment, at a time.
  c.model = {{}, weight_table(), [this](const TensorSink& put) { export_weights(put); }};
  c.optimizer = {{{"steps_taken", std::to_string(optimizer->steps_taken())}, {"optimizer", optimizer->state_format()}},
                 optimizer->state_table(), [this](const TensorSink& put) { optimizer->export_state(put); }};
  if (!with_optimizer)  // save_only_model: an optimizer.bin without tensors, which a resume refuses
    c.optimizer = {{{"save_only_model", "true"}, {"optimizer", optimizer->state_format()}}, {}, [](const TensorSink&) {}};
  std::string missed;
  for (int64_t m : optimizer->missed_updates()) missed += (missed.empty() ? "" : ",") + std::to_string(m);
  if (!missed.empty()) c.optimizer.metadata["missed_updates"] = missed;
  for (const auto& [key, value] : optimizer->scalar_state()) c.optimizer.metadata[key] = value;
  DataCursor cursor = loader->cursor();
  auto& m = c.trainer.metadata;
  m["data_epoch"] = std::to_string(cursor.epoch);
  m["data_batch"] = std::to_string(cursor.batch);
  m["best_eval_loss"] = state.best_eval_loss ? fmt::format("{:.9g}", *state.best_eval_loss) : "none";
  m["best_step"] = std::to_string(state.best_step);
  m["best_checkpoint_step"] = std::to_string(state.best_checkpoint_step);
  m["best_checkpoint_dir"] = state.best_checkpoint_dir;
  m["patience_counter"] = std::to_string(state.patience_counter);
  m["bad_steps"] = std::to_string(state.bad_steps);
  // The logging window and the watchdog's record, so a resumed run logs what an unbroken one would.
  m["loss_since_log"] = fmt::format("{:.17g}", state.loss_since_log);
  m["steps_since_log"] = std::to_string(state.steps_since_log);
  m["trainable_tokens"] = std::to_string(state.trainable_tokens);
  m["input_tokens"] = std::to_string(state.input_tokens);
  m["newest_logged_loss"] = state.newest_logged_loss ? fmt::format("{:.9g}", *state.newest_logged_loss) : "none";
  m["watchdog_violations"] = std::to_string(state.watchdog_violations);
  m["evaluation_due"] = state.evaluation_due ? "true" : "false";
  m["world_size"] = std::to_string(comm.world_size());
  m["arithmetic"] = backend(device).arithmetic();
  if (plateau) {  // reduce_lr_on_plateau's state: the rate and what the next evaluations compare with
    m["plateau_lr"] = fmt::format("{:.17g}", plateau->lr);
    m["plateau_best"] = plateau->best ? fmt::format("{:.17g}", *plateau->best) : "none";
    m["plateau_bad_evaluations"] = std::to_string(plateau->bad_evaluations);
    m["plateau_cooldown_left"] = std::to_string(plateau->cooldown_left);
  }
  if (preference()) {  // the reference, which a resume cannot recompute once the weights moved
    if (has_reference())
      c.trainer.add("reference_logps", Tensor::from_floats(reference_logps, {static_cast<int64_t>(reference_logps.size())}));
    write_window(m, "preference", preference_since_log);
  }
  if (config.diffusion.on) write_window(m, "diffusion", diffusion_since_log);
  m["data_layout"] = kDataLayout;
  m["data_fingerprint"] = fmt::format("{:016x}", data.fingerprint);
  if (base_checksum) m["base_model_checksum"] = crc32_hex(*base_checksum);
  // Rank 0 writes; the data cursor is the same on every rank (each reads its own shard of it).
  std::string dir = config.output_dir + "/" + checkpoint_dir_name(state.step);
  CachingAllocator& host = backend(Device::cpu()).allocator();
  const size_t before = host.stats().in_use_bytes;
  host.start_window();
  if (comm.is_main()) {
    dir = save_checkpoint(config.output_dir, state.step, c);
    if (!other_runs_checkpoints.empty() || !abandoned_checkpoints.empty()) remove_replaced_checkpoints(dir);
    prune_checkpoints(config.output_dir, config.save_total_limit, best_to_keep());
  } else {  // the same gathers, in save_checkpoint's order, their results dropped
    const TensorSink drop = [](const std::string&, const Tensor&) {};
    c.model.produce(drop);
    c.optimizer.produce(drop);
  }
  if (sharded_optimizer) {
    int64_t rise = static_cast<int64_t>(host.stats().window_peak_bytes - before);
    comm.allreduce_max(&rise, 1);
    int64_t largest = 0;
    for (const GradBucket& b : buckets->buckets()) largest = std::max<int64_t>(largest, b.padded * sizeof(float));
    say("checkpoint {}: the save raised host memory {:.3f} MiB at most, on any rank (one bucket gathered at a "
        "time, the largest bucket {:.3f} MiB in f32)\n", dir, rise / 1048576.0, largest / 1048576.0);
  }
  comm.barrier();  // nobody runs ahead of a checkpoint that a failure might need
  return dir;
}

std::optional<int64_t> Trainer::Impl::best_to_keep() const {
  if (load_best || config.tracks_best_checkpoint) return state.best_checkpoint_step >= 0 ? std::optional<int64_t>(state.best_checkpoint_step) : std::nullopt;
  if (config.early_stopping_patience > 0 && state.best_step >= 0) return state.best_step;
  return std::nullopt;
}

// The step trainer.bin saved; a run shorter than that has nothing to train, and its export would
// claim the checkpoint's steps.
int64_t Trainer::Impl::checked_saved_step(const TensorFile& trainer, int64_t total_steps) const {
  const int64_t saved_step = metadata_int(trainer, "step", 0);
  if (saved_step > total_steps)
    throw UserError(fmt::format("{}: max_steps: expected at least step {} of {}, which this run resumes, got {} "
                                "steps (max_steps or num_epochs)", config.source, saved_step, resumed_from, total_steps));
  return saved_step;
}

void Trainer::Impl::restore(OpenCheckpoint& c) {
  if (c.optimizer->file().metadata.count("save_only_model"))
    throw UserError(resumed_from + ": saved with save_only_model: true, so it holds no optimizer state to resume "
                    "from (as Axolotl says of such checkpoints); expected a checkpoint saved without save_only_model");
  if (c.sealed)
    run_id = c.run_id;  // the same run goes on
  else
    say("warning: {}: no manifest.json: an unsealed checkpoint from before manifests (legacy); each "
        "file is checked, but not that they belong together\n", resumed_from);
  const TensorFile& t = c.trainer;
  const int64_t saved_step = checked_saved_step(t, plan.total_steps);
  std::optional<TrainConfig> saved;
  try {  // the saved config read as --resume reads it, so both sides resolve their paths alike
    saved = parse_config(c.config_yaml, resumed_from + "/config.yaml");
  } catch (const UserError&) {
  }
  warn_config_changes(saved, saved_step);
  // The data shards and the order of the gradient sums depend on the world size, so resuming is
  // exact only with the same one. Another one (a node lost, or added) goes on as HF's Trainer
  // does, saying so: every tensor is saved whole, so any rank count reads its own parts, and the
  // data continues at the step's place in this world size's order.
  const int64_t saved_world = metadata_int(t, "world_size", 1);
  if (saved_world != comm.world_size()) {
    const int64_t rows = epoch_shape.rows_per_batch * config.gradient_accumulation_steps;  // a rank's, a step
    say("warning: {}: written by a run of {} rank(s), resumed on {}: the weights, optimizer state and "
        "schedule continue, but not exactly: a step now takes {} rows where it took {} (micro-batch x "
        "accumulation x ranks), and the data continues at step {}'s place in this world size's order (as HF's "
        "Trainer resumes), so rows of the interrupted epoch may be seen twice or not at all\n",
        t.path, saved_world, comm.world_size(), rows * comm.world_size(), rows * saved_world, saved_step);
  }
  // The data the checkpoint trained on, as its token cache's checksum saw it: other data goes on
  // from the same place in another order, not as the saved run would have.
  const std::string data_now = fmt::format("{:016x}", data.fingerprint);
  const bool other_data = t.metadata.count("data_fingerprint") && t.metadata.at("data_fingerprint") != data_now;
  if (other_data)
    say("warning: {}: the datasets (their files, or the settings they are read with) differ from the ones this "
        "checkpoint trained on: the run goes on from step {}'s place in the new data, not as the saved run would\n",
        resumed_from, saved_step);
  if (t.metadata.count("arithmetic") && t.metadata.at("arithmetic") != backend(device).arithmetic())
    say("warning: {}: trained on {}, resumed on {}: sums split differently, so the run goes on close to the saved "
        "one, not bit for bit\n", resumed_from, t.metadata.at("arithmetic"), backend(device).arithmetic());
  // The weights a checkpoint does not hold (an adapter run's base, those unfrozen_parameters
  // leaves frozen, the source of sparse fine-tuning's masks) are base_model's now: other ones (its
  // files replaced, a hub id's revision moved) go on under the saved adapters, not as the saved run.
  if (base_checksum && t.metadata.count("base_model_checksum") &&
      t.metadata.at("base_model_checksum") != crc32_hex(*base_checksum))
    say("warning: {}: base_model {} holds other weights than the ones this checkpoint trained on (checksum {}, "
        "saved {}): the run goes on from step {} on these weights, not as the saved run would\n",
        resumed_from, config.base_model, crc32_hex(*base_checksum), t.metadata.at("base_model_checksum"), saved_step);
  CachingAllocator& host = backend(Device::cpu()).allocator();
  const size_t before = host.stats().in_use_bytes;
  host.start_window();
  load_weights(*c.model);
  // Another optimizer's state can share names with this one's (Lion's momentum is AdamW's m):
  // written since 2026-12-02, the file names the optimizer that wrote it.
  const TensorFile& state_file = c.optimizer->file();
  if (state_file.metadata.count("optimizer") && state_file.metadata.at("optimizer") != optimizer->state_format())
    throw UserError(state_file.path + ": written by the optimizer " + state_file.metadata.at("optimizer") +
                    ", but this run's is " + optimizer->state_format() + "; expected the optimizer that wrote it");
  // Sharded optimizers read only their slices of the moments.
  optimizer->import_state([&c](const std::string& name, const Shape& shape, DType dtype, int64_t begin, int64_t count) {
    return c.optimizer->read(name, shape, dtype, begin, count);
  });
  c.model->verify_parts(comm);
  c.optimizer->verify_parts(comm);
  int64_t measured[2] = {static_cast<int64_t>(host.stats().window_peak_bytes - before),
                         static_cast<int64_t>(c.model->bytes_read() + c.optimizer->bytes_read())};
  comm.allreduce_max(measured, 2);
  restore_rise = measured[0];
  restore_read = measured[1];
  state.step = metadata_int(t, "step", 0);
  // Skipped (non-finite) steps make no update, so the optimizer's count never exceeds the step.
  optimizer->set_steps_taken(metadata_int(c.optimizer->file(), "steps_taken", 0, state.step));
  try {
    optimizer->set_missed_updates(metadata_counts(c.optimizer->file(), "missed_updates", optimizer->steps_taken()));
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const UserError*>(&e)) throw;
    throw UserError(c.optimizer->file().path + ": metadata missed_updates: " + e.what());
  }
  try {
    optimizer->restore_scalar_state(c.optimizer->file().metadata);
  } catch (const std::runtime_error& e) {
    throw UserError(c.optimizer->file().path + ": " + e.what());
  }
  state.best_step = metadata_int(t, "best_step", -1, state.step);  // -1: no evaluation yet
  if (t.metadata.count("best_checkpoint_step"))  // written since load_best_model_at_end
    state.best_checkpoint_step = metadata_int(t, "best_checkpoint_step", -1, state.step);
  // Written since 2026-12-03; before, the best checkpoint was a sibling of the one resumed.
  if (auto dir = t.metadata.find("best_checkpoint_dir"); dir != t.metadata.end() && !dir->second.empty()) {
    if (checkpoint_step(dir->second) != state.best_checkpoint_step)  // a path anywhere else: never read
      throw UserError(fmt::format("{}: metadata best_checkpoint_dir: expected the checkpoint directory of step {}, "
                                  "got '{}'", t.path, state.best_checkpoint_step, dir->second));
    state.best_checkpoint_dir = dir->second;
  }
  else if (state.best_checkpoint_step >= 0)
    state.best_checkpoint_dir = beside_resumed(state.best_checkpoint_step);
  // Counts of evaluations (one before the first step) and of steps: never more than those.
  state.patience_counter = metadata_int(t, "patience_counter", 0, state.step + 1);
  state.bad_steps = metadata_int(t, "bad_steps", 0, state.step);
  state.best_eval_loss = metadata_loss(t, "best_eval_loss");
  if (plateau) {
    if (!t.metadata.count("plateau_lr"))
      throw UserError(t.path + ": metadata plateau_lr: expected reduce_lr_on_plateau's state (the checkpoint was "
                      "written under another lr_scheduler), got none");
    const std::optional<double> lr = metadata_loss<double>(t, "plateau_lr");
    if (!lr) throw UserError(t.path + ": metadata plateau_lr: expected a learning rate, got 'none'");
    plateau->lr = *lr;
    plateau->best = metadata_loss<double>(t, "plateau_best");
    plateau->bad_evaluations = metadata_int(t, "plateau_bad_evaluations", 0, state.step + 1);
    plateau->cooldown_left = metadata_int(t, "plateau_cooldown_left", 0, std::max<int64_t>(plateau->cooldown, 0));
  }
  // Checkpoints from before these keys: the logging window restarts here, as HF's Trainer's does.
  if (t.metadata.count("steps_since_log")) {
    state.steps_since_log = metadata_int(t, "steps_since_log", 0, state.step);
    state.loss_since_log = metadata_loss<double>(t, "loss_since_log").value_or(0.0);
    state.newest_logged_loss = metadata_loss(t, "newest_logged_loss");
    state.watchdog_violations = metadata_int(t, "watchdog_violations", 0, state.step);
  }
  // Written since 2026-12-07; before, each count restarts here.
  for (auto [key, count] : {std::pair{"trainable_tokens", &state.trainable_tokens}, {"input_tokens", &state.input_tokens}})
    if (t.metadata.count(key)) *count = metadata_int(t, key, 0);
  // Written since 2026-12-06 (a stop signal during an evaluation); before, every checkpoint
  // followed its step's evaluation.
  if (auto due = t.metadata.find("evaluation_due"); due != t.metadata.end()) {
    if (due->second != "true" && due->second != "false")
      throw UserError(t.path + ": metadata evaluation_due: expected true or false, got '" + due->second + "'");
    state.evaluation_due = due->second == "true";
  }
  if (preference()) {
    const int64_t n = data.examples->size();
    if (has_reference()) reference_logps = t.require("reference_logps", {n}, DType::f32).to_floats();
    preference_since_log = read_window<PreferenceMetrics>(t, "preference");
    // Written before the response counts were kept (DPO only): each pair counted one of each.
    if (!t.metadata.count("preference_since_log_7"))
      preference_since_log.chosen = preference_since_log.rejected = preference_since_log.pairs;
  }
  if (config.diffusion.on) diffusion_since_log = read_window<DiffusionMetrics>(t, "diffusion");
  // A cursor counts micro-batches of one way of laying out the data; before examples were kept
  // whole (one token stream cut into windows) the same numbers meant other batches.
  if (t.metadata.count("data_layout") == 0)
    say("warning: {}: written before example-level data (windows of one token stream); the run "
        "continues from its step, but its data order is not the interrupted run's\n", t.path);
  else if (t.metadata.at("data_layout") != kDataLayout)
    throw UserError(fmt::format("{}: metadata data_layout: expected {}, got '{}'", t.path, kDataLayout,
                                t.metadata.at("data_layout")));
  // An epoch takes a step at least, so the step bounds the epoch it lies in.
  DataCursor cursor{metadata_int(t, "data_epoch", 0, state.step), metadata_int(t, "data_batch", 0)};
  // Where the saved cursor counts other batches (another world size, micro-batch size or
  // accumulation, or other data), HF's skip: the saved steps as whole steps of this run's epochs.
  const bool other_batches = saved_world != comm.world_size() || other_data ||
                             (saved && (saved->micro_batch_size != config.micro_batch_size ||
                                        saved->gradient_accumulation_steps != config.gradient_accumulation_steps));
  if (other_batches)
    cursor = {state.step / plan.updates_per_epoch, state.step % plan.updates_per_epoch * config.gradient_accumulation_steps};
  try {
    loader->set_cursor(cursor);  // within this data's batches per epoch
  } catch (const UserError& e) {
    throw UserError(t.path + ": " + e.what());
  }
}

void Trainer::Impl::load_weights(TensorFileReader& model_file) {
  // ZeRO-3: each rank reads only the byte ranges of its slices of each weight, and no device
  // holds the whole model. ZeRO-1/2: each rank takes its master slices of each weight, and the
  // whole compute copy gets the saved value in its dtype, which is what casting and gathering the
  // master slices gives.
  for (const ParamRef& p : checkpointed_weights()) {
    const Shape& shape = p.tensor->shape();
    if (sharded_weights) {
      sharded_weights->keep_slice(p.tensor, [&](int64_t begin, int64_t count) {
        return model_file.read(p.name, shape, DType::f32, begin, count);
      });
      continue;
    }
    const Tensor saved = model_file.read(p.name, shape, sharded_optimizer ? DType::f32 : p.tensor->dtype());
    if (sharded_optimizer) sharded_optimizer->take_master(p.tensor, saved);
    p.tensor->copy_from(saved);
  }
  // ReLoRA on a quantised base: the restored full values give the codes, as the restarts made them.
  if (config.relora && config.quantized_base()) model->quantize_full_linears();
}

// The checkpoint of `step` in the directory of the checkpoint this run resumed from.
std::string Trainer::Impl::beside_resumed(int64_t step) const {
  std::string resumed = resumed_from;
  while (resumed.size() > 1 && resumed.back() == '/') resumed.pop_back();
  return (std::filesystem::path(resumed).parent_path() / checkpoint_dir_name(step)).string();
}

}  // namespace llm
