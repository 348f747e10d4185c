// test/data/hf_trajectory (tools/make_hf_trajectory.py): its fixture, the YAML that asks llm_train
// for what the Trainer was given, and the check of one llm_train run against a case's logged steps;
// shared by test_hf_trajectory and test_hf_trajectory_precision.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "test/train_fixture.h"

namespace llm::testing {

using nlohmann::json;

const std::string kDir = LLM_HF_TRAJECTORY_DIR;

// f32 on both sides, in different summation orders: what the steps may differ by, relative.
constexpr double kLossTolerance = 2e-5;
constexpr double kGradNormTolerance = 2e-5;
constexpr double kLrTolerance = 1e-7;  // both in double; ours printed with 9 digits

inline json fixture() {
  const std::string path = kDir + "/trajectory.json";
  REQUIRE_MESSAGE(fs::exists(path), path << " is missing: run tools/make_hf_trajectory.py");
  return json::parse(read_file(path));
}

// The fixture's data in file order, as the Trainer's sequential sampler reads it (most cases).
const std::string kFileOrder = "curriculum_sampling: true\nshuffle_merged_datasets: false\nval_set_size: 0\n";

// The YAML that asks llm_train for what the Trainer was given (the fixture's settings), on the
// fixture's `data` file in `order`'s order.
inline std::string config_yaml(const json& s, const std::string& model, const std::string& work,
                        const std::string& split, const std::string& order, const std::string& data) {
  std::string y = "base_model: " + kDir + "/" + model + "\n" +
                  "datasets:\n  - path: " + kDir + "/" + data + "\n    type: pretokenized\n    split: " +
                  split + "\n" +
                  "dataset_prepared_path: " + work + "/prepared\noutput_dir: " + work + "/out\n" +
                  "device: cpu\nsave_strategy: 'no'\n" + order;
  const std::pair<const char*, const char*> keys[] = {
      {"sequence_len", "sequence_len"}, {"micro_batch_size", "micro_batch_size"},
      {"gradient_accumulation_steps", "gradient_accumulation_steps"}, {"max_steps", "max_steps"},
      {"learning_rate", "learning_rate"}, {"lr_scheduler_type", "lr_scheduler"},
      {"warmup_steps", "warmup_steps"}, {"weight_decay", "weight_decay"},
      {"max_grad_norm", "max_grad_norm"}, {"adam_beta1", "adam_beta1"}, {"adam_beta2", "adam_beta2"},
      {"adam_epsilon", "adam_epsilon"}, {"optim", "optimizer"}, {"seed", "seed"},
      {"logging_steps", "logging_steps"}};
  for (const auto& [theirs, ours] : keys)
    if (s.contains(theirs)) y += std::string(ours) + ": " + s.at(theirs).dump() + "\n";
  return y;
}

// The fixture's LoRA settings.
inline std::string lora_keys(const json& lora) {
  return "adapter: lora\nlora_r: " + lora.at("r").dump() + "\nlora_alpha: " + lora.at("lora_alpha").dump() +
         "\nlora_dropout: " + lora.at("lora_dropout").dump() + "\nlora_target_linear: true\n";
}

// The fixture's LoRA settings, starting from PEFT's initial adapter `init` (lora_init, or
// dora_init with DoRA's magnitudes).
inline std::string lora_yaml(const json& lora, const std::string& init = "lora_init") {
  return lora_keys(lora) + "lora_model_dir: " + kDir + "/" + init + "\n" +
         (init == "dora_init" ? "peft_use_dora: true\n" : "");
}

inline double relative(double ours, double theirs) { return std::fabs(ours - theirs) / std::max(std::fabs(theirs), 1e-12); }

// Fake quantisation (qat) rounds to levels: two f32 runs whose weights differ in the last bits
// round a few values the other way, a discrete jump that later steps carry on. Steps after the
// first one that runs from weights of its own then agree only this closely.
struct LaterSteps {
  double loss, grad_norm;
};
constexpr LaterSteps kQatLater{1e-3, 2e-2};
// qat's fp8 casts also round the gradients they pass to e4m3 (3 mantissa bits): a flip there
// moves the gradient norm by percents (measured: 6.9% at most over 10 steps, the loss 8.5e-4).
constexpr LaterSteps kFp8GradientsLater{2e-3, 1e-1};

// Runs llm_train on `model` (a fixture directory) with the fixture's settings, `extra` keys and
// the rows of `split` of `data` in `order`, and checks each logged step against the Trainer's `expected`
// ones; steps after `exact_steps` (with qat) within `later`.
// Returns the run's evaluation records.
inline std::vector<json> check_trajectory(const std::string& model, const std::string& extra, const json& expected,
                                   const json& settings, const std::string& split = "train",
                                   int64_t exact_steps = 1 << 30, const std::string& order = kFileOrder,
                                   const std::string& data = "data.jsonl", const LaterSteps& later = kQatLater) {
  TempDir work("hf_trajectory");
  json s = settings;
  if (!s.contains("logging_steps")) s["logging_steps"] = 1;
  const std::string config = work.write("config.yaml", config_yaml(s, model, work.path.string(), split, order, data) + extra);
  Run run = run_train(config);
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  std::vector<json> ours, evals;
  std::istringstream metrics(read_file(work.file("out/metrics.jsonl")));
  for (std::string line; std::getline(metrics, line);) {
    if (line.find("\"loss\"") != std::string::npos) ours.push_back(json::parse(line));
    if (line.find("\"eval_loss\"") != std::string::npos) evals.push_back(json::parse(line));
  }
  // Ours also logs the last step when logging_steps does not divide it (the Trainer does not:
  // its train_loss summary averages the whole run instead). Deliberate: the final loss is shown.
  REQUIRE(!ours.empty());
  if (ours.size() == expected.size() + 1) {
    CHECK(ours.back().at("step").get<int64_t>() % s.at("logging_steps").get<int64_t>() != 0);
    ours.pop_back();
  }
  REQUIRE(ours.size() == expected.size());
  double worst[3] = {0, 0, 0};  // loss, grad_norm, lr
  for (size_t i = 0; i < ours.size(); i++) {
    const json &a = ours[i], &b = expected[i];
    CAPTURE(a.dump());
    CAPTURE(b.dump());
    CHECK(a.at("step") == b.at("step"));
    if (b.contains("epoch")) CHECK(std::fabs(a.at("epoch").get<double>() - b.at("epoch").get<double>()) <= 1e-5);  // 6 digits
    const double lr = a.at("lr"), their_lr = b.at("lr");
    const double d[3] = {relative(a.at("loss"), b.at("loss")), relative(a.at("grad_norm"), b.at("grad_norm")),
                         their_lr == 0 ? lr : relative(lr, their_lr)};
    const bool exact = a.at("step").get<int64_t>() <= exact_steps;
    CHECK(d[0] <= (exact ? kLossTolerance : later.loss));
    CHECK(d[1] <= (exact ? kGradNormTolerance : later.grad_norm));
    CHECK(d[2] <= kLrTolerance);
    for (int k = 0; k < 3; k++) worst[k] = std::max(worst[k], d[k]);
  }
  MESSAGE("largest relative differences: loss " << worst[0] << ", grad_norm " << worst[1] << ", lr " << worst[2]);
  return evals;
}

inline const json& steps_of(const json& f, const char* name) { return f.at("cases").at(name).at("steps"); }

// The keys evaluating as the case's Trainer did: every eval_steps on the fixture's first rows
// (test_datasets), eval_batch_size at a time.
inline std::string eval_keys(const json& c) {
  return "eval_steps: " + c.at("eval_steps").dump() + "\neval_batch_size: " + c.at("eval_batch_size").dump() +
         "\ntest_datasets:\n  - path: " + kDir + "/data.jsonl\n    type: pretokenized\n    split: train[:" +
         c.at("eval_examples").dump() + "]\n";
}

inline void check_evals(const std::vector<json>& ours, const json& theirs) {
  REQUIRE(ours.size() == theirs.size());
  for (size_t i = 0; i < ours.size(); i++) {
    CAPTURE(ours[i].dump());
    CHECK(ours[i].at("step") == theirs[i].at("step"));
    CHECK(relative(ours[i].at("eval_loss"), theirs[i].at("eval_loss")) <= kLossTolerance);
  }
}

}  // namespace llm::testing
