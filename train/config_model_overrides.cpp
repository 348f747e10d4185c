// defines: model_config_overrides (Axolotl's model_config: HF config.json fields set over
// base_model's; the fields llm_train models are read as the same keys at the top level)
#include "train/config_fields.h"

namespace llm {
namespace {

// The Llama config.json fields llm_train reads (the Model rows of the field table).
const char* const kModelFields[] = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                    "num_key_value_heads", "vocab_size", "max_position_embeddings", "rope_theta",
                                    "rope_scaling", "rms_norm_eps", "tie_word_embeddings", "initializer_range",
                                    "pad_token_id"};

// Llama fields whose only built value is the one that leaves the model as llm_train computes it.
struct FixedField {
  const char* key;
  std::vector<std::string> values;  // YAML spellings of that value
  const char* why;
};
const FixedField kFixedFields[] = {
    {"attention_dropout", {"0", "0.0"}, "attention dropout is not built"},
    {"pretraining_tp", {"1"}, "pretraining_tp above 1 is not built"},
    {"mlp_bias", {"false", "False"}, "biases in the MLP are not built (Llama has none)"},
    {"attention_bias", {"false", "False"}, "biases in attention are not built (Llama has none)"},
    {"hidden_act", {"silu"}, "activations other than SwiGLU's silu are not built"},
};

}  // namespace

std::vector<ModelOverride> model_config_overrides(const YAML::Node& n, const Where& w) {
  std::vector<ModelOverride> out;
  for_fields(n, w, "a map of HF config.json fields", [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    for (const char* field : kModelFields)
      if (key == field) {
        out.push_back({key, v, wk});
        return;
      }
    // Generation's KV cache and its BOS / EOS ids (the tokenizer's are the data's): nothing to train.
    if (key == "use_cache" || key == "bos_token_id" || key == "eos_token_id") return;
    for (const FixedField& f : kFixedFields)
      if (key == f.key) {
        const std::string text = v.IsScalar() ? v.Scalar() : describe(v);
        if (std::find(f.values.begin(), f.values.end(), text) == f.values.end()) fail(wk, f.values[0] + " (" + f.why + ")", text);
        return;
      }
    fail(wk, "one of the Llama config fields llm_train models (" + join(std::vector<std::string>(std::begin(kModelFields), std::end(kModelFields))) + ")",
         "'" + key + "'");
  });
  return out;
}

}  // namespace llm
