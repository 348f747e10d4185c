// defines: qgalore_rows, check_qgalore (Axolotl's Q-GaLore keys, and their rules against the rest
// of a config; engine/galore.h, engine/qgalore_basis.h)
#include <string>

#include "train/config_field_builders.h"
#include "train/config_fields.h"
#include "train/optimizer_groups.h"

namespace llm {
using namespace field_builders;

std::vector<ConfigField> qgalore_rows(const char* section) {
  std::vector<ConfigField> rows = {
      integer("qgalore_rank", section, MEMBER(qgalore.rank), 1, kNoMax,
              "Q-GaLore: the rank of the projection (at most min(m, n) of each matrix in effect)"),
      integer("qgalore_update_proj_gap", section, MEMBER(qgalore.update_proj_gap), 1, kNoMax,
              "Q-GaLore: a basis is recomputed when its parameter's update count is a multiple of this (it grows)"),
      number("qgalore_scale", section, MEMBER(qgalore.scale), kNonNegative,
             "Q-GaLore: of the step carried back (a negative one would climb the loss)"),
      {"qgalore_proj_type", section, "std", "Q-GaLore: the projection's side (q-galore-torch builds std alone)",
       [](ReadContext&, const YAML::Node& n, const Where& w) { read_choice(n, w, {"std"}); }, nullptr},
      flag("qgalore_proj_quant", section, MEMBER(qgalore.proj_quant),
           "Q-GaLore: the basis kept as qgalore_proj_bits-bit codes (false: f32)"),
      integer("qgalore_proj_bits", section, MEMBER(qgalore.proj_bits), 1, 8,
              "Q-GaLore: bits of the basis' codes (one a byte), asymmetric per group"),
      integer("qgalore_proj_group_size", section, MEMBER(qgalore.proj_group_size), 1, kNoMax,
              "Q-GaLore: elements per scale and zero point of the basis' codes; divides every basis' size"),
      // Any number: below -1 the gap grows at every recomputation once the queue is full, above 1 never
      // (number() would write a negative one as unset).
      {"qgalore_cos_threshold", section, kFinite.text(),
       "Q-GaLore: the mean similarity of the top singular vectors at which the gap grows",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) { ctx.config.qgalore.cos_threshold = read_double(n, w, kFinite); },
       [](const TrainConfig& c) { return yaml_number(c.qgalore.cos_threshold); }},
      integer("qgalore_gamma_proj", section, MEMBER(qgalore.gamma_proj), 1, kNoMax,
              "Q-GaLore: the factor the gap grows by"),
      integer("qgalore_queue_size", section, MEMBER(qgalore.queue_size), 1, kNoMax,
              "Q-GaLore: the similarities averaged (the last this many bases')"),
  };
  for (ConfigField& row : rows)
    if (row.write) row = written_when(std::move(row), [](const TrainConfig& c) { return c.optimizer_qgalore(); });
  return rows;
}

// Axolotl's build: the targets a list of substrings of parameter names (all_linear would be
// matched letter by letter), and each basis whole groups (its optim_args, handed to
// QGaLoreAdamW8bit's constructor, are read with the others: config_optim_args.cpp).
void check_qgalore(const TrainConfig& c, const GivenKeys& keys) {
  if (c.optim_target_all_linear)
    fail(keys.at("optim_target_modules"), "a list with q_galore_adamw8bit (Axolotl matches each entry as a substring "
                                          "of the parameter names, and all_linear letter by letter)",
         "all_linear");
  if (const std::string unfit = qgalore_unfit_target(c); !unfit.empty())
    fail(keys.at(keys.given("qgalore_proj_group_size") ? "qgalore_proj_group_size" : "optimizer"),
         "a qgalore_proj_group_size dividing every basis' size (q-galore-torch asserts it)",
         std::to_string(c.qgalore.proj_group_size) + " against " + unfit);
}

}  // namespace llm
