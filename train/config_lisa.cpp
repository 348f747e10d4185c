// defines: lisa_rows, check_lisa (LISA's keys, and their rules against the rest of a config;
// train/lisa.h)
#include <string>

#include "train/config_field_builders.h"
#include "train/config_fields.h"

namespace llm {
using namespace field_builders;

std::vector<ConfigField> lisa_rows(const char* section) {
  return {
      integer("lisa_n_layers", section, MEMBER(lisa_n_layers), 1, 1 << 20,
              "LISA: how many decoder layers train at a time (with lisa_step_interval), drawn as Axolotl draws them"),
      integer("lisa_step_interval", section, MEMBER(lisa_step_interval), 1, kNoMax,
              "LISA: the steps between draws of the layers that train"),
      {"lisa_layers_attribute", section, "model.layers", "LISA: where the layers are (Llama's model.layers, the default)",
       [](ReadContext&, const YAML::Node& n, const Where& w) { read_choice(n, w, {"model.layers"}); }, nullptr},
  };
}

// LISA freezes and thaws whole decoder layers of a full fine-tuning run, with AdamW's
// per-parameter step counts (engine/optimizer.h); Axolotl runs it when both keys are set.
void check_lisa(const TrainConfig& c, const Where& n_layers, const Where& interval) {
  if ((c.lisa_n_layers > 0) != (c.lisa_step_interval > 0))
    fail(c.lisa_n_layers > 0 ? n_layers : interval,
         "lisa_n_layers and lisa_step_interval together (LISA runs with both)", "one of them");
  const Where& w = n_layers;
  if (c.lisa_n_layers > c.model.num_hidden_layers)
    fail(w, "at most num_hidden_layers, " + std::to_string(c.model.num_hidden_layers), std::to_string(c.lisa_n_layers));
  if (!c.adapter.empty()) fail(w, "no adapter with LISA (it trains whole layers of the model)", "adapter: " + c.adapter);
  if (!c.unfrozen_parameters.empty())
    fail(w, "no unfrozen_parameters (nor Spectrum) with LISA, which decides what trains", "both");
  if (c.zero_stage > 0)
    fail(w, "zero_stage 0 with LISA (ZeRO's sharded AdamW keeps one step count for every parameter)",
         "zero_stage " + std::to_string(c.zero_stage));
  // ADOPT, and optimi's AdamW and StableAdamW, whose step count is its group's: LISA's frozen layers would not
  // keep their own.
  if (c.optimizer == "adopt_adamw" || c.optimizer == "optimi_adamw" || c.optimizer == "stable_adamw")
    fail(w, "an AdamW optimizer with LISA", "optimizer: " + c.optimizer);
}

}  // namespace llm
