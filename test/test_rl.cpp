// Preference training: the losses of a pair (DPO, IPO) and of a row (KTO) against TRL's formulas
// (the fused per-sequence log-likelihood op: test_sequence_logps), and runs of llm_train with rl:
// dpo / ipo / kto against TRL's trainers written out in torch (reference log-probabilities, ranks,
// resume, metrics).
#include <algorithm>
#include <cmath>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test/test_util.h"
#include "test/train_fixture.h"
#include "train/preference_loss.h"

using namespace llm;
using namespace llm::testing;
using nlohmann::json;

namespace {

const std::string kTrajectory = LLM_HF_TRAJECTORY_DIR;

// A fixture of tools/make_{dpo,kto,orpo}_reference.py: its directory, its rows and their dataset
// type, the metrics every step is checked on, and the config lines every run of it needs.
struct Reference {
  std::string dir, rows, type;
  std::vector<const char*> metrics;
  std::string yaml;
};
const Reference kDpo{LLM_DPO_REFERENCE_DIR, "pairs.jsonl", "chatml.prompt_pairs",
                     {"loss", "grad_norm", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
                      "rewards/margins", "logps/chosen", "logps/rejected", "nll_loss", "entropy", "logits/chosen",
                      "logits/rejected", "mean_token_accuracy"}};
const Reference kKto{LLM_KTO_REFERENCE_DIR, "rows.jsonl", "chatml.prompt_pairs",
                     {"loss", "grad_norm", "kl", "rewards/chosen", "rewards/rejected", "rewards/margins",
                      "logps/chosen", "logps/rejected", "entropy", "logits/chosen", "logits/rejected"}};
// Two-turn chatml rows need a sequence_len of 256, past the model's 128 (its RoPE has no limit).
const Reference kOrpo{LLM_ORPO_REFERENCE_DIR, "rows.jsonl", "chat_template.argilla",
                      {"loss", "grad_norm", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
                       "rewards/margins", "logps/chosen", "logps/rejected", "nll_loss", "log_odds_ratio",
                       "log_odds_chosen"},
                      "chat_template: chatml\nmax_position_embeddings: 256\n"};

}  // namespace

TEST_CASE("pair_loss: DPO's, conservative DPO's, IPO's, SimPO's and ORPO's losses, gradients and rewards") {
  const PairLogps pair{-10.0, -12.0, -11.0, -11.5, 4, 6};
  const PreferenceLossConfig dpo{"dpo", 0.1, 0.0}, cdpo{"dpo", 0.1, 0.2}, ipo{"ipo", 0.5, 0.0},
      simpo{"simpo", 2.0, 0.0, 0.5};
  // z = beta ((pc - rc) - (pr - rr)) = 0.1 (1 + 0.5)
  const double z = 0.15;
  CHECK(pair_loss(dpo, pair).loss == doctest::Approx(std::log1p(std::exp(-z))));
  CHECK(pair_loss(cdpo, pair).loss == doctest::Approx(0.8 * std::log1p(std::exp(-z)) + 0.2 * std::log1p(std::exp(z))));
  const double gap = 1.0 / 4 - (-0.5) / 6 - 1.0 / (2 * 0.5);
  CHECK(pair_loss(ipo, pair).loss == doctest::Approx(gap * gap));
  // IPO's rewards and logged logps are of the averages too, as TRL's.
  CHECK(pair_loss(ipo, pair).reward_chosen == doctest::Approx(0.5 * 1.0 / 4));
  CHECK(pair_loss(ipo, pair).logps_rejected == doctest::Approx(-12.0 / 6));
  // SimPO: no reference (the caller passes 0); z = beta (-10 / 4 + 12 / 6) - gamma.
  const PairLogps alone{-10.0, -12.0, 0.0, 0.0, 4, 6};
  const double zs = 2.0 * (-2.5 + 2.0) - 0.5;
  CHECK(pair_loss(simpo, alone).loss == doctest::Approx(std::log1p(std::exp(-zs))));
  CHECK(pair_loss(simpo, alone).reward_chosen == doctest::Approx(-5.0));
  const PairLoss r = pair_loss(dpo, pair);
  CHECK(r.reward_chosen == doctest::Approx(0.1));
  CHECK(r.reward_rejected == doctest::Approx(-0.05));
  // WPO: the pair's loss and gradient scaled by exp of each response's mean aligned log p; the
  // rewards as they were.
  const double wpo = wpo_weight(-2.0, 4, -3.0, 6);
  CHECK(wpo == doctest::Approx(std::exp(-0.5) * std::exp(-0.5)));
  CHECK(wpo_weight(-2.0, 0, 0.0, 3) == doctest::Approx(std::exp(-2.0)));  // no token: a count of 1
  PairLogps weighted = pair;
  weighted.weight = wpo;
  for (const PreferenceLossConfig& c : {dpo, ipo}) {
    const PairLoss plain = pair_loss(c, pair), scaled = pair_loss(c, weighted);
    CHECK(scaled.loss == doctest::Approx(wpo * plain.loss));
    CHECK(scaled.d_chosen == doctest::Approx(wpo * plain.d_chosen));
    CHECK(scaled.d_rejected == doctest::Approx(wpo * plain.d_rejected));
    CHECK(scaled.reward_chosen == plain.reward_chosen);
  }
  // The gradients against central differences of the loss in each policy log-likelihood.
  // dpo_loss_type: the weighted terms on averages (an ipo term among them), sft no reward.
  const PreferenceLossConfig mixed{"dpo", 0.5, 0.0, 0.5, false, {"sigmoid", "ipo", "sft"}, {0.7, 0.3, 2.0}};
  const double zm = 0.5 * (1.0 / 4 + 0.5 / 6), gm = 1.0 / 4 + 0.5 / 6 - 1.0;
  CHECK(pair_loss(mixed, pair).loss == doctest::Approx(0.7 * std::log1p(std::exp(-zm)) + 0.3 * gm * gm));
  CHECK(pair_loss(mixed, pair).reward_chosen == doctest::Approx((0.7 + 0.3) * 0.5 * 1.0 / 4));
  CHECK(dpo_nll_weight(mixed, -1) == 2.0);
  CHECK(dpo_nll_weight(mixed, 0.5) == 2.5);
  CHECK(dpo_nll_weight(dpo, 0.5) == 0.5);
  CHECK(dpo_nll_weight(dpo, -1) < 0);  // no NLL term
  for (const PreferenceLossConfig& c : {dpo, cdpo, ipo, simpo, mixed}) {
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
  // ORPO: no reference (the caller passes 0); on the averages c = -2.5, r = -2, the log odds ratio
  // z = (c - r) - (log(1 - e^c) - log(1 - e^r)) and the loss -beta log sigmoid(z).
  const PreferenceLossConfig orpo{"orpo", 0.5};
  const double c = -2.5, rr = -2.0;
  const double zo = (c - rr) - (std::log1p(-std::exp(c)) - std::log1p(-std::exp(rr)));
  const PairLoss o = pair_loss(orpo, alone);
  CHECK(o.odds_ratio);
  CHECK(o.log_odds == doctest::Approx(zo));
  CHECK(o.log_sigmoid_odds == doctest::Approx(-std::log1p(std::exp(-zo))));
  CHECK(o.loss == doctest::Approx(0.5 * std::log1p(std::exp(-zo))));
  CHECK(o.reward_chosen == doctest::Approx(0.5 * c));
  CHECK(o.logps_rejected == doctest::Approx(rr));
  for (const PairLogps& p : {alone, PairLogps{-1e-3, -30.0, 0.0, 0.0, 4, 6}}) {
    const double h = 1e-6;
    PairLogps up = p, down = p;
    up.policy_chosen += h, down.policy_chosen -= h;
    CHECK(pair_loss(orpo, p).d_chosen == doctest::Approx((pair_loss(orpo, up).loss - pair_loss(orpo, down).loss) / (2 * h)).epsilon(1e-4));
    up = p, down = p;
    up.policy_rejected += h, down.policy_rejected -= h;
    CHECK(pair_loss(orpo, p).d_rejected == doctest::Approx((pair_loss(orpo, up).loss - pair_loss(orpo, down).loss) / (2 * h)).epsilon(1e-4));
  }
  // A chosen response the policy is certain of (average 0) keeps the loss and gradient finite.
  const PairLoss certain = pair_loss(orpo, {0.0, -3.0, 0.0, 0.0, 4, 6});
  CHECK(std::isfinite(certain.loss));
  CHECK(std::isfinite(certain.d_chosen));
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

json reference_fixture(const Reference& r) {
  const std::string path = r.dir + "/trajectory.json";
  REQUIRE_MESSAGE(fs::exists(path), path << " is missing: run tools/make_{dpo,kto,orpo}_reference.py");
  return json::parse(read_file(path));
}

// The config asking llm_train for what the reference ran: its model and settings, the file's rows
// unshuffled when merged (then each epoch's random order for pairs, KTO's rows in order, as the
// references serve them), no evaluation or checkpoints unless `extra` asks.
std::string reference_yaml(const Reference& r, const json& f, const std::string& work, const std::string& extra,
                           const std::string& rows = "") {
  const json& s = f.at("settings");
  std::string y = "base_model: " + kTrajectory + "/untied\n" + "datasets:\n  - path: " + r.dir + "/" +
                  (rows.empty() ? r.rows : rows) + "\n    type: " + r.type + "\n" + "dataset_prepared_path: " + work +
                  "/prepared\noutput_dir: " + work + "/out\ndevice: cpu\nval_set_size: 0\nsave_strategy: 'no'\n"
                  "shuffle_merged_datasets: false\nlr_scheduler: constant\n"
                  "weight_decay: 0\nlogging_steps: 1\noverwrite_output_dir: true\n";
  for (const char* key : {"sequence_len", "gradient_accumulation_steps", "max_steps",
                          "learning_rate", "max_grad_norm", "adam_beta1", "adam_beta2", "adam_epsilon"})
    y += std::string(key) + ": " + s.at(key).dump() + "\n";
  // micro_batch_size from `extra` when it gives one.
  if (extra.find("micro_batch_size:") == std::string::npos) y += "micro_batch_size: " + s.at("micro_batch_size").dump() + "\n";
  return y + r.yaml + extra;
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

// Runs llm_train with `extra` (under `launcher`) and checks every step against the case's (the
// steps after the first within `later`, relative); returns its output.
std::string check_case(const Reference& r, const std::string& name, const std::string& extra, const std::string& launcher = "",
                const std::string& rows = "", double later = 5e-5) {
  const json f = reference_fixture(r);
  const json& expected = f.at("cases").at(name).at("steps");
  TempDir work("rl_" + name);
  const std::string yaml = reference_yaml(r, f, work.path.string(), extra, rows);
  const std::string config = work.write("config.yaml", with_key(yaml, "max_steps", std::to_string(expected.size())));
  const Run run = run_train(config, launcher);
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  const std::vector<json> ours = logged_steps(work.file("out/metrics.jsonl"));
  REQUIRE(ours.size() == expected.size());
  for (size_t i = 0; i < ours.size(); i++) {
    CAPTURE(ours[i].dump());
    CAPTURE(expected[i].dump());
    // f32 both sides, sums in other orders; a metric is compared relative to its size, at least 1.
    for (const char* key : r.metrics) {
      CAPTURE(key);
      CHECK(ours[i].contains(key) == expected[i].contains(key));  // KTO's: a side with no row logs none
      if (!ours[i].contains(key) || !expected[i].contains(key)) continue;
      // At the first step the policy is the reference and every reward 0: TRL's accuracy of those
      // exact ties is 0, ours compares log-likelihoods the precomputed reference rounded otherwise.
      if (std::string(key) == "rewards/accuracies" && expected[i].at("rewards/chosen") == 0.0 &&
          expected[i].at("rewards/rejected") == 0.0)
        continue;
      const double a = ours[i].at(key), b = expected[i].at(key);
      CHECK(std::fabs(a - b) <= (i == 0 ? 5e-5 : later) * std::max(1.0, std::fabs(b)));
    }
  }
  return run.output;
}

}  // namespace

TEST_CASE("rl: dpo trains as TRL's DPOTrainer: loss, grad_norm, rewards and log-likelihoods at every step") {
  check_case(kDpo, "dpo", "rl: dpo\nrl_beta: 0.1\n");
}

TEST_CASE("dpo_label_smoothing: conservative DPO as TRL's sigmoid loss with label_smoothing") {
  check_case(kDpo, "cdpo", "rl: dpo\nrl_beta: 0.1\ndpo_label_smoothing: 0.1\n");
}

TEST_CASE("rl: ipo: IPO's squared loss on log-ratios averaged over each response's tokens") {
  check_case(kDpo, "ipo", "rl: ipo\nrl_beta: 0.5\n");
}

TEST_CASE("rpo_alpha: RPO's NLL of the chosen responses added to each pair's loss, as TRL's") {
  check_case(kDpo, "rpo", "rl: dpo\nrl_beta: 0.1\nrpo_alpha: 0.5\n");
  // Chosen responses with NUL bytes (token id 0 here; Llama 3's "!"): in the DPO term, not the NLL.
  check_case(kDpo, "rpo_nul", "rl: dpo\nrl_beta: 0.1\nrpo_alpha: 0.5\n", "", "pairs_nul.jsonl");
}

TEST_CASE("dpo_norm_loss: DPO's loss on log-likelihoods averaged over each response's tokens, as Axolotl's trainer") {
  check_case(kDpo, "dpo_norm", "rl: dpo\ndpo_norm_loss: true\n");
}

TEST_CASE("rl: simpo: SimPO's reference-free loss on averaged log-likelihoods, with CPO's NLL, as TRL's CPOTrainer") {
  check_case(kDpo, "simpo", "rl: simpo\nrl_beta: 2.0\n");  // simpo_gamma 0.5 and cpo_alpha 1: TRL's defaults
  check_case(kDpo, "simpo_plain", "rl: simpo\nrl_beta: 2.0\nsimpo_gamma: 1.0\ncpo_alpha: 0\n");
}

TEST_CASE("dpo_loss_type and dpo_loss_weights: TRL's weighted sum of sigmoid, ipo and sft terms") {
  // Axolotl's fixture: DPO plus half the chosen responses' NLL; logged as nll_loss.
  check_case(kDpo, "dpo_sft", "rl: dpo\nrl_beta: 0.5\ndpo_loss_type: [sigmoid, sft]\ndpo_loss_weights: [1.0, 0.5]\n");
  // An ipo term averages every term's log-likelihoods; the rewards are weighted as the losses.
  check_case(kDpo, "dpo_mix", "rl: dpo\nrl_beta: 0.5\ndpo_loss_type: [sigmoid, ipo]\ndpo_loss_weights: [0.7, 0.3]\n");
  // Axolotl's docs spell IPO so.
  check_case(kDpo, "ipo", "rl: dpo\nrl_beta: 0.5\ndpo_loss_type: [ipo]\n");
}

TEST_CASE("rl: dpo with LoRA: the reference is the base with the adapters off, as TRL's with PEFT") {
  check_case(kDpo, "lora_dpo", "rl: dpo\nadapter: lora\nlora_r: 8\nlora_alpha: 16\nlora_dropout: 0.0\n"
                         "lora_target_linear: true\nlora_model_dir: " + kTrajectory + "/lora_init\n");
}

// An adapter trained before (its lora_B nonzero, as an SFT run's lora_model_dir): TRL copies a
// PeftModel's adapter into its frozen reference, so the reference is the starting model with it.
TEST_CASE("rl: dpo from a trained LoRA adapter: the reference is the model with it, as TRL's copy of a PeftModel's") {
  const std::string output =
      check_case(kDpo, "lora_dpo_trained", "rl: dpo\nadapter: lora\nlora_r: 8\nlora_alpha: 16\nlora_dropout: 0.0\n"
                                           "lora_target_linear: true\nlora_model_dir: " + kDpo.dir + "/lora_trained\n");
  // Axolotl never reads lora_model_dir's weights here: the run says it does.
  CHECK(output.find("lora_model_dir with rl: dpo: its adapter is loaded and is the reference's too") != std::string::npos);
}

// New adapters drawn by init_lora_weights: false (B uniform too) move the starting model off the
// base, which TRL's reference (the adapters off) stays, as Axolotl hands TRL a LoRA config:
// evaluated one pair a batch, the mean reward is beta times the mean log-likelihood's distance
// from the base's.
TEST_CASE("rl: dpo with init_lora_weights: false: the reference is the base, its new adapters off") {
  const json f = reference_fixture(kDpo);
  const auto evaluate = [&](const std::string& name, const std::string& extra) {
    TempDir work("rl_init_" + name);
    const std::string config = work.write(
        "config.yaml", reference_yaml(kDpo, f, work.path.string(), "rl: dpo\nrl_beta: 0.1\neval_batch_size: 1\n" + extra));
    const Run run = run_train("evaluate " + config);
    REQUIRE_MESSAGE(run.exit_code == 0, run.output);
    return run.output;
  };
  const std::string base = evaluate("base", "");
  const std::string drawn = evaluate("false", "adapter: lora\nlora_r: 8\nlora_alpha: 16\nlora_target_linear: true\n"
                                              "peft_init_lora_weights: false\n");
  CHECK(drawn.find("reference log-likelihoods of 16 pairs from the base, its new adapters off") != std::string::npos);
  for (const std::string side : {"chosen", "rejected"}) {
    CAPTURE(side);
    const double reward = number_after(drawn, "\ntrain_rewards/" + side + ":");
    const double moved = number_after(drawn, "\ntrain_logps/" + side + ":") - number_after(base, "\ntrain_logps/" + side + ":");
    CHECK(std::fabs(moved) > 0.1);
    CHECK(reward == doctest::Approx(0.1 * moved).epsilon(1e-4));
  }
}

// llm_train evaluate with rl, as Axolotl's evaluate runs TRL's DPOTrainer.evaluate on the training
// pairs: the model itself (its reference a copy of it, so every reward is 0) and with the trained
// adapter (its reference the base without it); each metric TRL's mean over the pairs, one a batch.
TEST_CASE("evaluate with rl: dpo: TRL's evaluation of the pairs, its reference the loaded model without adapters") {
  const json f = reference_fixture(kDpo);
  const std::string lora = "adapter: lora\nlora_r: 8\nlora_alpha: 16\nlora_dropout: 0.0\nlora_target_linear: true\n"
                           "lora_model_dir: " + kDpo.dir + "/lora_trained\n";
  for (const auto& [name, extra] : std::vector<std::pair<std::string, std::string>>{{"base", ""}, {"lora_trained", lora}}) {
    CAPTURE(name);
    TempDir work("rl_evaluate_" + name);
    const std::string config = work.write(
        "config.yaml", reference_yaml(kDpo, f, work.path.string(), "rl: dpo\nrl_beta: 0.1\neval_batch_size: 1\n" + extra));
    const Run run = run_train("evaluate " + config);
    REQUIRE_MESSAGE(run.exit_code == 0, run.output);
    CHECK(run.output.find("\ntrain_rewards/chosen:") != std::string::npos);
    // eval_summary.csv: "name,training,validation" rows, no validation rows here.
    const std::string csv = read_file(work.file("out/eval_summary.csv"));
    const json& expected = f.at("evaluations").at(name);
    for (const auto& [key, value] : expected.items()) {
      CAPTURE(key);
      const size_t at = csv.find("\r\n" + key + ",");
      REQUIRE(at != std::string::npos);
      const double ours = std::stod(csv.substr(at + key.size() + 3));
      const double b = value;
      if (key == "rewards/accuracies" && expected.at("rewards/chosen") == 0.0) continue;  // TRL's ties count 0
      CHECK(std::fabs(ours - b) <= 5e-5 * std::max(1.0, std::fabs(b)));
    }
  }
}

// WPO (dpo_use_weighting, TRL 1.9's use_weighting): each pair's loss times its weight from the
// policy's own aligned log-likelihoods, dpo's and ipo's. The first step agrees as closely as
// plain DPO's (loss 3e-8, grad norm 4e-7). After it, dpo's weighted run at this fixture's rate
// amplifies rounding: the reference itself, its weights scaled by 1 + 1e-7, moves its step-4
// grad norm by 1e-4 (measured: 2.7e-7, 4.3e-7, 9.5e-6, 9.8e-5 at steps 1-4), which is where ours is
// (1.1e-4); so its later steps get 5e-4.
TEST_CASE("dpo_use_weighting: WPO's weighted pair losses, as TRL's DPOTrainer") {
  check_case(kDpo, "wpo", "rl: dpo\nrl_beta: 0.1\ndpo_use_weighting: true\n", "", "", 5e-4);
  check_case(kDpo, "wpo_ipo", "rl: ipo\nrl_beta: 0.5\ndpo_use_weighting: true\n");
}

// 7 pairs in micro-batches of 2 (no dataloader_drop_last): each epoch's second step holds a whole
// micro-batch and one of a single pair, each micro-batch's mean weighing the same, as TRL's.
// Axolotl's preference builder passes neither dataloader_drop_last nor curriculum_sampling on: the
// same steps with both set.
TEST_CASE("rl: dpo with an epoch's smaller last micro-batch: TRL's mean of the micro-batches' means") {
  check_case(kDpo, "dpo_partial", "rl: dpo\nrl_beta: 0.1\n", "", "pairs_7.jsonl");
  const std::string output = check_case(kDpo, "dpo_partial", "rl: dpo\nrl_beta: 0.1\ndataloader_drop_last: true\n"
                                        "curriculum_sampling: true\n", "", "pairs_7.jsonl");
  CHECK(output.find("warning: curriculum_sampling with rl: dpo keeps a single dataset's own order") != std::string::npos);
  CHECK(output.find("dataloader_drop_last") != std::string::npos);  // among the unused keys
}

// Two ranks of one pair each per micro-batch hold the pairs one rank of two does: the same steps.
TEST_CASE("rl: dpo on 2 ranks: the pair losses averaged over ranks, the same trajectory") {
  check_case(kDpo, "dpo", "rl: dpo\nrl_beta: 0.1\nmicro_batch_size: 1\n", mpirun(2));
}

// ZeRO-3 gathers lm_head again for the backward, which computes the logits again.
TEST_CASE("rl: dpo under ZeRO-3 on 2 ranks: the same trajectory") {
  check_case(kDpo, "dpo", "rl: dpo\nrl_beta: 0.1\nmicro_batch_size: 1\nzero_stage: 3\n", mpirun(2));
}

namespace {

// A checkpoint every step, a log line every 2 and at step 1 (Axolotl's RL builder sets HF's
// logging_first_step): step 3's checkpoint holds an open window. The resume from it rewrites the
// run's metrics after step 3, which must come out the same.
void check_resume(const Reference& r, const std::string& rl, const std::vector<std::string>& eval_keys,
                  const std::vector<std::string>& absent = {}) {
  const json f = reference_fixture(r);
  TempDir work("resume_" + rl);
  std::string yaml = reference_yaml(r, f, work.path.string(), "rl: " + rl + "\nsave_steps: 1\neval_steps: 2\n");
  for (const auto& [key, value] : {std::pair{"save_strategy", "steps"}, {"logging_steps", "2"}, {"val_set_size", "4"}})
    yaml = with_key(yaml, key, value);
  const Run straight = run_train(work.write("c.yaml", yaml));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  const std::string metrics = read_file(work.file("out/metrics.jsonl"));
  for (const std::string& key : eval_keys) CHECK_MESSAGE(metrics.find("\"" + key + "\"") != std::string::npos, key);
  for (const std::string& key : absent) CHECK_MESSAGE(metrics.find("\"" + key + "\"") == std::string::npos, key);
  const std::string last = fmt::format("out/step_{:06d}", f.at("settings").at("max_steps").get<int>());
  fs::copy(work.file(last), work.file("straight_last"), fs::copy_options::recursive);
  const Run resumed = run_train("--resume " + work.file("out/step_000003"));
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(resumed.output.find("reference log-likelihoods") == std::string::npos);  // read, not recomputed
  // Every record, the pair metrics included; only the speed differs.
  const auto records = [](const std::string& path) {
    std::vector<json> out = logged_steps(path);
    for (json& record : out) record.erase("tokens_per_s");
    return out;
  };
  const std::vector<json> ours = records(work.file("out/metrics.jsonl"));
  CHECK(ours == records(work.write("straight_metrics.jsonl", metrics)));
  REQUIRE(ours.size() == 3);
  CHECK(ours[0].at("step") == 1);
  CHECK(ours[0].contains("rewards/margins"));
  check_same_model(work.file("straight_last"), work.file(last));
}

}  // namespace

TEST_CASE("rl: dpo resumes exactly: the reference log-likelihoods and the metrics window travel in the checkpoint") {
  check_resume(kDpo, "dpo", {"eval_rewards/accuracies", "eval_entropy", "eval_logits/rejected", "eval_mean_token_accuracy"});
}

TEST_CASE("rl: simpo resumes exactly, with no reference in its checkpoints") {
  // CPOTrainer logs no token-level metrics (its logits/* are means of whole padded tensors).
  check_resume(kDpo, "simpo", {"eval_nll_loss"}, {"entropy", "logits/chosen", "eval_mean_token_accuracy"});
}

TEST_CASE("rl: orpo trains as TRL's ORPOTrainer: NLL plus odds ratio, rewards and log odds at every step") {
  check_case(kOrpo, "orpo", "rl: orpo\norpo_alpha: 0.5\n");  // the long row ends at sequence_len (TRL 1.9's cut)
}

// TRL's NLL is a mean over each micro-batch's chosen tokens: two ranks of one pair each hold
// what one rank of micro-batches of one pair does, twice as many of them.
TEST_CASE("rl: orpo on 2 ranks, with and without ZeRO-3: the micro-batches' losses averaged over ranks") {
  check_case(kOrpo, "orpo_2ranks", "rl: orpo\norpo_alpha: 0.5\nmicro_batch_size: 1\n", mpirun(2));
  check_case(kOrpo, "orpo_2ranks", "rl: orpo\norpo_alpha: 0.5\nmicro_batch_size: 1\nzero_stage: 3\n", mpirun(2));
}

TEST_CASE("rl: orpo resumes exactly, evaluation included") {
  check_resume(kOrpo, "orpo", {"eval_log_odds_chosen"}, {"entropy", "logits/chosen"});
}

TEST_CASE("kto_row_loss: KTO's loss of a desirable and an undesirable row, its gradient and reward; the KL estimate") {
  const KtoLossConfig c{0.5, 0.2, 1.5};
  const double kl = 0.3, ratio = 1.1;
  const auto sigmoid = [](double x) { return 1 / (1 + std::exp(-x)); };
  CHECK(kto_row_loss(c, ratio, kl, true).loss == doctest::Approx(0.2 * (1 - sigmoid(0.5 * (ratio - kl)))));
  CHECK(kto_row_loss(c, ratio, kl, false).loss == doctest::Approx(1.5 * (1 - sigmoid(0.5 * (kl - ratio)))));
  CHECK(kto_row_loss(c, ratio, kl, true).reward == doctest::Approx(0.55));
  for (bool desirable : {true, false}) {
    const double h = 1e-6;
    const double numeric =
        (kto_row_loss(c, ratio + h, kl, desirable).loss - kto_row_loss(c, ratio - h, kl, desirable).loss) / (2 * h);
    CHECK(kto_row_loss(c, ratio, kl, desirable).d_policy == doctest::Approx(numeric));
  }
  // Far from the reference: no overflow, the loss saturates at its weight.
  CHECK(kto_row_loss(c, -1e6, 0.0, true).loss == doctest::Approx(0.2));
  CHECK(kto_row_loss(c, -1e6, 0.0, true).d_policy == doctest::Approx(0.0));
  // The ranks' means averaged, never below 0; no rank: 0.
  CHECK(kto_kl(1.0, 2) == doctest::Approx(0.5));
  CHECK(kto_kl(-1.0, 2) == 0.0);
  CHECK(kto_kl(0.0, 0) == 0.0);
}

TEST_CASE("rl: kto trains as TRL's KTOTrainer: loss, grad_norm, kl, rewards and log-likelihoods at every step") {
  check_case(kKto, "kto", "rl: kto\nrl_beta: 0.1\n");
}

TEST_CASE("kto_desirable_weight: the desirable rows' losses weighted, as Axolotl's qlora-1b-kto.yaml sets it") {
  check_case(kKto, "kto_weights", "rl: kto\nrl_beta: 0.5\nkto_desirable_weight: 0.2\nkto_undesirable_weight: 1.0\n");
}

TEST_CASE("rl: kto with LoRA: the reference is the base with the adapters off") {
  check_case(kKto, "lora_kto", "rl: kto\nadapter: lora\nlora_r: 8\nlora_alpha: 16\nlora_dropout: 0.0\n"
                               "lora_target_linear: true\nlora_model_dir: " + kTrajectory + "/lora_init\n");
}

// Each micro-batch's KL estimate is the mean of the two ranks' (TRL's gather), so this run differs
// from one rank's.
TEST_CASE("rl: kto on 2 ranks: the KL estimate averaged over ranks, the losses over every row") {
  check_case(kKto, "kto_2ranks", "rl: kto\nrl_beta: 0.1\n", mpirun(2));
  // ZeRO-3's gathers and the KL estimate's reduction interleave in the same order on every rank.
  check_case(kKto, "kto_2ranks", "rl: kto\nrl_beta: 0.1\nzero_stage: 3\n", mpirun(2));
}

TEST_CASE("rl: kto resumes exactly, evaluation included") {
  check_resume(kKto, "kto", {"eval_kl", "eval_entropy", "eval_logits/chosen"}, {"mean_token_accuracy"});
}
