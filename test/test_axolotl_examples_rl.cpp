// Look-alikes of Axolotl's preference-training examples (instruct-dpo-lora-8b.yml,
// lora-1b-deduplicate-dpo.yml, qlora-1b-kto.yaml, mistral-qlora-orpo.yml) with their keys and values but a small model and rows
// of their datasets' shapes (test/axolotl_example.h): each trains 2 steps of what its keys ask
// for; the trainers not built stop in one line at rl.
#include "test/axolotl_example.h"

using namespace llm;
using namespace llm::testing;

namespace {

// instruct-dpo-lora-8b.yml: DPO on preference pairs, a dataset type only DPO reads.
const std::string kInstructDpoLora8b = kModel + R"(model_type: LlamaForCausalLM
tokenizer_type: AutoTokenizer
special_tokens:
  pad_token: <|finetune_right_pad_id|>
  eos_token: <|eot_id|>
load_in_8bit: true
load_in_4bit: false
chat_template: llama3
rl: dpo
datasets:
  - path: ALPACA
    type: chat_template.default
    field_messages: conversation
    field_chosen: chosen
    field_rejected: rejected
    message_property_mappings:
      role: role
      content: content
dataset_prepared_path:
val_set_size: 0.05
output_dir: ./outputs/lora-out
sequence_len: 4096
adapter: lora
lora_r: 32
lora_alpha: 16
lora_target_linear: true
optimizer: adamw_bnb_8bit
learning_rate: 0.0002
)";

// qlora-1b-kto.yaml: KTO on labelled completions with QLoRA, 8-bit AdamW and recompute.
const std::string kQlora1bKto = kModel + R"(load_in_8bit: false
load_in_4bit: true
strict: false
rl: kto
rl_beta: 0.5
kto_desirable_weight: 0.2
datasets:
  - path: ALPACA
    type: llama3.ultra
    split: train
dataset_prepared_path: last_run_prepared
val_set_size: 0.0
output_dir: ./outputs/qlora-out
remove_unused_columns: false
adapter: qlora
lora_model_dir:
sequence_len: 2048
sample_packing: false  # not supported with kto
eval_sample_packing: false
pad_to_sequence_len: false
lora_r: 32
lora_alpha: 64
lora_dropout: 0.05
lora_target_linear: true
lora_fan_in_fan_out:
gradient_accumulation_steps: 1
micro_batch_size: 2
num_epochs: 1
optimizer: adamw_8bit
lr_scheduler: cosine
learning_rate: 0.0002
train_on_inputs: false
group_by_length: false
bf16: auto
fp16:
tf32: true
gradient_checkpointing: true
gradient_checkpointing_kwargs:
  use_reentrant: false
early_stopping_patience:
resume_from_checkpoint:
local_rank:
logging_steps: 1
xformers_attention:
flash_attention: true
warmup_steps: 20
evals_per_epoch: 4
eval_table_size:
eval_max_new_tokens: 128
saves_per_epoch: 1
debug:
deepspeed:
weight_decay: 0.0
fsdp:
fsdp_config:
special_tokens:
  pad_token: "<|end_of_text|>"
)";

// mistral-qlora-orpo.yml (examples/mistral/) on a Llama, its dataset typed as Axolotl's RLHF docs
// type it (chat_template.argilla; the example's older orpo.chat_template no longer loads there).
const std::string kQloraOrpo = kModel + R"(load_in_8bit: false
load_in_4bit: true
strict: false
rl: orpo
orpo_alpha: 0.1
remove_unused_columns: false
chat_template: chatml
datasets:
  - path: ALPACA
    type: chat_template.argilla
dataset_prepared_path: last_run_prepared
val_set_size: 0.1
output_dir: ./mistral-qlora-orpo-out
adapter: qlora
lora_model_dir:
sequence_len: 4096
sample_packing: false
pad_to_sequence_len: true
lora_r: 32
lora_alpha: 16
lora_dropout: 0.05
lora_target_linear: true
lora_fan_in_fan_out:
lora_target_modules:
  - gate_proj
  - down_proj
  - up_proj
  - q_proj
  - v_proj
  - k_proj
  - o_proj
gradient_accumulation_steps: 4
micro_batch_size: 2
num_epochs: 1
optimizer: adamw_bnb_8bit
lr_scheduler: cosine
learning_rate: 0.0002
train_on_inputs: false
group_by_length: false
bf16: auto
fp16:
tf32: false
gradient_checkpointing: true
early_stopping_patience:
resume_from_checkpoint:
local_rank:
logging_steps: 1
xformers_attention:
flash_attention: true
loss_watchdog_threshold: 5.0
loss_watchdog_patience: 3
warmup_steps: 10
evals_per_epoch: 4
eval_table_size:
eval_max_new_tokens: 128
saves_per_epoch: 1
debug:
deepspeed:
weight_decay: 0.0
fsdp:
fsdp_config:
special_tokens:
)";

// lora-1b-deduplicate-dpo.yml: its DPO dataset listed twice, deduplicated.
const std::string kLora1bDeduplicateDpo = kModel + R"(load_in_8bit: true
load_in_4bit: false
strict: false
chat_template: llama3
rl: dpo
datasets:
  - path: ALPACA
    type: chat_template.default
    field_messages: conversation
    field_chosen: chosen
    field_rejected: rejected
    message_property_mappings:
      role: role
      content: content
    roles:
      system:
        - system
      user:
        - user
      assistant:
        - assistant
  - path: ALPACA
    type: chat_template.default
    field_messages: conversation
    field_chosen: chosen
    field_rejected: rejected
    message_property_mappings:
      role: role
      content: content
    roles:
      system:
        - system
      user:
        - user
      assistant:
        - assistant
dataset_exact_deduplication: true
dataset_prepared_path:
val_set_size: 0
output_dir: ./outputs/lora-out
sequence_len: 4096
sample_packing: false
pad_to_sequence_len: true
adapter: lora
lora_model_dir:
lora_r: 32
lora_alpha: 16
lora_dropout: 0.05
lora_target_linear: true
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
warmup_steps: 10
)";

}  // namespace

TEST_CASE("instruct-dpo-lora-8b: DPO with LoRA on an 8-bit base trains its chat_template.default pairs") {
  const TrainConfig c = parse_example(kInstructDpoLora8b);
  CHECK(c.rl == "dpo");
  CHECK(c.rl_beta == 0.1);  // TRL's default
  CHECK(c.data.datasets[0].field_messages == "conversation");
  CHECK(c.attention == AttentionKind::flash);  // a pair's row needs a document mask
  // Its rows, as argilla's and Intel's DPO sets give them: a conversation, then two responses.
  std::string rows;
  for (int i = 0; i < 12; i++)
    rows += R"({"conversation": [{"role": "user", "content": "What is )" + std::to_string(i) + R"( + 1?"}], )"
            R"("chosen": {"role": "assistant", "content": ")" + std::to_string(i + 1) + R"("}, )"
            R"("rejected": {"role": "assistant", "content": "no idea"}})" "\n";
  CHECK(train_2_steps(kInstructDpoLora8b, "dpo_example", rows).find("rewards/margins") != std::string::npos);
}

TEST_CASE("qlora-1b-kto: KTO with QLoRA trains its llama3.ultra rows") {
  const TrainConfig c = parse_example(kQlora1bKto);
  CHECK(c.rl == "kto");
  CHECK(c.rl_beta == 0.5);
  CHECK(c.kto_desirable_weight == 0.2);
  CHECK(c.kto_undesirable_weight == 1.0);  // TRL's default
  CHECK(c.load_in_4bit);
  // Its rows, as argilla's ultrafeedback KTO set gives them: a prompt, one completion, a label.
  std::string rows;
  for (int i = 0; i < 12; i++)
    rows += R"({"prompt": "What is )" + std::to_string(i) + R"( + 1?", "completion": ")" +
            (i % 3 ? std::to_string(i + 1) : std::string("no idea")) + R"(", "label": )" + (i % 3 ? "true" : "false") + "}\n";
  CHECK(train_2_steps(kQlora1bKto, "kto_example", rows).find("| kl ") != std::string::npos);
}

TEST_CASE("the other preference trainers stop at rl:, before their dataset types or optimizers") {
  CHECK(error_of(replaced(kInstructDpoLora8b, "rl: dpo", "rl: grpo")).find("rl: grpo is not built") != std::string::npos);
  check_refused(replaced(kInstructDpoLora8b, "rl: dpo", "rl: gdpo"), "rl");
}

TEST_CASE("mistral-qlora-orpo: ORPO with QLoRA trains its chat_template.argilla rows") {
  const TrainConfig c = parse_example(kQloraOrpo);
  CHECK(c.rl == "orpo");
  CHECK(c.rl_beta == 0.1);  // orpo_alpha
  CHECK(c.adapter == "qlora");
  // Its rows, as argilla's ultrafeedback set gives them: a prompt, then two conversations.
  std::string rows;
  for (int i = 0; i < 24; i++) {
    const std::string q = "What is " + std::to_string(i) + " + 1?";
    rows += R"({"prompt": ")" + q + R"(", "chosen": [{"role": "user", "content": ")" + q +
            R"("}, {"role": "assistant", "content": ")" + std::to_string(i + 1) + R"("}], "rejected": [{"role": "user", )"
            R"("content": ")" + q + R"("}, {"role": "assistant", "content": "no idea"}]})" "\n";
  }
  const std::string out = train_2_steps(kQloraOrpo, "orpo_example", rows);
  CHECK(out.find("log_odds_chosen") != std::string::npos);
  CHECK(out.find("nll_loss") != std::string::npos);
}

TEST_CASE("lora-1b-deduplicate-dpo: its dataset listed twice trains each pair once") {
  CHECK(parse_example(kLora1bDeduplicateDpo).data.exact_deduplication);
  std::string rows;
  for (int i = 0; i < 12; i++)
    rows += R"({"conversation": [{"role": "user", "content": "What is )" + std::to_string(i) + R"( + 1?"}], )"
            R"("chosen": {"role": "assistant", "content": ")" + std::to_string(i + 1) + R"("}, )"
            R"("rejected": {"role": "assistant", "content": "no idea"}})" "\n";
  const std::string out = train_2_steps(kLora1bDeduplicateDpo, "dedup_dpo", rows);
  CHECK(out.find("dataset_exact_deduplication: 12 of 24 pairs kept") != std::string::npos);
}
