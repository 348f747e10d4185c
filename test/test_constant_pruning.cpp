// Sparse fine-tuning (Axolotl's LLMCompressorPlugin with llmcompressor's ConstantPruningModifier,
// train/constant_pruning.h): the target matching, the zeros of a 2:4-sparse model kept through
// training, the export and a resume, a look-alike of Axolotl's sparse-finetuning.yaml, and the
// refusals. The trajectory against the Trainer with the modifier's masks is test_hf_trajectory's.
#include "io/safetensors.h"
#include "test/axolotl_example.h"
#include "train/constant_pruning.h"

using namespace llm;
using namespace llm::testing;

namespace {

const std::string kSparse24 = std::string(LLM_HF_TRAJECTORY_DIR) + "/sparse24";

std::string recipe(const std::string& targets) {
  return "llmcompressor:\n  recipe:\n    finetuning_stage:\n      finetuning_modifiers:\n"
         "        ConstantPruningModifier:\n          targets: " + targets + "\n          start: 0\n";
}
const std::string kLinears = recipe("['re:.*q_proj.weight', 're:.*k_proj.weight', 're:.*v_proj.weight', "
                                    "'re:.*o_proj.weight', 're:.*gate_proj.weight', 're:.*up_proj.weight', "
                                    "'re:.*down_proj.weight']");

std::vector<bool> zeros(const std::vector<float>& v) {
  std::vector<bool> out;
  for (float x : v) out.push_back(x == 0.0f);
  return out;
}

}  // namespace

TEST_CASE("targets match as llmcompressor's: 're:' + a regex from the name's start, else the whole name") {
  CHECK(pruning_target_matches("re:.*q_proj.weight", "model.layers.3.self_attn.q_proj.weight"));
  CHECK(pruning_target_matches("re:model.layers.1", "model.layers.10.mlp.up_proj.weight"));  // re.match: a prefix
  CHECK_FALSE(pruning_target_matches("re:layers", "model.layers.0.mlp.up_proj.weight"));      // not from the start
  CHECK(pruning_target_matches("lm_head.weight", "lm_head.weight"));
  CHECK_FALSE(pruning_target_matches("lm_head", "lm_head.weight"));
}

// 2:4-sparse block linears (half of every group of 4 zero): 6 steps keep each zero where it was,
// the other weights move; the export and the checkpoints hold the same zeros.
TEST_CASE("a 2:4-sparse base keeps its zeros through training, in checkpoints and in the export") {
  Workspace ws("sparse_kept");
  ws.model_yaml = "base_model: " + kSparse24 + "\n";
  Run r = run_train(ws.config(kLinears + "max_steps: 6\nsave_steps: 3\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("llmcompressor: ConstantPruningModifier keeps the zeros of 14 weight tensors (50.0% of "
                      "their elements), re-applied after every step") != std::string::npos);
  const SafetensorsDir base(kSparse24), exported(ws.out());
  for (const std::string name : {"model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight"}) {
    CAPTURE(name);
    const std::vector<float> before = base.read(name, DType::f32).to_floats(), after = exported.read(name, DType::f32).to_floats();
    CHECK(zeros(after) == zeros(before));
    CHECK(after != before);
    const TensorFile ckpt = read_tensor_file(ws.out("step_000003/model.bin"));
    CHECK(zeros(ckpt.find(name)->to_floats()) == zeros(before));
  }
  // Weights it does not target train freely (the embedding has no zeros to keep).
  CHECK(exported.read("model.embed_tokens.weight", DType::f32).to_floats() !=
        base.read("model.embed_tokens.weight", DType::f32).to_floats());
}

// The masks come from base_model's weights on a resume too (the checkpoint is read after them).
TEST_CASE("sparse fine-tuning: a resume continues exactly") {
  Workspace straight("sparse_straight"), resumed("sparse_resumed");
  straight.model_yaml = resumed.model_yaml = "base_model: " + kSparse24 + "\n";
  check_resume_exact(straight, resumed, kLinears + "max_steps: 6\nsave_steps: 3\n", nullptr, "");
}

// examples/llama-3/sparse-finetuning.yaml's keys on the small sparse model and the alpaca sample.
TEST_CASE("sparse-finetuning: Axolotl's example trains with its plugin and recipe") {
  // The small model's config.json says 128 positions; the example's sequence_len needs more.
  const std::string example = "base_model: " + kSparse24 + "\nmax_position_embeddings: 4096" + R"(
plugins:
  - axolotl.integrations.llm_compressor.LLMCompressorPlugin
load_in_8bit: false
load_in_4bit: false
strict: false
datasets:
  - path: ALPACA
    type: alpaca
dataset_prepared_path: last_run_prepared
val_set_size: 0.05
output_dir: ./outputs/out
sequence_len: 4096
sample_packing: true
pad_to_sequence_len: true
eval_sample_packing: false
gradient_accumulation_steps: 8
micro_batch_size: 1
num_epochs: 1
optimizer: paged_adamw_8bit
lr_scheduler: cosine
learning_rate: 2e-5
train_on_inputs: false
group_by_length: false
bf16: auto
fp16:
tf32: false
gradient_checkpointing: true
gradient_checkpointing_kwargs:
  use_reentrant: false
logging_steps: 1
flash_attention: true
warmup_steps: 100
evals_per_epoch: 2
saves_per_epoch: 1
weight_decay: 0.0
special_tokens:
  pad_token: <|end_of_text|>
llmcompressor:
  recipe:
    finetuning_stage:
      finetuning_modifiers:
        ConstantPruningModifier:
          targets: [
            're:.*q_proj.weight',
            're:.*k_proj.weight',
            're:.*v_proj.weight',
            're:.*o_proj.weight',
            're:.*gate_proj.weight',
            're:.*up_proj.weight',
            're:.*down_proj.weight',
          ]
          start: 0
  save_compressed: true
)";
  const TrainConfig c = parse_example(example);
  CHECK(c.pruning_targets.size() == 7);
  CHECK(c.save_compressed);
  // The sample packs into few rows of 256 tokens: no accumulation.
  const std::string out = train_2_steps(replaced(example, "gradient_accumulation_steps: 8", "gradient_accumulation_steps: 1"),
                                        "axolotl_sparse");
  CHECK_MESSAGE(out.find("save_compressed: the export is dense") != std::string::npos, out);
}

TEST_CASE("sparse fine-tuning: other modifiers, unknown targets and what it does not combine with are refused") {
  Workspace ws("sparse_refused");
  const std::pair<std::string, std::string> cases[] = {
      {"llmcompressor:\n  recipe:\n    stage:\n      quant_modifiers:\n        GPTQModifier: {scheme: W4A16}\n",
       "expected ConstantPruningModifier (sparse fine-tuning; llmcompressor's other modifiers"},
      {recipe("['re:.*q_proj.bias']"), "ConstantPruningModifier's target 're:.*q_proj.bias' matches no trained parameter"},
      {recipe("['re:(unclosed']"), "expected 're:' followed by a regular expression"},
      {recipe("['re:.*q_proj.weight']") + "adapter: lora\nlora_target_linear: true\n", "expected no adapter with sparse fine-tuning"},
      {recipe("['re:.*q_proj.weight']") + "zero_stage: 1\n", "expected zero_stage 0 with sparse fine-tuning"},
      {"llmcompressor:\n  recipe: {}\n", "expected a recipe with a ConstantPruningModifier and its targets, got none"},
  };
  for (const auto& [yaml, message] : cases) check_refused_run(ws, "max_steps: 1\n" + yaml, message);
}
