// fp8 training (Axolotl's fp8: torchao's Float8Linear through accelerate; engine/fp8_math.h,
// engine/ops/fp8_linear.cpp): the casts against torchao 0.18's bit for bit, test_hf's two models
// converted by accelerate against ours (which linears, logits, loss, every gradient), a look-alike
// of Axolotl's 3b-fp8-fsdp2.yaml and the refusals. The trajectory against the Trainer on a
// converted model is test_hf_trajectory's.
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "io/safetensors.h"
#include "model/hf_checkpoint.h"
#include "model/hf_config.h"
#include "test/axolotl_example.h"
#include "test/reference_inputs.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {
const std::string kDir = LLM_FP8_REFERENCE_DIR;
}  // namespace

// random values; widths from 1e-6 to 1e3 in one tensor (subnormals after scaling); exact ties
// between codes, zeros and the scale's own maximum.
TEST_CASE("the fp8 casts: torchao's e4m3 and e5m2 tensorwise casts read back, bit for bit") {
  const SafetensorsFile casts(kDir + "/casts.safetensors");
  for (const std::string name : {"random", "wide", "ties"}) {
    const Tensor x = casts.read("x." + name, DType::f32);
    for (const auto& [format, key] : {std::pair{Fp8Format::e4m3, "e4m3"}, std::pair{Fp8Format::e5m2, "e5m2"}}) {
      CAPTURE(name);
      CAPTURE(key);
      Tensor out = Tensor::empty(x.shape(), DType::f32, Device::cpu());
      backend(Device::cpu()).fake_quant_fp8(x, format, out);
      CHECK(max_abs_diff(out, casts.read(std::string(key) + "." + name, DType::f32)) == 0.0f);
    }
  }
}

// Both sides f32 in different summation orders (the casts' inputs differ in their last bits, so a
// value on a tie between codes may round the other way): test_hf's tolerance holds here.
TEST_CASE("fp8 forward and backward match transformers + accelerate + torchao: which linears, logits, loss, gradients") {
  for (const std::string name : {"untied_gqa2", "tied_gqa4"}) {
    CAPTURE(name);
    const std::string dir = LLM_HF_REFERENCE_DIR "/" + name;
    const nlohmann::json want_json = nlohmann::json::parse(read_file(kDir + "/" + name + ".json"));
    const SafetensorsFile want(kDir + "/" + name + ".safetensors");
    LlamaModel model(read_hf_config(dir + "/config.json"), Device::cpu(), 0);
    load_hf_weights(model, dir);
    std::vector<std::string> converted;
    for (int64_t layer = 0; layer < model.config().num_hidden_layers; layer++)
      for (int k = 0; k < kNumLinear; k++)
        if (model.fp8_linear_at(layer, k)) converted.push_back(linear_module_name(layer, k));
    std::sort(converted.begin(), converted.end());
    CHECK(converted == want_json.at("converted").get<std::vector<std::string>>());
    ForwardOptions fp8;
    fp8.fp8 = true;
    check_against_reference(model, dir, want, want_json.at("loss").get<double>(), fp8);
  }
}

// examples/llama-3/3b-fp8-fsdp2.yaml's keys on the small model and the alpaca sample.
TEST_CASE("3b-fp8-fsdp2: Axolotl's fp8 example trains (FSDP 2, packed rows, torch_compile, Liger's switches)") {
  const std::string example = kModel + R"(load_in_8bit: false
load_in_4bit: false
strict: false
plugins:
  - axolotl.integrations.liger.LigerPlugin
liger_rope: true
liger_rms_norm: true
liger_glu_activation: true
liger_layer_norm: true
liger_fused_linear_cross_entropy: true
datasets:
  - path: ALPACA
    type: alpaca
output_dir: ./outputs/fp8_out/
dataset_prepared_path: ./outputs/fp8_out/prepared
sample_packing: true
pad_to_sequence_len: true
sequence_len: 512
flex_attention: true
flex_attn_compile_kwargs:
  dynamic: false
  mode: max-autotune-no-cudagraphs
torch_compile: true
gradient_accumulation_steps: 1
micro_batch_size: 1
num_epochs: 1
optimizer: adamw_torch_fused
cosine_constant_lr_ratio: 0
cosine_min_lr_ratio: 1.0
learning_rate: 2e-5
save_only_model: true
fp8: true
fp8_enable_fsdp_float8_all_gather: true
resume_from_checkpoint:
logging_steps: 1
evals_per_epoch: 1
saves_per_epoch: 1
warmup_steps: 10
weight_decay: 0.0
fsdp_config:
  fsdp_version: 2
  fsdp_offload_params: false
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer
  fsdp_state_dict_type: FULL_STATE_DICT
  fsdp_sharding_strategy: FULL_SHARD
  fsdp_reshard_after_forward: true
  fsdp_activation_checkpointing: true
special_tokens:
  pad_token: <|end_of_text|>
)";
  const TrainConfig c = parse_example(example);
  CHECK(c.fp8);
  CHECK(c.zero_stage == 3);
  const std::string out = train_2_steps(example, "axolotl_fp8");
  CHECK_MESSAGE(out.find("fp8: 13 of 14 block linears on e4m3 inputs and weights") != std::string::npos, out);
}

TEST_CASE("fp8: adapters and qat beside it are refused in one line") {
  Workspace ws("fp8_refused");
  check_refused_run(ws, "max_steps: 1\nfp8: true\nadapter: lora\nlora_target_linear: true\n", "expected no adapter with fp8");
  check_refused_run(ws, "max_steps: 1\nfp8: true\nqat: {activation_dtype: int8, weight_dtype: int4, group_size: 32}\n",
                    "fp8: expected either fp8 or qat, got both");
}
