// PEFT's adapter directory, as PeftModel.save_pretrained writes it and from_pretrained reads it:
// adapter_config.json (peft_type LORA, r, lora_alpha, target_modules, ...) and
// adapter_model.safetensors with PEFT's tensor names, "base_model.model." + our names:
// base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight (r, in), ...lora_B.weight
// (out, r), base_model.model.model.embed_tokens.weight for a module trained whole, and
// ...embed_tokens.token_adapter.trainable_tokens_delta (n, C) for trainable token rows. Also the
// merged export: base + scale * B A (and the trained rows in their tables) as a plain HF model
// (merge_lora).
#pragma once
#include <functional>
#include <string>

#include "model/hf_config.h"
#include "model/llama.h"

namespace llm {

constexpr const char* kPeftConfigFile = "adapter_config.json";
constexpr const char* kPeftWeightsFile = "adapter_model.safetensors";

// Writes dir/adapter_config.json and dir/adapter_model.safetensors (tensors in `dtype`) of a
// model with LoRA adapters; base_model goes into base_model_name_or_path.
void save_peft_adapter(LlamaModel& model, const std::string& dir, const std::string& base_model,
                       DType dtype);

// Loads a PEFT LoRA directory into a model whose adapters are already added (add_lora): its
// adapter_config.json must agree with the model's r, lora_alpha and target modules, and its
// tensors must be exactly the model's trainable ones, by name and shape. A disagreement is a
// UserError naming the file and the key or tensor.
void load_peft_adapter(LlamaModel& model, const std::string& dir);

// Hands each base weight's value, as start-up made it, to a sink in base_weights()' order
// (read_hf_weights or LlamaModel::draw_weights again).
using BaseWeightStream = std::function<void(const WeightSink& sink)>;

// Writes the model with every adapter merged into its weight as an HF model directory, one merged
// weight made at a time. With `base`, each quantised block linear merges onto the value `base`
// hands over instead of its dequantised codes: Axolotl's merge of an 8-bit run reloads the base
// unquantised.
void save_merged_model(LlamaModel& model, const std::string& dir, DType dtype, HfTokenIds ids,
                       const BaseWeightStream& base = {});

}  // namespace llm
