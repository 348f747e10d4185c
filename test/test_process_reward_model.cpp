// Process reward models (process_reward_model: true): stepwise_supervised rows as Axolotl tokenizes
// them, token labels unshifted in batches, the config's rules, and llm_train runs whose first loss
// is recomputed here from the token classifier's logits at every position, exported and adapted.
#include <algorithm>
#include <cmath>
#include <sstream>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/user_error.h"
#include "io/dataset.h"
#include "io/safetensors.h"
#include "io/stepwise_supervised.h"
#include "test/chat_tokenizer.h"
#include "test/classifier_fixture.h"
#include "train/config.h"

using namespace llm;
using namespace llm::testing;
using nlohmann::json;

TEST_CASE("stepwise_supervised: BOS, the prompt, each step and its separator; a step's label on its last token") {
  TempDir dir("prm_rows");
  const std::string path = (dir.path / "steps.jsonl").string();
  write_file(path, "{\"prompt\": \"Q\", \"completions\": [\"a\", \"bc\"], \"labels\": [true, false]}\n"
                   "{\"prompt\": \"R\", \"completions\": [\"x\"], \"labels\": [1.0]}\n"
                   "{\"prompt\": \"a long prompt that fills it\", \"completions\": [\"y\"], \"labels\": [0]}\n");
  DatasetSpec spec;
  spec.path = path, spec.type = kStepwiseSupervisedType;
  DataConfig config;
  config.sequence_len = 16;
  std::vector<Example> out;
  ExampleStats stats;
  append_stepwise_examples(spec, kFake, config, out, stats);
  // The third row's label falls past sequence_len: no target left, dropped as SFT drops such rows.
  REQUIRE(out.size() == 2);
  CHECK(stats.documents == 3);
  CHECK(stats.truncated == 1);
  CHECK(stats.no_targets == 1);
  CHECK(kFake.decode(out[0].tokens) == "<bos>Qa\nbc\n");
  const int32_t I = kIgnoreIndex;
  CHECK(out[0].labels == std::vector<int32_t>{I, I, I, 1, I, I, 0});
  CHECK(out[1].labels == std::vector<int32_t>{I, I, I, 1});
  // A special token's name in the text is that token, as HF's tokenizer call reads it (Axolotl
  // tokenizes each piece with add_special_tokens=False, which adds none but splits none apart).
  write_file(path, "{\"prompt\": \"Q<|eot_id|>\", \"completions\": [\"a<|im_end|>\"], \"labels\": [1]}\n");
  out.clear();
  append_stepwise_examples(spec, kFake, config, out, stats);
  REQUIRE(out.size() == 1);
  CHECK(out[0].tokens == std::vector<int32_t>{256, 'Q', 261, 'a', 263, '\n'});
  CHECK(out[0].labels == std::vector<int32_t>{I, I, I, I, I, 1});
  for (const auto& [row, message] :
       {std::pair<std::string, std::string>{"{\"prompt\": \"Q\", \"completions\": [\"a\"], \"labels\": [2]}\n",
                                            "expected true, false, 1 or 0"},
        {"{\"prompt\": \"Q\", \"completions\": [\"a\"], \"labels\": [0.5]}\n", "expected true, false, 1 or 0"},
        {"{\"prompt\": \"Q\", \"completions\": [\"a\", \"b\"], \"labels\": [1]}\n", "a label per step"},
        {"{\"prompt\": \"Q\", \"completions\": \"a\", \"labels\": [1]}\n", "a label per step"},
        {"{\"completions\": [\"a\"], \"labels\": [1]}\n", "prompt"}}) {
    CAPTURE(row);
    write_file(path, row);
    CHECK_THROWS_WITH_AS(append_stepwise_examples(spec, kFake, config, out, stats),
                         doctest::Contains(message.c_str()), UserError);
  }
}

TEST_CASE("stepwise_supervised: an entry's step_separator, max_completion_length and train_on_last_step_only") {
  TempDir dir("prm_entry_keys");
  const std::string path = (dir.path / "steps.jsonl").string();
  write_file(path, "{\"prompt\": \"Q\", \"completions\": [\"a\", \"bc\", \"d\"], \"labels\": [true, false, true]}\n");
  DatasetSpec spec;
  spec.path = path, spec.type = kStepwiseSupervisedType, spec.step_separator = " | ";
  DataConfig config;
  config.sequence_len = 64;
  const int32_t I = kIgnoreIndex;
  const auto rows = [&] {
    std::vector<Example> out;
    ExampleStats stats;
    append_stepwise_examples(spec, kFake, config, out, stats);
    REQUIRE(out.size() == 1);
    return out[0];
  };
  // Each step then the separator; its label on the separator's last token.
  Example ex = rows();
  CHECK(kFake.decode(ex.tokens) == "<bos>Qa | bc | d | ");
  CHECK(ex.labels == std::vector<int32_t>{I, I, I, I, I, 1, I, I, I, I, 0, I, I, I, 1});
  // Only the last step's label (Axolotl's strategy does this to evaluation rows too).
  spec.train_on_last_step_only = true;
  CHECK(rows().labels == std::vector<int32_t>{I, I, I, I, I, I, I, I, I, I, I, I, I, I, 1});
  // The steps cut to 6 tokens (the prompt and BOS not counted): the second step's label is lost.
  spec.train_on_last_step_only = false, spec.max_completion_length = 6;
  ex = rows();
  CHECK(kFake.decode(ex.tokens) == "<bos>Qa | bc");
  CHECK(ex.labels == std::vector<int32_t>{I, I, I, I, I, 1, I, I});
  // An empty step with an empty separator has no token for its label.
  spec.step_separator = "", spec.max_completion_length = 0;
  write_file(path, "{\"prompt\": \"Q\", \"completions\": [\"\", \"x\"], \"labels\": [1, 0]}\n");
  CHECK_THROWS_WITH_AS(rows(), doctest::Contains("steps.jsonl:1: step 0 is empty and so is step_separator"), UserError);
}

TEST_CASE("token_labels: each token's own label is its target, the last one's included") {
  ExampleSet data;
  data.add({{1, 2, 3}, {kIgnoreIndex, 0, 1}});
  data.add({{4, 5}, {1, kIgnoreIndex}});
  RowLayout layout{8, false, false, 9};
  layout.token_labels = true;
  const std::vector<Row> rows = one_example_per_row({0, 1});
  const int64_t which[] = {0, 1};
  const Batch b = make_batch(data, rows, which, 2, layout);
  const std::vector<int32_t> targets = b.targets.to_ints();
  const int64_t S = b.inputs.size(1);
  CHECK(targets[0] == kIgnoreIndex);
  CHECK(targets[1] == 0);
  CHECK(targets[2] == 1);
  CHECK(targets[S] == 1);
  CHECK(targets[S + 1] == kIgnoreIndex);
  CHECK(b.num_targets == 3);
}

namespace {

std::string step_rows(int count) {
  std::string rows;
  for (int i = 0; i < count; i++)
    rows += "{\"prompt\": \"" + std::to_string(i) + "+1=?\", \"completions\": [\"" + std::to_string(i) + " plus 1\", \"is " +
            std::to_string(i + 1 + i % 2) + "\"], \"labels\": [true, " + (i % 2 ? "false" : "true") + "]}\n";
  return rows;
}

struct StepsWorkspace : ClassifierWorkspace {
  StepsWorkspace()
      : ClassifierWorkspace("prm_run", step_rows(8),
                            "process_reward_model: true\nmodel_type: AutoModelForTokenClassification\nnum_labels: 2\n",
                            kStepwiseSupervisedType) {}
};

// The starting classifier's two logits at each labelled token of the rows, each row read alone at
// every position, with the token's label.
struct LabelledLogits {
  double no, yes;
  int32_t label;
};
std::vector<LabelledLogits> starting_logits(const StepsWorkspace& ws) {
  const std::unique_ptr<LlamaModel> model = ws.starting_classifier(2, true);
  DatasetSpec spec;
  spec.type = kStepwiseSupervisedType;
  NoGradGuard no_grad;
  std::vector<LabelledLogits> out;
  for (const Example& ex : ws.examples(spec, append_stepwise_examples)) {
    const int64_t n = static_cast<int64_t>(ex.tokens.size());
    const std::vector<float> logits =
        model->logits_from_hidden(model->hidden_states(Tensor::from_ints(ex.tokens, {1, n}), positions_of(n))).to_floats();
    for (int64_t i = 0; i < n; i++)
      if (ex.labels[i] != kIgnoreIndex) out.push_back({logits[2 * i], logits[2 * i + 1], ex.labels[i]});
  }
  return out;
}

// Their mean cross-entropy: the token classifier's loss over them.
double mean_cross_entropy(const std::vector<LabelledLogits>& labelled) {
  double loss = 0;
  for (const LabelledLogits& t : labelled) {
    const double m = std::max(t.no, t.yes);
    loss += m + std::log(std::exp(t.no - m) + std::exp(t.yes - m)) - (t.label ? t.yes : t.no);
  }
  return loss / static_cast<double>(labelled.size());
}

}  // namespace

TEST_CASE("process_reward_model: the first loss as the token classifier's cross-entropy over the steps' tokens") {
  StepsWorkspace ws;
  const Run r = run_train(ws.config(ws.keys_at(ws.path("out"))));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("a token classifier: score head of 2 label(s), no lm_head") != std::string::npos);
  const std::vector<json> steps = loss_records(ws.path("out/metrics.jsonl"));
  REQUIRE(steps.size() == 4);
  // The starting classifier's cross-entropy at the rows' labelled tokens (8 rows of 2 steps).
  const std::vector<LabelledLogits> labelled = starting_logits(ws);
  REQUIRE(labelled.size() == 16);
  CHECK(steps[0].at("loss").get<double>() == doctest::Approx(mean_cross_entropy(labelled)).epsilon(1e-5));
  CHECK(steps[3].at("loss").get<double>() < steps[0].at("loss").get<double>());
  const json config = json::parse(read_file(ws.path("out/config.json")));
  CHECK(config.at("architectures") == json::array({"LlamaForTokenClassification"}));
  CHECK(config.at("id2label") == json{{"0", "LABEL_0"}, {"1", "LABEL_1"}});
  const SafetensorsDir exported(ws.path("out"));
  CHECK(exported.find("score.weight")->shape == Shape{2, 32});
  // LlamaForTokenClassification's nn.Linear has a bias: zeros at the start (the causal LM base has
  // none), trained since.
  REQUIRE(exported.find("score.bias"));
  CHECK(exported.find("score.bias")->shape == Shape{2});
  const std::vector<float> bias = exported.read("score.bias", DType::f32).to_floats();
  CHECK((bias[0] != 0.0f || bias[1] != 0.0f));
}

TEST_CASE("process_reward_model: evaluation logs its loss and TRL's eval_accuracy, each labelled token's larger logit against its label") {
  StepsWorkspace ws;
  const Run r = run_train(ws.config(ws.keys_at(ws.path("out")) + "eval_steps: 2\ntest_datasets:\n  - path: " +
                                    ws.path("rows.jsonl") + "\n    type: stepwise_supervised\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  std::vector<json> evals;
  std::istringstream lines(read_file(ws.path("out/metrics.jsonl")));
  for (std::string line; std::getline(lines, line);)
    if (line.find("\"eval_accuracy\"") != std::string::npos) evals.push_back(json::parse(line));
  REQUIRE(evals.size() >= 2);
  // The evaluation before the first step: the starting classifier on every row.
  const std::vector<LabelledLogits> labelled = starting_logits(ws);
  const double correct = static_cast<double>(std::count_if(labelled.begin(), labelled.end(), [](const LabelledLogits& t) {
    return (t.yes > t.no ? 1 : 0) == t.label;
  }));
  CHECK(evals[0].at("step") == 0);
  CHECK(evals[0].at("eval_accuracy").get<double>() == doctest::Approx(correct / static_cast<double>(labelled.size())));
  // Its loss from the same forward: every row holds two labelled tokens, so the rows' weighting
  // of each batch's mean is the mean over all of them.
  CHECK(evals[0].at("eval_loss").get<double>() == doctest::Approx(mean_cross_entropy(labelled)).epsilon(1e-5));
  for (const json& e : evals) {
    CHECK(e.at("eval_accuracy").get<double>() >= 0.0);
    CHECK(e.at("eval_accuracy").get<double>() <= 1.0);
  }
}

TEST_CASE("process_reward_model with LoRA: PEFT's TOKEN_CLS adapter with the score head; resumes exactly") {
  StepsWorkspace ws;
  const std::string lora = "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n";
  const Run straight = run_train(ws.config(ws.keys_at(ws.path("straight")) + lora));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  const json adapter = json::parse(read_file(ws.path("straight/adapter_config.json")));
  CHECK(adapter.at("task_type") == "TOKEN_CLS");
  CHECK(adapter.at("modules_to_save") == json::array({"classifier", "score"}));
  const SafetensorsFile adapter_file(ws.path("straight/adapter_model.safetensors"));
  CHECK(adapter_file.find("base_model.model.score.weight"));
  CHECK(adapter_file.find("base_model.model.score.bias"));  // PEFT saves the module whole
  const Run half = run_train(ws.config(ws.keys_at(ws.path("resumed")) + lora) + " --max_steps 2");
  REQUIRE_MESSAGE(half.exit_code == 0, half.output);
  const Run rest = run_train("--resume " + ws.path("resumed/step_000002") + " --max_steps 4");
  REQUIRE_MESSAGE(rest.exit_code == 0, rest.output);
  CHECK(train_records(ws.path("straight/metrics.jsonl")) == train_records(ws.path("resumed/metrics.jsonl")));
  check_same_model(ws.path("straight/step_000004"), ws.path("resumed/step_000004"));
}

TEST_CASE("process_reward_model: the stepwise keys are read from a stepwise_supervised entry") {
  StepsWorkspace ws;
  const std::string yaml = "base_model: " + ws.base + "\ntokenizer_config: " + ws.dir.path.string() + "\n" + ws.trainer +
                           "    step_separator: ' | '\n    max_completion_length: 5\n    train_on_last_step_only: true\n" +
                           ClassifierWorkspace::kRunKeys + ws.keys_at(ws.path("out"));
  const TrainConfig c = load_config(ws.write_config(yaml));
  REQUIRE(c.data.datasets.size() == 1);
  CHECK(c.data.datasets[0].step_separator == " | ");
  CHECK(c.data.datasets[0].max_completion_length == 5);
  CHECK(c.data.datasets[0].train_on_last_step_only);
  // Null: the defaults.
  const std::string nulls = "base_model: " + ws.base + "\ntokenizer_config: " + ws.dir.path.string() + "\n" + ws.trainer +
                            "    step_separator:\n    max_completion_length:\n" + ClassifierWorkspace::kRunKeys +
                            ws.keys_at(ws.path("out"));
  const TrainConfig d = load_config(ws.write_config(nulls));
  CHECK(d.data.datasets[0].step_separator == "\n");
  CHECK(d.data.datasets[0].max_completion_length == 0);
}

TEST_CASE("process_reward_model: its dataset type and label count, refused otherwise in one line") {
  StepsWorkspace ws;
  const std::string keys = ws.keys_at(ws.path("out"));
  const std::string text = read_file(ws.config(keys));
  const auto refused = [&](const std::string& config, const std::string& message) {
    const Run r = run_train(ws.write_config(config));
    CAPTURE(r.output);
    CHECK(r.exit_code == 2);
    CHECK(error_text(r).find(message) != std::string::npos);
  };
  refused(with_line_removed(text, "process_reward_model: true\n"),
          "process_reward_model: true with the dataset type stepwise_supervised");
  refused(with_line_removed(text, "num_labels: 2\n") + "num_labels: 1\n",
          "1 with reward_model or 2 with process_reward_model");
  refused(text + "reward_model: true\n", "either reward_model or process_reward_model");
  refused(with_line_removed(text, "model_type: AutoModelForTokenClassification\n") +
              "model_type: AutoModelForSequenceClassification\n",
          "reward_model: true with AutoModelForSequenceClassification");
}

// TRL's PRMTrainer written out in torch, from the same starting token classifier.
TEST_CASE("process_reward_model trains as TRL's PRMTrainer: loss and grad_norm at every step") {
  check_reference_case("prm", "start_prm",
                       "process_reward_model: true\ndatasets:\n  - path: " + std::string(LLM_REWARD_REFERENCE_DIR) +
                           "/steps.jsonl\n    type: stepwise_supervised\n",
                       {"loss", "grad_norm"});
}
