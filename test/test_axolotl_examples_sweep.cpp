// Look-alikes of the Axolotl Llama 3 examples that a run of all of them exposed (fft-8b-adopt.yml,
// lora-1b-kernels.yml, lora-1b-ray.yml, diffusion-3.2-1b-sft.yaml and diffusion/sft-1b.yaml,
// qlora-torchao.yaml, lora-1b-deduplicate-sft.yml, lora-1b-sample-packing-sequentially.yml,
// 3b-qat-mxfp4.yaml, fft-8b-liger-fsdp.yaml) and the data keys they name (exact deduplication,
// sequential packing, group_by_length), with their keys and values but a small model and the
// local alpaca sample (test/axolotl_example.h): each trains what its keys ask for, or stops in
// one line naming the key that is not built. The preference examples: test_axolotl_examples_rl.
#include <numeric>

#include "io/dataset.h"
#include "test/axolotl_example.h"

using namespace llm;
using namespace llm::testing;

namespace {

// fft-8b-adopt.yml: full fine-tuning with Axolotl's ADOPT optimizer, packed rows.
const std::string kFft8bAdopt = kModel + R"(load_in_8bit: false
load_in_4bit: false
strict: false
datasets:
  - path: ALPACA
    type: alpaca
dataset_prepared_path: last_run_prepared
val_set_size: 0.05
output_dir: ./outputs/out
sequence_len: 8192
sample_packing: true
pad_to_sequence_len: true
wandb_project:
gradient_accumulation_steps: 8
micro_batch_size: 1
num_epochs: 1
optimizer: adopt_adamw
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
early_stopping_patience:
resume_from_checkpoint:
logging_steps: 1
xformers_attention:
flash_attention: true
warmup_steps: 100
evals_per_epoch: 2
eval_table_size:
saves_per_epoch: 1
debug:
deepspeed:
weight_decay: 0.0
fsdp:
fsdp_config:
special_tokens:
  pad_token: <|end_of_text|>
)";

// lora-1b-kernels.yml: LoRA with Axolotl's Triton LoRA kernels switched on (and no dropout).
const std::string kLora1bKernels = kModel + R"(datasets:
  - path: ALPACA
    type: alpaca
dataset_prepared_path: last_run_prepared
val_set_size: 0.1
output_dir: ./outputs/lora-out
adapter: lora
lora_model_dir:
sequence_len: 2048
sample_packing: true
pad_to_sequence_len: true
lora_r: 16
lora_alpha: 32
lora_target_modules:
  - gate_proj
  - down_proj
  - up_proj
  - q_proj
  - v_proj
  - k_proj
  - o_proj
lora_mlp_kernel: true
lora_qkv_kernel: true
lora_o_kernel: true
gradient_accumulation_steps: 2
micro_batch_size: 2
num_epochs: 1
optimizer: adamw_8bit
lr_scheduler: cosine
learning_rate: 0.0002
bf16: auto
tf32: false
gradient_checkpointing: true
resume_from_checkpoint:
logging_steps: 1
flash_attention: true
loss_watchdog_threshold: 5.0
loss_watchdog_patience: 3
warmup_steps: 10
evals_per_epoch: 4
saves_per_epoch: 1
weight_decay: 0.0
special_tokens:
  pad_token: "<|end_of_text|>"
)";

// diffusion-3.2-1b-sft.yaml: the diffusion plugin's settings as top-level keys, no `diffusion:`.
const std::string kDiffusionFields = R"(noise_schedule: "linear"
min_mask_ratio: 0.1
max_mask_ratio: 0.9
num_diffusion_steps: 128
eps: 1e-3
importance_weighting: true
mask_token_id: 128002
)";
const std::string kDiffusionSft = kModel + R"(datasets:
  - path: ALPACA
    type: alpaca
val_set_size: 0.05
plugins:
  - diffusion.DiffusionPlugin
)" + kDiffusionFields + R"(output_dir: ./outputs/model-out
dataset_prepared_path:
sequence_len: 512
gradient_accumulation_steps: 4
micro_batch_size: 4
num_epochs: 1
optimizer: adamw_8bit
learning_rate: 1e-5
flash_attention: true
)";

// qlora-torchao.yaml: `adapter: lora` that torchao's int4 base turns into QLoRA.
const std::string kQloraTorchao = kModel + R"(model_type: AutoModelForCausalLM
adapter: lora
peft:
  backend: torchao
  weight_dtype: int4
datasets:
  - path: ALPACA
    type: alpaca
dataset_prepared_path:
val_set_size: 0
output_dir: ./outputs/qlora-torchao-out
sequence_len: 4096
sample_packing: true
lora_r: 32
lora_alpha: 16
lora_dropout: 0.05
lora_target_linear: true
optimizer: adamw_torch_fused
flash_attention: true
)";

}  // namespace

TEST_CASE("fft-8b-adopt: ADOPT with its own defaults, as Axolotl passes them, and trains") {
  const TrainConfig c = parse_example(kFft8bAdopt);
  CHECK(c.optimizer == "adopt_adamw");
  // Axolotl hands ADOPT the Adam betas only when both are given, and eps only when given.
  CHECK(c.adam_beta1 == 0.9);
  CHECK(c.adam_beta2 == 0.9999);
  CHECK(c.adam_epsilon == 1e-6);
  const TrainConfig given = parse_example(kFft8bAdopt + "adam_beta1: 0.8\nadam_beta2: 0.95\nadam_epsilon: 1e-7\n");
  CHECK(given.adam_beta1 == 0.8);
  CHECK(given.adam_beta2 == 0.95);
  CHECK(given.adam_epsilon == 1e-7);
  CHECK(parse_example(kFft8bAdopt + "adam_beta2: 0.95\n").adam_beta2 == 0.9999);
  // ZeRO's sharded optimizer is AdamW's only: ADOPT under FSDP stops in one line.
  const std::string e = error_of(replaced(kFft8bAdopt, "fsdp:\n", "fsdp: [full_shard, auto_wrap]\n"));
  CHECK_MESSAGE(e.find("optimizer: expected an optimizer ZeRO stage 3 shards") != std::string::npos, e);
  CHECK(e.find('\n') == std::string::npos);

  const std::string out = train_2_steps(kFft8bAdopt, "axolotl_adopt");
  CHECK_MESSAGE(out.find("optimizer: ADOPT (f32 moments) | ADOPT state") != std::string::npos, out);
}

TEST_CASE("lora-1b-kernels: Axolotl's LoRA kernel switches are accepted as speed only and said so") {
  const TrainConfig c = parse_example(kLora1bKernels);
  CHECK(c.speed_only_keys == std::vector<std::string>{"lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel"});
  CHECK(!has(c.unknown_keys, "lora_mlp_kernel"));
  CHECK(c.lora.dropout == 0.0f);  // the example leaves dropout out, as the kernels want
  CHECK(parse_example(replaced(kLora1bKernels, "lora_o_kernel: true", "lora_o_kernel: false")).speed_only_keys.size() == 2);
  const std::string out = train_2_steps(kLora1bKernels, "axolotl_kernels");
  CHECK_MESSAGE(out.find("lora_mlp_kernel, lora_qkv_kernel, lora_o_kernel: Axolotl's fused kernels, speed only") !=
                    std::string::npos, out);
}

TEST_CASE("lora-1b-ray: Ray's 4 workers are 4 data-parallel ranks; one rank stops in one line") {
  const std::string ray = kLora1bKernels + "use_ray: true\nray_num_workers: 4\n";
  const TrainConfig c = parse_example(ray);
  CHECK(c.use_ray);
  CHECK(c.ray_num_workers == 4);
  Workspace ws("axolotl_ray");
  const std::string config = (ws.dir / "example.yml").string();
  write_file(config, localised(ray, kAlpaca, ws.dir));
  Run r = run_train(config + " --max_steps 2 --special_tokens '{}'");
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.output.find("ray_num_workers: expected the number of ranks mpirun started, 1, got 4 (Ray is not "
                              "used here: start them with mpirun -np 4)") != std::string::npos, r.output);
  CHECK(r.output.find("step 1/") == std::string::npos);
}

TEST_CASE("fft-8b-liger-fsdp: the Liger plugin and its switches are speed only; other plugins are refused") {
  const TrainConfig c = parse_example(kFft8bAdopt + R"(plugins:
  - axolotl.integrations.liger.LigerPlugin
liger_rope: true
liger_rms_norm: true
liger_glu_activation: true
liger_fused_linear_cross_entropy: true
)");
  CHECK(c.speed_only_keys.size() == 4);
  CHECK(has(c.unknown_keys, "plugins"));  // accepted, and listed as unused: no plugin is loaded
  // Knowledge distillation's plugin turns its keys into another loss; without the refusal they
  // would be ignored and plain SFT would run.
  const std::string kd = kFft8bAdopt + "plugins:\n  - axolotl.integrations.kd.KDPlugin\nkd_ce_alpha: 0.1\n";
  check_refused(kd, "plugins");
  CHECK(error_of(kd).find("kd.KDPlugin changes what is trained") != std::string::npos);
}

// diffusion-3.2-1b-sft.yaml (the plugin's fields as top-level keys) and diffusion/sft-1b.yaml (its
// `diffusion:` map, packed rows, sdp_attention): each trains diffusion (test_diffusion checks the
// objective), its mask_token_id 128002 past the plain tokens, so <|diffusion_mask|> is added.
TEST_CASE("diffusion examples: both spellings of the DiffusionPlugin's settings train as diffusion") {
  const TrainConfig older = parse_example(kDiffusionSft);
  CHECK(older.diffusion.on);
  CHECK(older.diffusion.mask_token_id == 128002);
  CHECK(older.diffusion.eps == 1e-3);
  CHECK_FALSE(has(older.unknown_keys, "plugins"));
  std::string indented;  // the same fields in the plugin's map, as diffusion/sft-1b.yaml gives them
  for (size_t at = 0; at < kDiffusionFields.size(); at = kDiffusionFields.find('\n', at) + 1)
    indented += "  " + kDiffusionFields.substr(at, kDiffusionFields.find('\n', at) + 1 - at);
  const std::string nested = replaced(replaced(kDiffusionSft, kDiffusionFields,
                                               "diffusion:\n" + indented + "  generate_samples: true\n  generation_interval: 250\n"),
                                      "flash_attention: true\n", "sample_packing: true\neval_sample_packing: true\nwarmup_ratio: 0.1\n"
                                  "sdp_attention: true\ngradient_checkpointing: true\n");
  DiffusionSettings from_map = parse_example(nested).diffusion;
  CHECK(from_map.generation_interval == 250);  // the map's own, as sft-1b.yaml gives it
  from_map.generation_interval = older.diffusion.generation_interval;
  CHECK(from_map == older.diffusion);
  // The local sample's few rows pack into 2 bins: one a micro-batch.
  for (const std::string& yaml : {kDiffusionSft, replaced(nested, "micro_batch_size: 4", "micro_batch_size: 1")}) {
    const std::string out = train_2_steps(yaml, "axolotl_diffusion");
    CHECK_MESSAGE(out.find("diffusion: mask token <|diffusion_mask|> (id 259, added)") != std::string::npos, out);
  }
  CHECK(error_of(replaced(nested, "  max_mask_ratio: 0.9", "  max_mask_ratio: 0.05")).find(
            "diffusion.max_mask_ratio: expected max_mask_ratio >= min_mask_ratio 0.1, got 0.05") != std::string::npos);
}

// 3b-qat-mxfp4.yaml: its qat (MX on inputs and weights) trains with its optimizer, torchao's 8-bit
// AdamW, and its activation_offloading; and with torchao's 4-bit AdamW and Axolotl's ao_adamw_fp8,
// as users' configs ask.
TEST_CASE("3b-qat-mxfp4: MX fake quantisation of every linear's inputs and weights under torchao's 8-bit AdamW") {
  const std::string yaml = replaced(kFft8bAdopt, "optimizer: adopt_adamw", "optimizer: adamw_torch_8bit") +
                           "activation_offloading: true\nqat:\n  activation_dtype: mxfp4\n  weight_dtype: mxfp4\n"
                           "  group_size: 32\n";
  const TrainConfig c = parse_example(yaml);
  CHECK(c.qat == QatScheme{QatScheme::Input::mxfp4, QatScheme::Weight::mxfp4, 32});
  CHECK(c.gradient_checkpointing_offload);
  const std::string out = train_2_steps(yaml, "axolotl_qat_mxfp4");
  CHECK_MESSAGE(out.find("compute on mxfp4 inputs (blocks of 32) and mxfp4 weights") != std::string::npos, out);
  CHECK_MESSAGE(out.find("optimizer: torchao AdamW8bit") != std::string::npos, out);
  const std::string four = train_2_steps(replaced(yaml, "optimizer: adamw_torch_8bit", "optimizer: adamw_torch_4bit"),
                                         "axolotl_qat_mxfp4_4bit");
  CHECK_MESSAGE(four.find("optimizer: torchao AdamW4bit") != std::string::npos, four);
  const std::string fp8 = train_2_steps(replaced(yaml, "optimizer: adamw_torch_8bit", "optimizer: ao_adamw_fp8"),
                                        "axolotl_qat_mxfp4_fp8");
  CHECK_MESSAGE(fp8.find("optimizer: torchao AdamWFp8") != std::string::npos, fp8);
}

TEST_CASE("dataset_exact_deduplication: each example once; a validation example never one that trains") {
  // Tokens 1 2 3 (x3, one in validation), 4 5 (x2), 4 5 with other labels, 6 (validation only, x2).
  ExampleSet data;
  for (const Example& e : std::vector<Example>{{{1, 2, 3}, {2, 3, -100}}, {{4, 5}, {5, -100}}, {{1, 2, 3}, {2, 3, -100}},
                                               {{4, 5}, {-100, -100}}, {{4, 5}, {5, -100}}, {{1, 2, 3}, {2, 3, -100}},
                                               {{6}, {-100}}, {{6}, {-100}}})
    data.add(e);
  ExampleSplit split{{0, 1, 2, 3, 4}, {5, 6, 7}};
  deduplicate_split(data, split);
  CHECK(split.train == std::vector<int64_t>{0, 1, 3});  // the first of each; equal tokens, other labels stay
  CHECK(split.val == std::vector<int64_t>{6});          // 5 equals training example 0; 7 equals 6
}

TEST_CASE("lora-1b-deduplicate-sft: its dataset listed twice trains each example once") {
  // The example's own key (exact_deduplication) and Axolotl's schema name both turn it on.
  const std::string twice = replaced(kLora1bKernels, "    type: alpaca\n",
                                     "    type: alpaca\n  - path: " + kAlpaca + "\n    type: alpaca\n");
  CHECK(parse_example(twice + "dataset_exact_deduplication: true\n").data.exact_deduplication);
  const std::string output = train_2_steps(twice + "exact_deduplication: true\n", "axolotl_dedup");
  const size_t at = output.find("dataset_exact_deduplication: ");
  REQUIRE_MESSAGE(at != std::string::npos, output);
  long kept = 0, examples = 0;
  REQUIRE(std::sscanf(output.c_str() + at, "dataset_exact_deduplication: %ld of %ld examples kept", &kept,
                      &examples) == 2);
  // Every example twice before; after, each once (then split by val_set_size, as Axolotl).
  CHECK(kept * 2 == examples);
}

TEST_CASE("sample_packing_sequentially: bins filled in the sampler's order, the curriculum's with curriculum_sampling") {
  // lora-1b-sample-packing-sequentially.yml (next fit itself: test_multipack): with
  // curriculum_sampling the loader packs the rows in their order, the curriculum's.
  const std::string sequential =
      replaced(kLora1bKernels, "sample_packing: true\n", "sample_packing: true\nsample_packing_sequentially: true\n");
  const TrainConfig c = parse_example(sequential + "curriculum_sampling: true\n");
  CHECK(c.data.sample_packing_sequentially);
  CHECK(row_order(c.data) == RowOrder::as_given);
  CHECK(row_order(parse_example(sequential).data) == RowOrder::shuffled_per_epoch);
  const std::string output = train_2_steps(sequential + "curriculum_sampling: true\n", "axolotl_sequential");
  CHECK(output.find("packed in order (next fit)") != std::string::npos);
  CHECK(output.find("warning: sample_packing_sequentially without curriculum_sampling") == std::string::npos);
}

TEST_CASE("group_by_length: each epoch's shuffle grouped as transformers' LengthGroupedSampler") {
  const std::vector<int64_t> lengths = {5, 9, 3, 9, 1, 7, 2, 8, 6, 4, 10, 3, 3, 7, 1, 2, 9, 5, 4, 6,
                                        8, 2, 7, 3, 5, 6, 1, 10, 4, 4, 2, 8, 9, 3, 5, 6, 7, 1, 2, 3};
  // transformers 5.24's get_length_grouped_indices(lengths, 2) with torch.randperm made the
  // identity: megabatches of 5 x 2, each longest first (ties in order), the longest (10, the
  // first of the two) swapped to the front.
  std::vector<int64_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  group_by_length(order, lengths, 2);
  CHECK(order == std::vector<int64_t>{10, 3,  7,  5,  8,  0,  9,  2,  6,  4,  1,  16, 13, 19, 17, 18, 11, 12, 15, 14,
                                      27, 20, 22, 25, 24, 28, 29, 23, 21, 26, 32, 31, 36, 35, 34, 33, 39, 30, 38, 37});
  std::vector<int64_t> few = {0, 1, 2, 3, 4, 5, 6};  // under 4 batches: megabatches of one batch
  group_by_length(few, lengths, 2);
  CHECK(few == std::vector<int64_t>{1, 0, 3, 2, 5, 4, 6});

  // As Axolotl: the Trainer's length grouping only without packing or curriculum_sampling.
  const std::string grouped = replaced(kLora1bKernels, "sample_packing: true\n", "group_by_length: true\n");
  CHECK(row_order(parse_example(grouped).data) == RowOrder::length_grouped);
  // Its one dataset keeps its order under curriculum_sampling (Axolotl's merge_datasets).
  CHECK(row_order(parse_example(grouped + "curriculum_sampling: true\n").data) == RowOrder::as_given);
  CHECK(row_order(parse_example(kLora1bKernels + "group_by_length: true\n").data) == RowOrder::shuffled_per_epoch);
  DataConfig pairs = parse_example(grouped).data;  // Axolotl's rl builder does not pass it on
  pairs.preference_pairs = true;
  CHECK(row_order(pairs) == RowOrder::shuffled_per_epoch);
  train_2_steps(grouped, "axolotl_group_by_length");
}

TEST_CASE("test_datasets: the eval set from files of its own, with val_set_size 0 as Axolotl requires") {
  const std::string with_test = replaced(kLora1bKernels, "val_set_size: 0.1\n",
                                         "val_set_size: 0\ntest_datasets:\n  - path: " + kAlpaca +
                                             "\n    type: alpaca\n    split: train[1:4]\n");
  const TrainConfig c = parse_example(with_test);
  REQUIRE(c.data.test_datasets.size() == 1);
  CHECK(c.data.test_datasets[0].split == "train[1:4]");
  CHECK(parse_config(config_to_yaml(c), "saved.yml").data.test_datasets[0].path == kAlpaca);
  CHECK(error_of(replaced(with_test, "val_set_size: 0\n", "val_set_size: 0.1\n")) ==
        "example.yml:12: val_set_size: expected 0 with test_datasets (they are the eval set), got 0.1");
  // Every training example trains (none held out); the test rows that fit sequence_len 256 (1 of
  // the 3) are the eval set, and evaluated.
  const std::string output =
      train_2_steps(replaced(with_test, "evals_per_epoch: 4\n", "eval_steps: 2\n"), "axolotl_test_datasets");
  // A test split none of whose rows fits is named as test_datasets, not datasets.
  Workspace ws("axolotl_test_datasets_long");
  const std::string config = (ws.dir / "example.yml").string();
  write_file(config, localised(replaced(with_test, "split: train[1:4]", "split: train[2:3]"), kAlpaca, ws.dir));
  const Run r = run_train(config + " --max_steps 2 --sequence_len 256 --special_tokens '{}'");
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.output.find("example.yml: test_datasets: no example fits sequence_len 256") != std::string::npos, r.output);
  // Its 3 training examples pack into 2 bins of micro_batch_size 2 x sequence_len 256 tokens.
  CHECK(output.find("rows: 2 train / 1 val (multipack (first fit, at most 200 examples a bin) into bins of 512") !=
        std::string::npos);
  CHECK(output.find("eval step 2 | eval_loss ") != std::string::npos);
}

TEST_CASE("keys that would change the data or the base's quantisation are refused in one line") {
  check_refused(kQloraTorchao, "peft");  // an int4 torchao base, not the f32 one LoRA would train on
  // fft-4b-fsdp-tp.yaml's device mesh: a tensor-parallel group shares its micro-batches.
  check_refused(kFft8bAdopt + "tensor_parallel_size: 2\n", "tensor_parallel_size");
  check_refused(kFft8bAdopt + "context_parallel_size: 4\n", "context_parallel_size");
  // llama3-8b-ringmaster-cp.yaml's spelling of the same.
  check_refused(kFft8bAdopt + "context_parallel:\n  size: 8\n  backend: auto\n", "context_parallel");
  CHECK(parse_example(kFft8bAdopt + "context_parallel: {size: 1}\n").optimizer == "adopt_adamw");
  CHECK(parse_example(kFft8bAdopt + "tensor_parallel_size: 1\n").optimizer == "adopt_adamw");
}
