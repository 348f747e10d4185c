// defines: config_to_yaml (a resolved TrainConfig -> YAML that parse_config reads back exactly)
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "train/config.h"

namespace llm {
namespace {

// The shortest text that reads back as exactly `v` (so a saved config re-parses bit for bit,
// while 0.1 still prints as 0.1 rather than %.17g's 0.10000000000000001).
template <typename Float>
std::string shortest(Float v) {
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {  // 500000, not %g's 5e+05
    std::snprintf(buf, sizeof buf, "%.0f", static_cast<double>(v));
    return buf;
  }
  for (int precision = 1; precision <= 17; precision++) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(v));
    if (static_cast<Float>(std::strtod(buf, nullptr)) == v) break;
  }
  return buf;
}
std::string num(double v) { return shortest(v); }
std::string num(float v) { return shortest(v); }
std::string num(int64_t v) { return std::to_string(v); }
std::string num(int v) { return std::to_string(v); }

// A string as YAML: plain when it cannot be misread, else double-quoted; "" is null (unset).
std::string yaml_string(const std::string& s) {
  bool plain = !s.empty() && s[0] != '-' && s != "null" && s != "Null" && s != "NULL";
  for (char ch : s)
    plain = plain && (std::isalnum(static_cast<unsigned char>(ch)) ||
                      std::string_view("_./+-").find(ch) != std::string_view::npos);
  if (s.empty() || plain) return s;
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += std::string("\\") + ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(ch));
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace

std::string config_to_yaml(const TrainConfig& c) {
  std::string y = "# llm_train config, resolved: the preset's HF fields and datasets spelled out\n";
  auto key = [&y](const std::string& name, const std::string& value) {
    y += name + ":" + (value.empty() ? "" : " " + value) + "\n";
  };
  auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
  // -1 means unset for these; YAML null reads back as unset.
  auto opt = [](auto v) { return v < 0 ? std::string() : num(v); };
  const LlamaConfig& m = c.model;
  const RopeConfig& r = m.rope;

  y += "\n# Model\n";
  key("base_model", yaml_string(c.base_model));
  key("hidden_size", num(m.hidden_size));
  key("intermediate_size", num(m.intermediate_size));
  key("num_hidden_layers", num(m.num_hidden_layers));
  key("num_attention_heads", num(m.num_attention_heads));
  key("num_key_value_heads", num(m.num_key_value_heads));
  key("vocab_size", num(m.vocab_size));
  key("max_position_embeddings", num(m.max_position_embeddings));
  key("rope_theta", num(r.theta));
  const std::string scaling = "{rope_type: llama3, factor: " + num(r.factor) +
                              ", low_freq_factor: " + num(r.low_freq_factor) +
                              ", high_freq_factor: " + num(r.high_freq_factor) +
                              ", original_max_position_embeddings: " +
                              num(r.original_max_position_embeddings) + "}";
  key("rope_scaling", r.factor == 0.0f ? "null" : scaling);
  key("rms_norm_eps", num(m.rms_norm_eps));
  key("tie_word_embeddings", flag(m.tie_word_embeddings));
  key("initializer_range", num(m.initializer_range));
  key("tokenizer_config", yaml_string(c.tokenizer_config));

  y += "\n# Data\ndatasets:\n";
  for (const DatasetSpec& d : c.data.datasets)
    y += "  - path: " + yaml_string(d.path) + "\n    type: " + yaml_string(d.type) + "\n";
  key("dataset_prepared_path", yaml_string(c.data.dataset_prepared_path));
  key("val_set_size", num(c.data.val_set_size));
  key("sample_packing", flag(c.data.sample_packing));

  y += "\n# Training\n";
  key("sequence_len", num(c.data.sequence_len));
  key("micro_batch_size", num(c.micro_batch_size));
  key("gradient_accumulation_steps", num(c.gradient_accumulation_steps));
  key("num_epochs", num(c.num_epochs));
  key("max_steps", opt(c.max_steps));
  key("learning_rate", num(c.learning_rate));
  key("lr_scheduler", yaml_string(c.lr_scheduler));
  key("warmup_steps", opt(c.warmup_steps));
  key("warmup_ratio", opt(c.warmup_ratio));
  key("cosine_min_lr_ratio", num(c.cosine_min_lr_ratio));
  key("optimizer", yaml_string(c.optimizer));
  key("adam_beta1", num(c.adam_beta1));
  key("adam_beta2", num(c.adam_beta2));
  key("adam_epsilon", num(c.adam_epsilon));
  key("weight_decay", num(c.weight_decay));
  key("max_grad_norm", num(c.max_grad_norm));
  key("seed", std::to_string(c.seed));
  key("bf16", yaml_string(c.bf16));
  key("tf32", flag(c.tf32));
  key("device", yaml_string(c.device));

  y += "\n# Evaluation and early stopping\n";
  key("eval_steps", opt(c.eval_steps));
  key("evals_per_epoch", opt(c.evals_per_epoch));
  key("early_stopping_patience", opt(c.early_stopping_patience));
  key("early_stopping_threshold", num(c.early_stopping_threshold));

  y += "\n# Checkpoints and logging\n";
  key("output_dir", yaml_string(c.output_dir));
  key("save_steps", opt(c.save_steps));
  key("saves_per_epoch", opt(c.saves_per_epoch));
  key("save_total_limit", num(c.save_total_limit));
  key("resume_from_checkpoint", yaml_string(c.resume_from_checkpoint));
  key("auto_resume_from_checkpoints", flag(c.auto_resume_from_checkpoints));
  key("logging_steps", opt(c.logging_steps));

  y += "\n# Optimisations\n";
  key("gradient_checkpointing", flag(c.gradient_checkpointing));
  key("gradient_checkpointing_kwargs",
      "{every_n_layers: " + num(c.gradient_checkpointing_every_n_layers) + "}");
  key("flash_attention", flag(c.flash_attention));
  key("xformers_attention", flag(c.xformers_attention));
  key("s2_attention", flag(c.s2_attention));
  key("sdp_attention", flag(c.sdp_attention));
  key("s2_group_size_ratio", num(c.s2_group_size_ratio));
  key("local_rank", opt(c.local_rank));
  key("ddp_bucket_cap_mb", num(c.ddp_bucket_cap_mb));
  key("zero_stage", num(c.zero_stage));
  return y;
}

}  // namespace llm
