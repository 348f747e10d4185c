// defines: read_qat, write_qat, check_qat (Axolotl's `qat:` map: quantisation-aware training with
// torchao's fake quantisation, int8 activations per token and int4 weights per group)
#include <string>

#include "train/config_fields.h"

namespace llm {

namespace {
const char* const kExpected = "a map {activation_dtype: int8, weight_dtype: int4, group_size, quantize_embedding: false, "
                              "fake_quant_after_n_steps}";
}  // namespace

// Axolotl builds torchao's int8-activation, int4-weight scheme from these two dtypes; its other
// schemes and the embedding's fake quantisation stop the run before any key is read
// (train/config_unsupported.cpp), so only that scheme reaches here.
void read_qat(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  TrainConfig& c = ctx.config;
  int64_t group = 32;  // Axolotl's default
  c.qat_fake_quant_after_n_steps = 0;
  for_fields(n, w, kExpected, [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    if (v.IsNull()) return;  // Axolotl's defaults
    if (key == "activation_dtype") read_choice(v, wk, {"int8"});
    else if (key == "weight_dtype") read_choice(v, wk, {"int4"});
    else if (key == "group_size") group = read_int(v, wk, 1, 1 << 20);
    else if (key == "fake_quant_after_n_steps") c.qat_fake_quant_after_n_steps = read_int(v, wk, 0);
    else if (key == "quantize_embedding") read_bool(v, wk);  // false: true is refused earlier
    else fail(wk, kExpected, "the key " + key);
  });
  c.qat_group_size = group;
}

std::string write_qat(const TrainConfig& c) {
  if (c.qat_group_size <= 0) return "";
  return "{activation_dtype: int8, weight_dtype: int4, group_size: " + std::to_string(c.qat_group_size) +
         ", fake_quant_after_n_steps: " + std::to_string(c.qat_fake_quant_after_n_steps) + "}";
}

void check_qat(const TrainConfig& c, const Where& w) {
  if (c.quantized_base())
    fail(w, "no qat over a bitsandbytes base (load_in_4bit / load_in_8bit): fake-quantised layers train over a "
         "base in its own precision", "qat with a quantised base");
  if (c.lora.use_dora) fail(w, "no qat with peft_use_dora (DoRA over fake-quantised layers is not built)", "both");
  if (!c.rl.empty())
    fail(w, "no qat with rl (preference training over fake-quantised layers is not built)", "rl: " + c.rl);
  // torchao requires each linear's in_features to be a multiple of the group size: down_proj
  // reads intermediate_size, the others (lm_head too) hidden_size.
  const std::pair<const char*, int64_t> widths[] = {{"hidden_size", c.model.hidden_size},
                                                    {"intermediate_size", c.model.intermediate_size}};
  for (const auto& [name, width] : widths)
    if (width % c.qat_group_size != 0)
      fail(w, "a group_size that divides every linear layer's input width (" + std::string(name) + " " +
           std::to_string(width) + ")", std::to_string(c.qat_group_size));
}

}  // namespace llm
