// Look-alikes of Axolotl's Llama 3 examples (examples/llama-3/ in axolotl-ai-cloud/axolotl:
// qlora-fsdp-70b.yaml, lora-8b.yml, qlora.yml, fft-8b-fsdp.yml), written here with their keys and
// values but a small model (the tiny preset at width 32) and configs/data/alpaca_sample.jsonl for
// their datasets: each parses into the settings its keys ask for, and the two FSDP ones train
// 2 steps under mpirun -np 2. Where an example asks for something not built here (an 8-bit base)
// the look-alike says so and the original value is checked to be refused in one line.
#include "test/axolotl_example.h"

using namespace llm;
using namespace llm::testing;

namespace {

// qlora-fsdp-70b.yaml: QLoRA on a 70B base under FSDP full_shard with parameter offload.
const std::string kQloraFsdp70b = kModel + R"(model_type: LlamaForCausalLM
tokenizer_type: AutoTokenizer
load_in_8bit: false
load_in_4bit: true
strict: false
datasets:
  - path: ALPACA
    type: alpaca
dataset_prepared_path: last_run_prepared
val_set_size: 0.05
output_dir: ./outputs/out/qlora-llama3-70b
adapter: qlora
lora_model_dir:
sequence_len: 512
sample_packing: false
pad_to_sequence_len: true
lora_r: 8
lora_alpha: 16
lora_dropout: 0.05
lora_target_modules:
lora_target_linear: true
lora_fan_in_fan_out:
wandb_project:
gradient_accumulation_steps: 4
micro_batch_size: 1
num_epochs: 4
optimizer: adamw_torch
lr_scheduler: cosine
learning_rate: 0.00001
train_on_inputs: false
group_by_length: false
bf16: auto
fp16:
tf32: false
gradient_checkpointing: true
gradient_checkpointing_kwargs:
  use_reentrant: true
early_stopping_patience:
resume_from_checkpoint:
local_rank:
logging_steps: 1
xformers_attention:
flash_attention: true
warmup_steps: 10
evals_per_epoch: 4
eval_table_size:
saves_per_epoch: 1
debug:
deepspeed:
weight_decay: 0.0
fsdp:
  - full_shard
  - auto_wrap
fsdp_config:
  fsdp_limit_all_gathers: true
  fsdp_sync_module_states: true
  fsdp_offload_params: true
  fsdp_use_orig_params: false
  fsdp_cpu_ram_efficient_loading: true
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer
  fsdp_state_dict_type: FULL_STATE_DICT
  fsdp_sharding_strategy: FULL_SHARD
special_tokens:
  pad_token: <|end_of_text|>
)";

// lora-8b.yml: LoRA r 32 on every linear, embed_tokens and lm_head trained whole, packed rows.
// Its base in 8 bits (load_in_8bit: true): LLM.int8's row-wise int8 block linears (engine/int8.h).
const std::string kLora8b = kModel + R"(model_type: LlamaForCausalLM
tokenizer_type: AutoTokenizer
load_in_8bit: true
load_in_4bit: false
datasets:
  - path: ALPACA
    type: alpaca
dataset_prepared_path:
val_set_size: 0.05
output_dir: ./outputs/lora-out
sequence_len: 4096
sample_packing: true
eval_sample_packing: false
adapter: lora
lora_model_dir:
lora_r: 32
lora_alpha: 16
lora_dropout: 0.05
lora_target_linear: true
lora_modules_to_save:
  - embed_tokens
  - lm_head
gradient_accumulation_steps: 4
micro_batch_size: 2
num_epochs: 4
optimizer: adamw_bnb_8bit
lr_scheduler: cosine
learning_rate: 0.0002
bf16: auto
tf32: false
gradient_checkpointing: true
resume_from_checkpoint:
logging_steps: 1
flash_attention: true
warmup_ratio: 0.1
evals_per_epoch: 4
saves_per_epoch: 1
weight_decay: 0.0
special_tokens:
   pad_token: <|end_of_text|>
)";

// qlora.yml: QLoRA r 32 on one device, packed rows padded to sequence_len, bitsandbytes' paged
// AdamW with f32 moments.
const std::string kQlora = kModel + R"(model_type: AutoModelForCausalLM
tokenizer_type: AutoTokenizer
load_in_8bit: false
load_in_4bit: true
strict: false
datasets:
  - path: ALPACA
    type: alpaca
dataset_prepared_path:
val_set_size: 0
output_dir: ./outputs/qlora-out
adapter: qlora
lora_model_dir:
sequence_len: 4096
sample_packing: true
pad_to_sequence_len: true
lora_r: 32
lora_alpha: 16
lora_dropout: 0.05
lora_target_modules:
lora_target_linear: true
gradient_accumulation_steps: 4
micro_batch_size: 2
num_epochs: 4
optimizer: paged_adamw_32bit
lr_scheduler: cosine
learning_rate: 0.0002
train_on_inputs: false
group_by_length: false
bf16: auto
fp16:
tf32: false
gradient_checkpointing: true
logging_steps: 1
xformers_attention:
flash_attention: true
warmup_steps: 10
evals_per_epoch: 4
saves_per_epoch: 1
weight_decay: 0.0
fsdp:
fsdp_config:
special_tokens:
  pad_token: "<|end_of_text|>"
)";

// fft-8b-fsdp.yml: full fine-tuning under FSDP full_shard, 2 steps (rows padded to the longest
// of each micro-batch, not to sequence_len).
const std::string kFft8bFsdp = kModel + R"(save_safetensors: true
datasets:
  - path: ALPACA
    type: alpaca
dataset_prepared_path: ./last_run_prepared
output_dir: ./outputs/fft-out
sequence_len: 8192
gradient_accumulation_steps: 1
micro_batch_size: 1
num_epochs: 1
optimizer: adamw_torch
learning_rate: 2e-5
bf16: auto
fp16:
tf32: false
logging_steps: 2
xformers_attention:
flash_attention: true
warmup_steps: 2
evals_per_epoch: 2
save_steps: 2
max_steps: 2
weight_decay: 0.0
fsdp:
  - full_shard
  - auto_wrap
fsdp_config:
  fsdp_limit_all_gathers: true
  fsdp_sync_module_states: true
  fsdp_offload_params: false
  fsdp_use_orig_params: true
  fsdp_cpu_ram_efficient_loading: false
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer
  fsdp_state_dict_type: FULL_STATE_DICT
  fsdp_sharding_strategy: FULL_SHARD
  fsdp_backward_prefetch: BACKWARD_PRE
special_tokens:
  pad_token: "<|end_of_text|>"
)";

}  // namespace

TEST_CASE("qlora-fsdp-70b: QLoRA under ZeRO-3 (full_shard) with the frozen slices offloaded") {
  const TrainConfig c = parse_example(kQloraFsdp70b);
  CHECK(c.adapter == "qlora");
  CHECK(c.load_in_4bit);
  CHECK(c.bnb_4bit_use_double_quant);
  CHECK(c.lora.r == 8);
  CHECK(c.lora.alpha == 16.0f);
  CHECK(c.lora.dropout == doctest::Approx(0.05));
  CHECK(c.lora.targets().size() == 7);
  CHECK(c.zero_stage == 3);
  CHECK(c.fsdp_stage == 3);
  CHECK(c.offload_params);
  CHECK(c.gradient_checkpointing);
  CHECK(c.attention == AttentionKind::flash);
  CHECK(c.data.pad_to_sequence_len);
  CHECK(!c.data.sample_packing);
  CHECK(c.special_tokens.pad_token == "<|end_of_text|>");
  // FSDP settings with nothing to do here, and HF/Axolotl keys llm_train does not read: warned.
  for (const char* key : {"fsdp_config.fsdp_limit_all_gathers", "fsdp_config.fsdp_sync_module_states",
                          "fsdp_config.fsdp_use_orig_params",
                          "fsdp_config.fsdp_state_dict_type", "model_type", "tokenizer_type", "strict"})
    CHECK_MESSAGE(has(c.unknown_keys, key), key);
  // true: what ZeRO-3 does anyway (no rank holds the whole model at start-up).
  CHECK(!has(c.unknown_keys, "fsdp_config.fsdp_cpu_ram_efficient_loading"));
}

TEST_CASE("lora-8b: LoRA r 32 with embed_tokens and lm_head trained whole on an 8-bit base") {
  const TrainConfig c = parse_example(kLora8b);
  CHECK(c.adapter == "lora");
  CHECK(c.load_in_8bit);
  CHECK(!c.load_in_4bit);
  CHECK(c.lora.r == 32);
  CHECK(c.lora.alpha == 16.0f);
  CHECK(c.lora.target_linear);
  CHECK(c.lora.modules_to_save == std::vector<std::string>{"embed_tokens", "lm_head"});
  CHECK(c.optimizer_8bit());
  CHECK(c.data.sample_packing);
  CHECK(!c.data.eval_sample_packing);
  CHECK(c.warmup_ratio == doctest::Approx(0.1));
  CHECK(c.zero_stage == 0);
  // bnb cannot train an 8-bit base: without the adapter it is refused, in one line.
  const std::string e = error_of(replaced(kLora8b, "adapter: lora\n", "adapter:\n"));
  CHECK(e.find("load_in_8bit: expected adapter: lora with it") != std::string::npos);
  CHECK(e.find('\n') == std::string::npos);
}

TEST_CASE("qlora: QLoRA r 32 on one device, paged AdamW with f32 moments") {
  const TrainConfig c = parse_example(kQlora);
  CHECK(c.adapter == "qlora");
  CHECK(c.load_in_4bit);
  CHECK(c.lora.r == 32);
  CHECK(c.data.sample_packing);
  CHECK(c.data.pad_to_sequence_len);
  CHECK(c.data.val_set_size == 0.0);
  CHECK(c.zero_stage == 0);
  CHECK(!c.offload_params);
  CHECK(c.optimizer == "paged_adamw_32bit");
  CHECK(!c.optimizer_8bit());
}

TEST_CASE("fft-8b-fsdp: full fine-tuning under ZeRO-3 (full_shard)") {
  const TrainConfig c = parse_example(kFft8bFsdp);
  CHECK(c.adapter.empty());
  CHECK(c.zero_stage == 3);
  CHECK(!c.offload_params);
  CHECK(c.max_steps == 2);
  CHECK(c.attention == AttentionKind::flash);
  CHECK(c.backward_prefetch);  // BACKWARD_PRE: what ZeRO-3 does
  CHECK(!has(c.unknown_keys, "fsdp_config.fsdp_backward_prefetch"));
  // false (every rank loading the whole model) is not offered: warned about as unused.
  CHECK(has(c.unknown_keys, "fsdp_config.fsdp_cpu_ram_efficient_loading"));
}

TEST_CASE("the FSDP examples train 2 steps under mpirun -np 2") {
  std::string yaml, expect;
  SUBCASE("qlora-fsdp-70b") {
    yaml = kQloraFsdp70b;
    expect = "ZeRO stage 3 of the frozen base";
  }
  SUBCASE("fft-8b-fsdp") {
    yaml = kFft8bFsdp;
    expect = "ZeRO stage 3: 3 units of weights";
  }
  Workspace ws("axolotl_fsdp");
  // The sample's 8 rows four times over: 70b's 4 accumulation steps per rank need 8 rows a step.
  std::string rows;
  for (int i = 0; i < 4; i++) rows += read_file(kAlpaca);
  const std::string data = (ws.dir / "alpaca.jsonl").string();
  write_file(data, rows);
  const std::string config = (ws.dir / "example.yml").string();
  write_file(config, localised(yaml, data, ws.dir));
  // The byte tokenizer stands in for the 128k Llama 3 one, which has no <|end_of_text|> here.
  Run r = run_train(config + " --max_steps 2 --special_tokens '{}'", mpirun(2));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK_MESSAGE(r.output.find(expect) != std::string::npos, r.output);
  CHECK(r.output.find("step 2/2") != std::string::npos);
  if (yaml == kQloraFsdp70b) {
    CHECK(r.output.find("fsdp_offload_params: the frozen slices are in host memory") != std::string::npos);
    CHECK(fs::exists(ws.dir / "out" / "adapter_model.safetensors"));
  }
}
