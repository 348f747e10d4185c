// defines: read_bnb_config_kwargs, write_bnb_config_kwargs (Axolotl's bnb_config_kwargs, the
// BitsAndBytesConfig arguments of a qlora run)
#include "train/config_fields.h"

namespace llm {

void read_bnb_config_kwargs(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  for_fields(n, w, "a map {bnb_4bit_quant_type: nf4, bnb_4bit_use_double_quant}",
             [&](const std::string& key, const YAML::Node& v, const Where& wk) {
               if (key == "bnb_4bit_quant_type") {
                 if (v.IsScalar() && v.Scalar() == "fp4")
                   fail(wk, "nf4 (bitsandbytes' fp4 4-bit type is not built)", "fp4");
                 read_choice(v, wk, {"nf4"});
               } else if (key == "bnb_4bit_use_double_quant") {
                 ctx.config.bnb_4bit_use_double_quant = read_bool(v, wk);
               } else {
                 // bnb_4bit_compute_dtype follows bf16; bnb_4bit_quant_storage and llm_int8_*
                 // change nothing for NF4 weights stored as bytes.
                 ctx.unknown.insert(wk.key);
               }
             });
}

std::string write_bnb_config_kwargs(const TrainConfig& c) {
  if (!c.load_in_4bit) return "";
  return std::string("{bnb_4bit_quant_type: nf4, bnb_4bit_use_double_quant: ") +
         (c.bnb_4bit_use_double_quant ? "true" : "false") + "}";
}

}  // namespace llm
