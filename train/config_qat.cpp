// defines: read_qat, write_qat, check_qat, describe_qat (Axolotl's `qat:` map: quantisation-aware
// training with torchao's fake quantisers, the scheme its prepare_model_for_qat builds from the
// two dtypes)
#include <string>

#include "engine/fake_quantize_math.h"
#include "train/config_fields.h"

namespace llm {

namespace {
const char* const kExpected =
    "a map {activation_dtype: int8 or float8_e4m3fn (or unset), weight_dtype: int4, float8_e4m3fn, mxfp4 or "
    "ternary, group_size, quantize_embedding: false, fake_quant_after_n_steps}";
// Axolotl's dtype names (its validate_ao_dtype): fp8 and float8 are float8_e4m3fn.
const std::vector<std::string> kDtypes = {"int4", "int8", "float8_e4m3fn", "fp8", "float8", "nvfp4", "mxfp4", "ternary"};
std::string canonical(const std::string& dtype) { return dtype == "fp8" || dtype == "float8" ? "float8_e4m3fn" : dtype; }

// Axolotl's get_quantization_config and _make_qat_config on the two dtypes (nvfp4 is refused
// before, in train/config_unsupported.cpp). Another pair raises there; here it stops.
QatScheme scheme_for(const std::string& activation, const std::string& weight, const Where& w) {
  using In = QatScheme::Input;
  using Wt = QatScheme::Weight;
  if (weight == "mxfp4") return {In::mxfp4, Wt::mxfp4, 0};  // inputs too, whatever activation_dtype says
  // Axolotl's own BitNet b1.58 swap (prepare_model_for_ternary_qat), not torchao's: int8 inputs
  // with any activation_dtype set, which its validator allows only as int8.
  if (weight == "ternary") {
    if (activation.empty()) return {In::none, Wt::ternary, 0};
    if (activation == "int8") return {In::int8_absmax, Wt::ternary, 0};
    fail(w, "activation_dtype int8 or unset with weight_dtype ternary (Axolotl's ternary QAT)", activation);
  }
  if (activation.empty() && weight == "int4") return {In::none, Wt::int4_after_fp8, 0};
  if (activation == "int8" && weight == "int4") return {In::int8_per_token, Wt::int4_min_max, 0};
  if (activation == "float8_e4m3fn" && weight == "int4") return {In::fp8_per_row, Wt::int4_after_fp8, 0};
  if (activation == "float8_e4m3fn" && weight == "float8_e4m3fn") return {In::fp8_per_row, Wt::fp8_per_row, 0};
  fail(w, "one of the pairs torchao's QAT builds (activation_dtype / weight_dtype): unset / int4, int8 / int4, "
          "float8_e4m3fn / int4, float8_e4m3fn / float8_e4m3fn, or weight_dtype mxfp4",
       (activation.empty() ? std::string("unset") : activation) + " / " + weight +
           (weight == "int8" && activation.empty() ? " (Axolotl's default weight_dtype; torchao has no int8 "
                                                     "weight-only QAT)"
                                                   : ""));
}

bool int4_weights(const QatScheme& s) {
  return s.weight == QatScheme::Weight::int4_min_max || s.weight == QatScheme::Weight::int4_after_fp8;
}
// The weights' blocks along in_features: int4 groups, or mxfp4's blocks of 32.
bool grouped_weights(const QatScheme& s) { return int4_weights(s) || s.weight == QatScheme::Weight::mxfp4; }
}  // namespace

void read_qat(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  TrainConfig& c = ctx.config;
  // Axolotl's defaults: weight_dtype int8, no activation_dtype, group_size 32. A group_size left
  // null reaches torchao as None, whose int4 configs then take their own 128 (mxfp4: 32).
  std::string activation, weight = "int8";
  int64_t group = n.IsMap() && n["group_size"] && n["group_size"].IsNull() ? 128 : 32;
  c.qat_fake_quant_after_n_steps = 0;
  for_fields(n, w, kExpected, [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    if (key == "activation_dtype") activation = canonical(read_choice(v, wk, kDtypes));
    else if (key == "weight_dtype") weight = canonical(read_choice(v, wk, kDtypes));
    else if (key == "group_size") group = read_int(v, wk, 1, 1 << 20);
    else if (key == "fake_quant_after_n_steps") c.qat_fake_quant_after_n_steps = read_int(v, wk, 0);
    else if (key == "quantize_embedding") read_bool(v, wk);  // false: true is refused earlier
    else fail(wk, kExpected, "the key " + key);
  });
  c.qat = scheme_for(activation, weight, w);
  if (c.qat.weight == QatScheme::Weight::mxfp4) {
    if (n["group_size"] && n["group_size"].IsNull()) group = kMxBlock;
    if (group != kMxBlock)
      fail(n["group_size"] ? w.child(".group_size", n["group_size"]) : w,
           "a group_size of 32 with weight_dtype mxfp4 (its MX blocks, as Axolotl requires)", std::to_string(group));
  }
  c.qat.group = group;
}

std::string write_qat(const TrainConfig& c) {
  if (!c.qat.on()) return "";
  using In = QatScheme::Input;
  const char* activation = c.qat.input == In::int8_per_token || c.qat.input == In::int8_absmax ? "int8"
                           : c.qat.input == In::fp8_per_row                                     ? "float8_e4m3fn"
                                                                                                : nullptr;
  const char* weight = int4_weights(c.qat)                          ? "int4"
                       : c.qat.weight == QatScheme::Weight::mxfp4   ? "mxfp4"
                       : c.qat.weight == QatScheme::Weight::ternary ? "ternary"
                                                                    : "float8_e4m3fn";
  return std::string("{") + (activation ? std::string("activation_dtype: ") + activation + ", " : "") +
         "weight_dtype: " + weight + ", group_size: " + std::to_string(c.qat.group) +
         ", fake_quant_after_n_steps: " + std::to_string(c.qat_fake_quant_after_n_steps) + "}";
}

void check_qat(const TrainConfig& c, const Where& w) {
  if (c.quantized_base())
    fail(w, "no qat over a bitsandbytes base (load_in_4bit / load_in_8bit): fake-quantised layers train over a "
         "base in its own precision", "qat with a quantised base");
  if (c.lora.use_dora) fail(w, "no qat with peft_use_dora (DoRA over fake-quantised layers is not built)", "both");
  if (!c.rl.empty())
    fail(w, "no qat with rl (preference training over fake-quantised layers is not built)", "rl: " + c.rl);
  if (!grouped_weights(c.qat)) return;  // fp8 rows take any width
  // torchao requires each linear's in_features to be a multiple of the group (or MX block) size:
  // down_proj reads intermediate_size, the others (lm_head too) hidden_size.
  const std::pair<const char*, int64_t> widths[] = {{"hidden_size", c.model.hidden_size},
                                                    {"intermediate_size", c.model.intermediate_size}};
  for (const auto& [name, width] : widths)
    if (width % c.qat.group != 0)
      fail(w, "a group_size that divides every linear layer's input width (" + std::string(name) + " " +
           std::to_string(width) + ")", std::to_string(c.qat.group));
}

std::string describe_qat(const QatScheme& s) {
  std::string inputs;
  switch (s.input) {
    case QatScheme::Input::none: inputs = "their own inputs"; break;
    case QatScheme::Input::int8_per_token: inputs = "int8 inputs (per token)"; break;
    case QatScheme::Input::fp8_per_row: inputs = "e4m3 inputs (per token)"; break;
    case QatScheme::Input::mxfp4: inputs = "mxfp4 inputs (blocks of 32)"; break;
    case QatScheme::Input::int8_absmax: inputs = "int8 inputs (symmetric per token, straight-through)"; break;
  }
  std::string weights;
  switch (s.weight) {
    case QatScheme::Weight::none: weights = "their own weights"; break;
    case QatScheme::Weight::int4_min_max: weights = "int4 weights (groups of " + std::to_string(s.group) + ")"; break;
    case QatScheme::Weight::int4_after_fp8:
      weights = "int4 weights (e4m3 per row, then symmetric groups of " + std::to_string(s.group) + ")";
      break;
    case QatScheme::Weight::fp8_per_row: weights = "e4m3 weights (per output row)"; break;
    case QatScheme::Weight::mxfp4: weights = "mxfp4 weights (blocks of 32, straight-through gradients)"; break;
    case QatScheme::Weight::ternary:
      weights = "ternary weights ({-1, 0, 1} times each row's mean magnitude, straight-through)";
      break;
  }
  return inputs + " and " + weights;
}

}  // namespace llm
