// defines: unsupported_setting (Axolotl keys that change training and that llm_train does not
// build: a config using them stops at start-up, one line per key, instead of training something
// else in silence)
#include <cctype>
#include <optional>
#include <string>
#include <vector>

#include "train/config_fields.h"

namespace llm {
namespace {

// True when a value asks for something: not null, false, "", an empty list or an empty map.
bool is_set(const YAML::Node& n) {
  if (n.IsNull()) return false;
  if (n.IsSequence() || n.IsMap()) return n.size() > 0;
  std::string s = n.Scalar();
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return !(s.empty() || s == "false" || s == "no" || s == "off" || s == "0");
}

struct Unsupported {
  const char* key;
  const char* why;  // what llm_train does instead, or what to change
};

// Keys that, when set, would make Axolotl train differently from what llm_train would do.
// Keys that only affect logging, hub uploads or speed (wandb_*, hub_model_id, strict,
// torch_compile, liger_*, ...) are merely listed as unused.
const Unsupported kUnsupported[] = {
    {"gptq", "GPTQ base weights are not built"},
    {"fp16", "fp16 training is not offered: use bf16 (or f32)"},
    {"float16", "fp16 weights without mixed precision are not offered: use bf16 (or f32)"},
    {"relora_steps", "Axolotl's older ReLoRA key: relora: true with jagged_restart_steps"},
    {"enable_dft_channel_loss", "DFT's per-channel loss tracking needs Axolotl's channel_loss plugin, which is not built"},
    {"sequence_parallel_degree", "sequence parallelism is not built"},
    {"diffusion_lm", "Axolotl's native diffusion models are not built: a causal LM trains as one with "
                     "plugins: [axolotl.integrations.diffusion.DiffusionPlugin] and its diffusion: map"},
    {"lora_fan_in_fan_out", "Llama's linears are (out, in): fan-in-fan-out weights do not apply"},
    {"lora_target_parameters", "PEFT's LoRA on bare parameters (target_parameters, for MoE expert tensors) is not "
                               "built: name Llama's linears in lora_target_modules"},
    {"peft", "torchao-quantised bases (peft.backend, peft.weight_dtype) and LoftQ are not built: "
             "adapter: qlora with load_in_4bit (bitsandbytes NF4), or load_in_8bit"},
    // Axolotl 0.19's schema (the sweep of its keys that change training, not built here).
    {"trainer_cls", "a custom Python Trainer class cannot run here"},
    {"skip_prepare_dataset", "unprepared (raw) datasets are not built: rows are tokenized by their type"},
    {"accelerator_config", "Accelerate's batching options are not built: every rank takes micro-batches of its own"},
    {"sage_attention", "SageAttention (INT8 QK^T, lossy) is not built: flash_attention computes exact attention"},
    {"model_kwargs", "from_pretrained's keyword arguments are not read: give the model's settings as keys"},
    {"use_onebitllms", "onebitllms' 1.58-bit BitNet linears are not built: the linears train in bf16 or f32"},
};

// Axolotl's model_type: the transformers class it loads; a causal LM is what llm_train trains, and
// a sequence or token classifier with reward_model or process_reward_model (check_reward_models).
std::optional<std::string> unsupported_model_type(const YAML::Node& value) {
  if (!value.IsScalar() || !is_set(value)) return std::nullopt;
  if (value.Scalar() == "AutoModelForCausalLM" || value.Scalar() == "LlamaForCausalLM" ||
      is_classifier_class(value.Scalar()))
    return std::nullopt;
  return "model_type " + value.Scalar() + " is not built: a Llama causal LM (AutoModelForCausalLM or LlamaForCausalLM), "
         "or with reward_model or process_reward_model a sequence or token classifier (AutoModelFor...Classification)";
}

// Axolotl plugins that change only speed or memory, not what is trained (fused kernels and a
// chunked cross-entropy of the same loss); their switches are listed as unused. Any other plugin
// but Spectrum (diffusion, llmcompressor, knowledge distillation, ...) changes the training, and
// its keys (noise_schedule, mask_token_id, ...) would otherwise be ignored in silence.
const char* const kSpeedOnlyPlugins[] = {"LigerPlugin", "CutCrossEntropyPlugin"};
// Plugins whose config keys llm_train builds (Spectrum: unfrozen_parameters, train/config_spectrum.h;
// LLMCompressorPlugin, and its older name SFTPlugin: llmcompressor, train/constant_pruning.h;
// DFTPlugin: enable_dft_loss, engine/ops.h's TokenWeighting; DiffusionPlugin: diffusion, train/diffusion.h).
const char* const kBuiltPlugins[] = {"SpectrumPlugin", "LLMCompressorPlugin", "SFTPlugin", "DFTPlugin", "DiffusionPlugin"};

std::optional<std::string> unsupported_plugin(const YAML::Node& value) {
  std::vector<std::string> names;
  if (value.IsScalar()) names.push_back(value.Scalar());
  if (value.IsSequence())
    for (const YAML::Node& item : value) names.push_back(item.IsScalar() ? item.Scalar() : "?");
  for (const std::string& name : names) {
    const std::string last = name.substr(name.rfind('.') + 1);  // npos + 1 == 0: the whole name
    bool accepted = plugin_keys_built(last);
    for (const char* ok : kSpeedOnlyPlugins) accepted = accepted || last == ok;
    if (!accepted)
      return name + " changes what is trained and is not built (accepted: LigerPlugin and "
                    "CutCrossEntropyPlugin, which change only speed, SpectrumPlugin, LLMCompressorPlugin, DFTPlugin and "
                    "DiffusionPlugin)";
  }
  return std::nullopt;
}

// Axolotl's tensor and context parallelism split one micro-batch over a group of ranks; every
// rank here is data parallel, taking micro-batches of its own, so the global batch (and with it
// the steps) would differ. A size of 1 asks for nothing. Axolotl's newer spelling of context
// parallelism is a map, `context_parallel: {size: 8, backend: auto, ...}`.
std::optional<std::string> unsupported_parallel_size(const std::string& key, const YAML::Node& value) {
  if (key == "context_parallel" && value.IsMap()) return unsupported_parallel_size(key, value["size"]);
  if (!value.IsDefined() || !value.IsScalar() || value.Scalar() == "1" || !is_set(value)) return std::nullopt;
  return (key == "tensor_parallel_size" ? std::string("tensor") : std::string("context")) +
         " parallelism is not built: every rank is data parallel with micro-batches of its own, so the "
         "global batch would differ";
}

// rl: dpo, ipo, kto, orpo and simpo are built (train/preference_loss.h); the other trainers of
// Axolotl's rl are not.
std::optional<std::string> unsupported_rl(const YAML::Node& value) {
  if (!value.IsScalar() || !is_set(value)) return std::nullopt;
  for (const char* built : {"dpo", "ipo", "kto", "orpo", "simpo"})
    if (value.Scalar() == built) return std::nullopt;
  return "rl: " + value.Scalar() + " is not built (GRPO and the other online trainers): rl: dpo, ipo, kto, orpo or simpo";
}

// Axolotl's model_quantization_config: its bitsandbytes form ({backend: bnb, weight_dtype: nf4 or
// int8}) is load_in_4bit or load_in_8bit (the field table reads it); torchao, mxfp4 and fp8 bases
// are not built.
std::optional<std::string> unsupported_quantization(const YAML::Node& value) {
  if (!is_set(value) || (value.IsMap() && value["backend"] && value["backend"].IsScalar() &&
                         value["backend"].Scalar() == "bnb"))
    return std::nullopt;
  return "only bitsandbytes bases are built ({backend: bnb, weight_dtype: nf4 or int8}, or load_in_4bit / "
         "load_in_8bit): torchao, mxfp4 and fp8 quantised bases are not";
}

// Axolotl's qat: its integer, fp8 and mxfp4 schemes are built (train/config_qat.cpp reads them);
// nvfp4 and the embedding's fake quantisation are not.
std::optional<std::string> unsupported_qat(const YAML::Node& value) {
  if (!value.IsMap()) return std::nullopt;  // the field table names what it expects
  const YAML::Node weight = value["weight_dtype"];
  const std::string dtype = weight && weight.IsScalar() && !weight.IsNull() ? weight.Scalar() : "";
  if (dtype == "nvfp4")
    return "qat with weight_dtype nvfp4 is not built (Axolotl hands torchao 0.18 an NVFP4WeightOnlyConfig, which "
           "its QATConfig refuses)";
  if (value["quantize_embedding"] && is_set(value["quantize_embedding"]))
    return "qat's quantize_embedding (torchao's int4 embedding, fake-quantised through fp8) is not built";
  return std::nullopt;
}

// Axolotl 0.19 lists ao_adamw_4bit and ao_adamw_8bit among its own optimizers, but its builder
// has no branch for them and raises "Unhandled optimizer"; transformers' names reach the same
// torchao classes. Other unknown optimizers get the field table's list of those built.
std::optional<std::string> unsupported_optimizer(const YAML::Node& value) {
  if (!value.IsScalar()) return std::nullopt;
  for (const char* bits : {"4bit", "8bit"})
    if (value.Scalar() == std::string("ao_adamw_") + bits)
      return "optimizer: " + value.Scalar() + " (Axolotl 0.19 stops on it: 'Unhandled optimizer'); torchao's AdamW" +
             bits + " is optimizer: adamw_torch_" + bits;
  return std::nullopt;
}

}  // namespace

bool is_axolotl_key_not_built(const std::string& key) {
  for (const Unsupported& u : kUnsupported)
    if (key == u.key) return true;
  return false;
}

bool plugin_keys_built(const std::string& name) {
  for (const char* built : kBuiltPlugins)
    if (name == built) return true;
  return false;
}

std::optional<std::string> unsupported_setting(const std::string& key, const YAML::Node& value) {
  if (key == "plugins") return unsupported_plugin(value);
  if (key == "model_quantization_config") return unsupported_quantization(value);
  if (key == "rl") return unsupported_rl(value);
  if (key == "qat") return unsupported_qat(value);
  if (key == "optimizer") return unsupported_optimizer(value);
  if (key == "tensor_parallel_size" || key == "context_parallel_size" || key == "context_parallel")
    return unsupported_parallel_size(key, value);
  if (key == "model_type") return unsupported_model_type(value);
  for (const Unsupported& u : kUnsupported)
    if (key == u.key && is_set(value)) return std::string(u.why);
  return std::nullopt;
}

}  // namespace llm
