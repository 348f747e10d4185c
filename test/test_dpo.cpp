// DPO: the fused per-sequence log-likelihood op, the loss of a pair against TRL's formulas, the
// preference datasets as Axolotl's DPO strategies and TRL's tokenisation shape them, and runs of
// llm_train with rl: dpo (reference log-probabilities, resume, metrics).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/backend.h"
#include "engine/ops.h"
#include "test/test_util.h"
#include "test/train_fixture.h"
#include "train/dpo_loss.h"

using namespace llm;
using namespace llm::testing;
using nlohmann::json;

namespace {

const std::string kReference = LLM_DPO_REFERENCE_DIR, kTrajectory = LLM_HF_TRAJECTORY_DIR;

// The reference: log_softmax(h W^T)[target] summed per sequence, in f64 on the host.
std::vector<double> reference_logps(const Tensor& h, const Tensor& w, const std::vector<int32_t>& targets,
                                    const std::vector<int32_t>& sequences, int64_t num_sequences) {
  const std::vector<float> logits = linear(h, w).to_floats();
  const int64_t V = w.size(0);
  std::vector<double> out(num_sequences, 0.0);
  for (size_t i = 0; i < targets.size(); i++) {
    if (targets[i] == kIgnoreIndex) continue;
    double mx = -INFINITY, s = 0.0;
    for (int64_t j = 0; j < V; j++) mx = std::max<double>(mx, logits[i * V + j]);
    for (int64_t j = 0; j < V; j++) s += std::exp(logits[i * V + j] - mx);
    out[sequences[i]] += logits[i * V + targets[i]] - mx - std::log(s);
  }
  return out;
}

}  // namespace

TEST_CASE("scale_rows: each row by its factor") {
  Tensor x = randn({3, 5}), s = Tensor::from_floats({2.0f, -1.0f, 0.5f}, {3});
  Tensor out = Tensor::empty({3, 5}, DType::f32);
  backend(Device::cpu()).scale_rows(x, s, out);
  const std::vector<float> xv = x.to_floats(), ov = out.to_floats();
  for (int i = 0; i < 3; i++)
    for (int c = 0; c < 5; c++) CHECK(ov[i * 5 + c] == xv[i * 5 + c] * s.to_floats()[i]);
}

TEST_CASE("linear_sequence_logps: the summed log-likelihood of each sequence in any chunking; gradients") {
  const int64_t N = 13, C = 7, V = 11, S = 4;
  Tensor h = randn({N, C}), w = randn({V, C});
  const std::vector<int32_t> targets = {3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 9, 6};
  // Rows of four sequences, not contiguous (a packed pair interleaves nothing, but the op must
  // not care); an ignored row names a sequence it does not belong to.
  const std::vector<int32_t> sequences = {0, 3, 0, 1, 1, 2, 2, 3, 3, 0, 2, 1, 0};
  Tensor t = Tensor::from_ints(targets, {N}), seq = Tensor::from_ints(sequences, {N});
  const std::vector<double> expected = reference_logps(h, w, targets, sequences, S);
  for (int64_t chunk : {1, 4, 13, 0}) {
    CAPTURE(chunk);
    const std::vector<float> got = linear_sequence_logps(h, w, t, seq, S, chunk).to_floats();
    for (int64_t s = 0; s < S; s++) CHECK(got[s] == doctest::Approx(expected[s]).epsilon(1e-5));
    check_gradients([&](const std::vector<Tensor>& in) {
      return linear_sequence_logps(in[0], in[1], t, seq, S, chunk);
    }, {h, w});
  }
  // A sequence with no counted row has log-likelihood 0; an ignored row's d(hidden) is exactly 0.
  Tensor hg = h.detach();
  hg.set_requires_grad(true);
  Tensor logps = linear_sequence_logps(hg, w, t, seq, S + 1, 4);
  CHECK(logps.to_floats()[S] == 0.0f);
  backward(logps, Tensor::from_floats({1.0f, -2.0f, 0.5f, 3.0f, 7.0f}, {S + 1}));
  const std::vector<float> dh = hg.grad().to_floats();
  for (int64_t i = 0; i < N; i++)
    if (targets[i] == kIgnoreIndex)
      for (int64_t c = 0; c < C; c++) CHECK(dh[i * C + c] == 0.0f);
  // Bad sequences and targets are refused, naming them.
  CHECK_THROWS_WITH(linear_sequence_logps(h, w, t, seq, 3), doctest::Contains("names sequence 3 of 3"));
  Tensor bad = Tensor::from_ints(std::vector<int32_t>(N, int32_t(V)), {N});
  CHECK_THROWS_WITH(linear_sequence_logps(h, w, bad, seq, S), doctest::Contains("outside the vocabulary"));
}

TEST_CASE("pair_loss: DPO's, conservative DPO's and IPO's losses, gradients and rewards") {
  const PairLogps pair{-10.0, -12.0, -11.0, -11.5, 4, 6};
  const PreferenceLossConfig dpo{"dpo", 0.1, 0.0}, cdpo{"dpo", 0.1, 0.2}, ipo{"ipo", 0.5, 0.0};
  // z = beta ((pc - rc) - (pr - rr)) = 0.1 (1 + 0.5)
  const double z = 0.15;
  CHECK(pair_loss(dpo, pair).loss == doctest::Approx(std::log1p(std::exp(-z))));
  CHECK(pair_loss(cdpo, pair).loss == doctest::Approx(0.8 * std::log1p(std::exp(-z)) + 0.2 * std::log1p(std::exp(z))));
  const double gap = 1.0 / 4 - (-0.5) / 6 - 1.0 / (2 * 0.5);
  CHECK(pair_loss(ipo, pair).loss == doctest::Approx(gap * gap));
  const PairLoss r = pair_loss(dpo, pair);
  CHECK(r.reward_chosen == doctest::Approx(0.1));
  CHECK(r.reward_rejected == doctest::Approx(-0.05));
  // The gradients against central differences of the loss in each policy log-likelihood.
  for (const PreferenceLossConfig& c : {dpo, cdpo, ipo}) {
    CAPTURE(c.rl);
    CAPTURE(c.label_smoothing);
    const double h = 1e-5;
    PairLogps up = pair, down = pair;
    up.policy_chosen += h, down.policy_chosen -= h;
    CHECK(pair_loss(c, pair).d_chosen == doctest::Approx((pair_loss(c, up).loss - pair_loss(c, down).loss) / (2 * h)));
    up = pair, down = pair;
    up.policy_rejected += h, down.policy_rejected -= h;
    CHECK(pair_loss(c, pair).d_rejected == doctest::Approx((pair_loss(c, up).loss - pair_loss(c, down).loss) / (2 * h)));
  }
  // Far-apart log-likelihoods neither overflow nor lose the loss.
  const PairLoss far = pair_loss(dpo, {0.0, -1e5, 0.0, 0.0, 1, 1});
  const PairLoss wrong = pair_loss(dpo, {-1e5, 0.0, 0.0, 0.0, 1, 1});
  CHECK(far.loss == doctest::Approx(0.0));
  CHECK(far.d_chosen == doctest::Approx(0.0));
  CHECK(wrong.loss == doctest::Approx(1e4));
  CHECK(wrong.d_chosen == doctest::Approx(-0.1));
  // RPO over 2 pairs whose chosen responses hold 8 targets summing to -12: 2 x 0.5 x 12 / 8.
  const RpoTerm rpo = rpo_term(0.5, -12.0, 8, 2);
  CHECK(rpo.loss == doctest::Approx(1.5));
  CHECK(rpo.d_chosen == doctest::Approx(-0.125));
  CHECK(rpo_term(0.5, 0.0, 0, 2).loss == 0.0);
}

namespace {

json reference_fixture() {
  const std::string path = kReference + "/trajectory.json";
  REQUIRE_MESSAGE(fs::exists(path), path << " is missing: run tools/make_dpo_reference.py");
  return json::parse(read_file(path));
}

// The config asking llm_train for what the reference ran: its model and settings, the pairs in
// file order, no evaluation or checkpoints unless `extra` asks.
std::string reference_yaml(const json& f, const std::string& work, const std::string& extra,
                           const std::string& pairs = "pairs.jsonl") {
  const json& s = f.at("settings");
  std::string y = "base_model: " + kTrajectory + "/untied\n" + "datasets:\n  - path: " + kReference +
                  "/" + pairs + "\n    type: chatml.prompt_pairs\n" + "dataset_prepared_path: " + work +
                  "/prepared\noutput_dir: " + work + "/out\ndevice: cpu\nval_set_size: 0\nsave_strategy: 'no'\n"
                  "curriculum_sampling: true\nshuffle_merged_datasets: false\nlr_scheduler: constant\n"
                  "weight_decay: 0\nlogging_steps: 1\noverwrite_output_dir: true\n";
  for (const char* key : {"sequence_len", "gradient_accumulation_steps", "max_steps",
                          "learning_rate", "max_grad_norm", "adam_beta1", "adam_beta2", "adam_epsilon"})
    y += std::string(key) + ": " + s.at(key).dump() + "\n";
  // micro_batch_size from `extra` when it gives one.
  if (extra.find("micro_batch_size:") == std::string::npos) y += "micro_batch_size: " + s.at("micro_batch_size").dump() + "\n";
  return y + extra;
}

// `yaml` with the line of `key` replaced by `key: value` (added when absent).
std::string with_key(std::string yaml, const std::string& key, const std::string& value) {
  const size_t at = yaml.find(key + ": ");
  if (at == std::string::npos) return yaml + key + ": " + value + "\n";
  return yaml.replace(at, yaml.find('\n', at) - at, key + ": " + value);
}

std::vector<json> logged_steps(const std::string& metrics_path) {
  std::vector<json> out;
  std::istringstream lines(read_file(metrics_path));
  for (std::string line; std::getline(lines, line);)
    if (line.find("\"loss\"") != std::string::npos) out.push_back(json::parse(line));
  return out;
}

// Runs llm_train with `extra` (under `launcher`) and checks every step against the case's.
void check_case(const std::string& name, const std::string& extra, const std::string& launcher = "",
                const std::string& pairs = "pairs.jsonl") {
  const json f = reference_fixture();
  const json& expected = f.at("cases").at(name).at("steps");
  TempDir work("dpo_" + name);
  const std::string config = work.write("config.yaml", reference_yaml(f, work.path.string(), extra, pairs));
  const Run run = run_train(config, launcher);
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  const std::vector<json> ours = logged_steps(work.file("out/metrics.jsonl"));
  REQUIRE(ours.size() == expected.size());
  for (size_t i = 0; i < ours.size(); i++) {
    CAPTURE(ours[i].dump());
    CAPTURE(expected[i].dump());
    // f32 both sides, sums in other orders; a metric is compared relative to its size, at least 1.
    for (const char* key : {"loss", "grad_norm", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
                            "rewards/margins", "logps/chosen", "logps/rejected"}) {
      CAPTURE(key);
      const double a = ours[i].at(key), b = expected[i].at(key);
      CHECK(std::fabs(a - b) <= 5e-5 * std::max(1.0, std::fabs(b)));
    }
  }
}

}  // namespace

TEST_CASE("rl: dpo trains as TRL's DPOTrainer: loss, grad_norm, rewards and log-likelihoods at every step") {
  check_case("dpo", "rl: dpo\nrl_beta: 0.1\n");
}

TEST_CASE("dpo_label_smoothing: conservative DPO as TRL's sigmoid loss with label_smoothing") {
  check_case("cdpo", "rl: dpo\nrl_beta: 0.1\ndpo_label_smoothing: 0.1\n");
}

TEST_CASE("rl: ipo: IPO's squared loss on log-ratios averaged over each response's tokens") {
  check_case("ipo", "rl: ipo\nrl_beta: 0.5\n");
}

TEST_CASE("rpo_alpha: RPO's NLL of the chosen responses added to each pair's loss, as TRL's") {
  check_case("rpo", "rl: dpo\nrl_beta: 0.1\nrpo_alpha: 0.5\n");
  // Chosen responses with NUL bytes (token id 0 here; Llama 3's "!"): in the DPO term, not the NLL.
  check_case("rpo_nul", "rl: dpo\nrl_beta: 0.1\nrpo_alpha: 0.5\n", "", "pairs_nul.jsonl");
}

TEST_CASE("rl: dpo with LoRA: the reference is the base with the adapters off, as TRL's with PEFT") {
  check_case("lora_dpo", "rl: dpo\nadapter: lora\nlora_r: 8\nlora_alpha: 16\nlora_dropout: 0.0\n"
                         "lora_target_linear: true\nlora_model_dir: " + kTrajectory + "/lora_init\n");
}

// Two ranks of one pair each per micro-batch hold the pairs one rank of two does: the same steps.
TEST_CASE("rl: dpo on 2 ranks: the pair losses averaged over ranks, the same trajectory") {
  check_case("dpo", "rl: dpo\nrl_beta: 0.1\nmicro_batch_size: 1\n", mpirun(2));
}

// ZeRO-3 gathers lm_head again for the backward, which computes the logits again.
TEST_CASE("rl: dpo under ZeRO-3 on 2 ranks: the same trajectory") {
  check_case("dpo", "rl: dpo\nrl_beta: 0.1\nmicro_batch_size: 1\nzero_stage: 3\n", mpirun(2));
}

TEST_CASE("rl: dpo resumes exactly: the reference log-likelihoods and the metrics window travel in the checkpoint") {
  const json f = reference_fixture();
  TempDir work("dpo_resume");
  // A checkpoint every step, a log line every 2: step 1's checkpoint holds an open window. The
  // resume from it rewrites the run's metrics after step 1, which must come out the same.
  std::string yaml = reference_yaml(f, work.path.string(), "rl: dpo\nsave_steps: 1\neval_steps: 2\n");
  for (const auto& [key, value] : {std::pair{"save_strategy", "steps"}, {"logging_steps", "2"}, {"val_set_size", "4"}})
    yaml = with_key(yaml, key, value);
  const Run straight = run_train(work.write("c.yaml", yaml));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  const std::string metrics = read_file(work.file("out/metrics.jsonl"));
  CHECK(metrics.find("\"eval_rewards/accuracies\"") != std::string::npos);
  fs::copy(work.file("out/step_000004"), work.file("straight_step_4"), fs::copy_options::recursive);
  const Run resumed = run_train("--resume " + work.file("out/step_000001"));
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(resumed.output.find("reference log-likelihoods") == std::string::npos);  // read, not recomputed
  // Every record, the pair metrics included; only the speed differs.
  const auto records = [](const std::string& path) {
    std::vector<json> out = logged_steps(path);
    for (json& r : out) r.erase("tokens_per_s");
    return out;
  };
  const std::vector<json> ours = records(work.file("out/metrics.jsonl"));
  CHECK(ours == records(work.write("straight_metrics.jsonl", metrics)));
  REQUIRE(ours.size() == 2);
  CHECK(ours[0].contains("rewards/margins"));
  check_same_model(work.file("straight_step_4"), work.file("out/step_000004"));
}
