// LISA (Axolotl's lisa_n_layers / lisa_step_interval): the layer draws against numpy's, the layers
// that wait left exactly as they were (one rank and two, where the reduction hands them zeros),
// AdamW's per-parameter step counts through a resume, and the refusals. The trajectory against
// the Trainer with Axolotl's callback is test_hf_trajectory's.
#include <cstring>

#include "test/train_fixture.h"
#include "train/lisa.h"

using namespace llm;
using namespace llm::testing;

namespace {

// 4 layers: with 2 of them every 3 steps the draws are [2, 3] (steps 1-3), [3, 1] (4-6), [0, 3] (7-9).
const std::string kFourLayers =
    "base_model: tiny\nhidden_size: 32\nintermediate_size: 64\nnum_hidden_layers: 4\n"
    "num_attention_heads: 4\nnum_key_value_heads: 2\n";
const std::string kLisa = "lisa_n_layers: 2\nlisa_step_interval: 3\nweight_decay: 0.1\nsave_steps: 3\n";

bool same_tensor(const std::string& ckpt_a, const std::string& ckpt_b, const std::string& name) {
  const TensorFile a = read_tensor_file(ckpt_a + "/model.bin"), b = read_tensor_file(ckpt_b + "/model.bin");
  const Tensor *x = a.find(name), *y = b.find(name);
  REQUIRE_MESSAGE((x && y), name);
  return x->nbytes() == y->nbytes() && std::memcmp(x->data_ptr(), y->data_ptr(), x->nbytes()) == 0;
}

// Steps 4-6 train layers 3 and 1: layer 2 (trained in 1-3, AdamW moments left over) and layer 0
// must not move, decay included; the embedding and lm_head always train.
void check_waiting_layers(const Workspace& ws) {
  const std::string a = ws.out("step_000003"), b = ws.out("step_000006");
  for (const char* weight : {"self_attn.q_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight"}) {
    CAPTURE(weight);
    CHECK(same_tensor(a, b, std::string("model.layers.0.") + weight));
    CHECK(same_tensor(a, b, std::string("model.layers.2.") + weight));
    CHECK_FALSE(same_tensor(a, b, std::string("model.layers.1.") + weight));
    CHECK_FALSE(same_tensor(a, b, std::string("model.layers.3.") + weight));
  }
  CHECK_FALSE(same_tensor(a, b, "model.embed_tokens.weight"));
}

}  // namespace

// numpy 2.4's np.random.seed(s); np.random.choice(range(total), n, replace=False).
TEST_CASE("lisa_layers: numpy's legacy draw without replacement, seeded by the step") {
  CHECK(lisa_layers(16, 4, 0) == std::vector<int64_t>{1, 6, 8, 9});
  CHECK(lisa_layers(32, 8, 0) == std::vector<int64_t>{11, 22, 10, 2, 16, 14, 28, 26});
  CHECK(lisa_layers(5, 5, 3) == std::vector<int64_t>{3, 4, 1, 0, 2});
  CHECK(lisa_layers(80, 3, 6) == std::vector<int64_t>{29, 47, 13});
  CHECK(lisa_layers(32, 8, 20) == std::vector<int64_t>{29, 19, 4, 1, 24, 31, 10, 13});
  CHECK(lisa_layers(16, 4, 123456) == std::vector<int64_t>{5, 12, 9, 3});
  CHECK(lisa_interval_start(0, 3) == 0);
  CHECK(lisa_interval_start(5, 3) == 3);
}

TEST_CASE("LISA: the layers that wait keep their weights (no update, no decay), and start-up says which train") {
  Workspace ws("lisa_waiting");
  ws.model_yaml = kFourLayers;
  Run r = run_train(ws.config(kLisa + "max_steps: 6\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("LISA: from step 1, layers 2, 3 train (of 4)") != std::string::npos);
  CHECK(r.output.find("LISA: from step 4, layers 3, 1 train (of 4)") != std::string::npos);
  check_waiting_layers(ws);
  // Layers 0 and 1 missed updates: the checkpoint says how many, per trained tensor.
  const TensorFile optimizer = read_tensor_file(ws.out("step_000006/optimizer.bin"));
  REQUIRE(optimizer.metadata.count("missed_updates"));
  CHECK(optimizer.metadata.at("missed_updates").find('6') != std::string::npos);  // layer 0: every step
}

// Two ranks: the reduction hands the waiting layers zero gradients, which must not reach AdamW.
TEST_CASE("LISA under data parallelism: the waiting layers stay as they were") {
  Workspace ws("lisa_ranks");
  ws.model_yaml = kFourLayers;
  Run r = run_train(ws.config(kLisa + "max_steps: 6\n"), mpirun(2));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  check_waiting_layers(ws);
}

// 3 steps, a resume, 3 more: the layers thawed at step 4 take their first update with their own
// bias corrections, and layer 2 keeps its count for later.
TEST_CASE("LISA: a resume at a draw continues exactly (per-parameter AdamW steps in the checkpoint)") {
  Workspace straight("lisa_straight"), resumed("lisa_resumed");
  straight.model_yaml = resumed.model_yaml = kFourLayers;
  check_resume_exact(straight, resumed, kLisa + "max_steps: 6\n", nullptr, "");
}

TEST_CASE("LISA: what it does not combine with is refused in one line") {
  Workspace ws("lisa_refused");
  ws.model_yaml = kFourLayers;
  const std::pair<std::string, std::string> cases[] = {
      {"lisa_n_layers: 2\n", "lisa_n_layers: expected lisa_n_layers and lisa_step_interval together"},
      {"lisa_n_layers: 5\nlisa_step_interval: 2\n", "lisa_n_layers: expected at most num_hidden_layers, 4, got 5"},
      {"lisa_n_layers: 1\nlisa_step_interval: 2\nadapter: lora\nlora_target_linear: true\n",
       "expected no adapter with LISA"},
      {"lisa_n_layers: 1\nlisa_step_interval: 2\noptimizer: adopt_adamw\n", "expected an AdamW optimizer with LISA"},
      {"lisa_n_layers: 1\nlisa_step_interval: 2\nunfrozen_parameters: ['lm_head']\n", "expected no unfrozen_parameters"},
      {"lisa_n_layers: 1\nlisa_step_interval: 2\nlisa_layers_attribute: model.model.layers\n",
       "lisa_layers_attribute: expected one of model.layers"},
  };
  for (const auto& [yaml, message] : cases) check_refused_run(ws, "max_steps: 1\n" + yaml, message);
  // ZeRO's sharded AdamW: refused at parse time whatever the world size.
  check_refused_run(ws, "max_steps: 1\nlisa_n_layers: 1\nlisa_step_interval: 2\nzero_stage: 1\n",
                    "expected zero_stage 0 with LISA");
}
