// Trainer internals shared by engine/trainer.cpp (set-up and loop) and
// engine/trainer_checkpoint.cpp (what a checkpoint holds and how it is restored).
#pragma once
#include <memory>
#include <vector>

#include "engine/optimizer.h"
#include "engine/trainer.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/metrics.h"
#include "io/tokenizer.h"
#include "model/llama.h"

namespace llm {

struct Trainer::Impl {
  TrainConfig config;
  Device device;
  ByteTokenizer tokenizer;
  std::unique_ptr<LlamaModel> model;
  std::vector<ParamRef> params;
  std::vector<Tensor*> param_tensors;
  std::unique_ptr<AdamW> optimizer;
  TrainingData data;
  std::unique_ptr<DataLoader> loader;
  std::vector<Batch> val_batches;
  ForwardOptions forward;
  LrSchedule schedule;
  int64_t updates_per_epoch = 0, total_steps = 0;
  int64_t logging_steps = 1, eval_steps = 0, save_steps = 0;  // 0: only at the end
  TrainerState state;
  std::string resumed_from;
  std::unique_ptr<MetricsLog> metrics;

  explicit Impl(TrainConfig config);
  TrainResult run();
  float evaluate();

  // engine/trainer_checkpoint.cpp
  std::string save();                        // writes output_dir/step_NNNNNN, prunes old ones
  void restore(const std::string& dir);      // model, optimizer, state and data cursor
};

}  // namespace llm
