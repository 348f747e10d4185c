// defines: Trainer::Impl::save and ::restore (the contents of a checkpoint, both ways)
#include <fmt/core.h>

#include "train/trainer_impl.h"
#include "engine/user_error.h"

namespace llm {

namespace {
int64_t metadata_int(const TensorFile& file, const std::string& key) {
  const std::string& text = file.require_metadata(key);
  try {
    size_t used = 0;
    int64_t value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw UserError(file.path + ": metadata " + key + ": expected an integer, got '" + text + "'");
}
}  // namespace

std::string Trainer::Impl::save() {
  CheckpointContents c;
  TrainConfig saved = config;  // resuming from this checkpoint names it on the command line
  saved.resume_from_checkpoint.clear();
  saved.auto_resume_from_checkpoints = false;
  c.config_yaml = config_to_yaml(saved);
  for (const ParamRef& p : params) c.model.add(p.name, *p.tensor);
  for (auto& [name, tensor] : optimizer->export_state()) c.optimizer.add(name, tensor);
  c.optimizer.metadata["steps_taken"] = std::to_string(optimizer->steps_taken());
  DataCursor cursor = loader->cursor();
  auto& m = c.trainer.metadata;
  m["step"] = std::to_string(state.step);
  m["data_epoch"] = std::to_string(cursor.epoch);
  m["data_batch"] = std::to_string(cursor.batch);
  m["best_eval_loss"] = state.best_eval_loss ? fmt::format("{:.9g}", *state.best_eval_loss) : "none";
  m["best_step"] = std::to_string(state.best_step);
  m["patience_counter"] = std::to_string(state.patience_counter);
  m["bad_steps"] = std::to_string(state.bad_steps);
  m["world_size"] = std::to_string(comm.world_size());
  // Rank 0 writes; the data cursor is the same on every rank (each reads its own shard of it).
  std::string dir = config.output_dir + "/" + checkpoint_dir_name(state.step);
  if (comm.is_main()) {
    dir = save_checkpoint(config.output_dir, state.step, c);
    std::optional<int64_t> keep;
    if (config.early_stopping_patience > 0 && state.best_step >= 0) keep = state.best_step;
    prune_checkpoints(config.output_dir, config.save_total_limit, keep);
  }
  comm.barrier();  // nobody runs ahead of a checkpoint that a failure might need
  return dir;
}

void Trainer::Impl::restore(const std::string& dir) {
  CheckpointContents c = load_checkpoint(dir);
  for (const ParamRef& p : params)
    p.tensor->copy_from(c.model.require(p.name, p.tensor->shape(), DType::f32));
  optimizer->import_state([&c](const std::string& name, const Shape& shape) -> const Tensor& {
    return c.optimizer.require(name, shape, DType::f32);
  });
  optimizer->set_steps_taken(metadata_int(c.optimizer, "steps_taken"));
  const TensorFile& t = c.trainer;
  // The data shards and the order of the gradient sums depend on the world size, so resuming is
  // exact only with the same one; a different one is refused rather than silently inexact.
  if (metadata_int(t, "world_size") != comm.world_size())
    throw UserError(t.path + ": written by a run of " + t.require_metadata("world_size") +
                    " rank(s); resuming needs the same world size, this run has " +
                    std::to_string(comm.world_size()));
  state.step = metadata_int(t, "step");
  state.best_step = metadata_int(t, "best_step");
  state.patience_counter = metadata_int(t, "patience_counter");
  state.bad_steps = metadata_int(t, "bad_steps");
  const std::string& best = t.require_metadata("best_eval_loss");
  if (best != "none") state.best_eval_loss = std::stof(best);
  loader->set_cursor({metadata_int(t, "data_epoch"), metadata_int(t, "data_batch")});
}

}  // namespace llm
