// defines: diffusion_rows (Axolotl's DiffusionPlugin's `diffusion:` map, train/diffusion.h),
// diffusion_field_names and check_diffusion
#include <limits>

#include "train/config_fields.h"

namespace llm {
namespace {

const char* const kExpected =
    "a map {eps, importance_weighting, mask_token_id, mask_token_str, noise_schedule, min_mask_ratio, "
    "max_mask_ratio, num_diffusion_steps, generate_samples, generation_interval, num_generation_samples, "
    "generation_steps, generation_temperature, generation_max_length}";

// Axolotl's DiffusionConfig. The loss reads eps, importance_weighting and the mask token, and the
// generation keys drive its sample generation; the noise schedule's keys are checked as its
// schema checks them but its training loss does not read them.
void read_diffusion(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  DiffusionSettings& d = ctx.config.diffusion;
  double min_ratio = 0.1, max_ratio = 0.9;
  Where max_at = w;
  for_fields(n, w, kExpected, [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    if (key == "eps") d.eps = read_double(v, wk, kUnit);
    else if (key == "importance_weighting") d.importance_weighting = read_bool(v, wk);
    else if (key == "mask_token_id") d.mask_token_id = read_int(v, wk, std::numeric_limits<int64_t>::min());
    else if (key == "mask_token_str") d.mask_token_str = read_string(v, wk);
    else if (key == "noise_schedule") read_choice(v, wk, {"linear", "cosine"});
    else if (key == "min_mask_ratio") min_ratio = read_double(v, wk, kUnit);
    else if (key == "max_mask_ratio") max_ratio = read_double(v, wk, kUnit), max_at = wk;
    else if (key == "num_diffusion_steps") read_int(v, wk, 1);
    else if (key == "from_causal_lm" && !read_bool(v, wk))  // the legacy plugin's translation sets it
      fail(wk, "true (Axolotl's native diffusion models are not built; a causal LM trains as one)", "false");
    else if (key == "from_causal_lm") return;
    else if (key == "generate_samples") d.generate_samples = read_bool(v, wk);
    else if (key == "generation_temperature") d.generation_temperature = read_double(v, wk, kNonNegative);
    else if (key == "generation_interval") d.generation_interval = read_int(v, wk, 1);
    else if (key == "num_generation_samples") d.num_generation_samples = read_int(v, wk, 1);
    else if (key == "generation_steps") d.generation_steps = read_int(v, wk, 1);
    else if (key == "generation_max_length") d.generation_max_length = read_int(v, wk, 1);
    else fail(wk, kExpected, "the key " + key);
  });
  if (min_ratio > max_ratio) fail(max_at, "max_mask_ratio >= min_mask_ratio " + num(min_ratio), num(max_ratio));
}

std::string write_diffusion(const TrainConfig& c) {
  const DiffusionSettings& d = c.diffusion;
  if (!d.on) return "";
  return "{eps: " + yaml_number(d.eps) + ", importance_weighting: " + (d.importance_weighting ? "true" : "false") +
         (d.mask_token_id >= 0 ? ", mask_token_id: " + std::to_string(d.mask_token_id) : "") +
         (d.mask_token_str.empty() ? "" : ", mask_token_str: " + yaml_string(d.mask_token_str)) +
         ", generate_samples: " + (d.generate_samples ? "true" : "false") +
         ", generation_interval: " + std::to_string(d.generation_interval) +
         ", num_generation_samples: " + std::to_string(d.num_generation_samples) +
         ", generation_steps: " + std::to_string(d.generation_steps) +
         ", generation_temperature: " + yaml_number(d.generation_temperature) +
         ", generation_max_length: " + std::to_string(d.generation_max_length) + "}";
}

}  // namespace

std::vector<ConfigField> diffusion_rows(const char* section) {
  return {{"diffusion", section, kExpected,
           "with plugins: [DiffusionPlugin], diffusion LM training as Axolotl's (LLaDA): masked tokens scored by a "
           "bidirectional model, each loss over its masking probability (train/diffusion.h)",
           read_diffusion, write_diffusion}};
}

// The older plugin's spelling: its fields as top-level keys.
const std::vector<std::string>& diffusion_field_names() {
  static const std::vector<std::string> names = {
      "eps", "importance_weighting", "mask_token_id", "mask_token_str", "noise_schedule", "min_mask_ratio",
      "max_mask_ratio", "num_diffusion_steps", "generate_samples", "generation_interval", "num_generation_samples",
      "generation_steps", "generation_temperature", "generation_max_length"};
  return names;
}

void check_diffusion(const TrainConfig& c, const Where& w) {
  if (!c.rl.empty()) fail(w, "no rl with the DiffusionPlugin (it trains a language model)", "rl: " + c.rl);
  if (c.attention == AttentionKind::s2)
    fail(w, "an attention other than s2_attention with the DiffusionPlugin (its attention is bidirectional)",
         "s2_attention: true");
}

}  // namespace llm
