// defines: read_llmcompressor, write_llmcompressor, check_llmcompressor (Axolotl's llmcompressor:
// map, its LLMCompressorPlugin's recipe; the one modifier built is ConstantPruningModifier,
// train/constant_pruning.h) and check_fp8 (its other low-precision training key)
#include <regex>
#include <string>

#include "train/config_fields.h"

namespace llm {

namespace {

const char* const kModifier = "ConstantPruningModifier";

// ConstantPruningModifier's arguments: targets (one name or "re:" pattern, or a list of them) and
// start (an epoch; the modifier is active from the run's start when it is 0 or below).
void read_constant_pruning(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::string expected = "a map {targets, start: 0}";
  bool any = false;
  for_fields(n, w, expected, [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    if (key == "targets") {
      for (const std::string& target : read_string_list(v, wk)) {
        if (target.rfind("re:", 0) == 0) {
          try {
            std::regex check(target.substr(3));
          } catch (const std::regex_error&) {
            fail(wk, "'re:' followed by a regular expression", "'" + target + "'");
          }
        }
        ctx.config.pruning_targets.push_back(target);
        any = true;
      }
    } else if (key == "start") {
      read_double(v, wk, {-kInf, false, 0, false});
    } else if (key == "end") {
      read_double(v, wk, {-1, false, -1, false});  // -1: never ends
    } else {
      fail(wk, expected, "the key " + key);
    }
  });
  if (!any) fail(w, "targets: the weights whose zeros stay (e.g. 're:.*q_proj.weight')", "none");
}

// A recipe: stages, each a map of modifier groups (keys ending in _modifiers, beside run_type),
// each a map of modifiers by class name.
void read_recipe(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  for_fields(n, w, "a map of recipe stages", [&](const std::string&, const YAML::Node& stage, const Where& ws) {
    for_fields(stage, ws, "a map of modifier groups (*_modifiers)", [&](const std::string& group, const YAML::Node& mods,
                                                                        const Where& wg) {
      if (group == "run_type") return;
      if (group.size() < 10 || group.compare(group.size() - 10, 10, "_modifiers") != 0)
        fail(wg, "a modifier group (a key ending in _modifiers) or run_type", "the key " + group);
      for_fields(mods, wg, "a map of modifiers", [&](const std::string& name, const YAML::Node& args, const Where& wm) {
        if (name != kModifier)
          fail(wm, std::string(kModifier) + " (sparse fine-tuning; llmcompressor's other modifiers, quantisation "
               "and pruning schedules among them, are not built)", name);
        read_constant_pruning(ctx, args, wm);
      });
    });
  });
}

}  // namespace

void read_llmcompressor(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  ctx.config.pruning_targets.clear();
  for_fields(n, w, "a map {recipe, save_compressed}", [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    if (key == "recipe") read_recipe(ctx, v, wk);
    else if (key == "save_compressed") ctx.config.save_compressed = read_bool(v, wk);
    else fail(wk, "a map {recipe, save_compressed}", "the key " + key);
  });
  if (ctx.config.pruning_targets.empty())
    fail(w, "a recipe with a ConstantPruningModifier and its targets", "none");
}

std::string write_llmcompressor(const TrainConfig& c) {
  if (c.pruning_targets.empty()) return "";
  return "{recipe: {finetuning_stage: {finetuning_modifiers: {" + std::string(kModifier) +
         ": {targets: " + yaml_list(c.pruning_targets) + ", start: 0}}}}, save_compressed: " +
         (c.save_compressed ? "true" : "false") + "}";
}

// fp8 casts every linear's weight and input as it computes, adapters' included in Axolotl (PEFT's
// lora_A / lora_B are linears too); QAT fake-quantises the same layers another way.
void check_fp8(const TrainConfig& c, const Where& w) {
  if (!c.adapter.empty())
    fail(w, "no adapter with fp8 (Axolotl would cast the adapters' own linears too; not built)", "adapter: " + c.adapter);
  if (c.qat.on()) fail(w, "either fp8 or qat", "both");
}

// The masks act on trained weights that every rank holds whole, after AdamW's update.
void check_llmcompressor(const TrainConfig& c, const Where& w) {
  if (!c.adapter.empty())
    fail(w, "no adapter with sparse fine-tuning (its masks act on trained weights)", "adapter: " + c.adapter);
  if (c.zero_stage > 0)
    fail(w, "zero_stage 0 with sparse fine-tuning (ZeRO shards the weights its masks act on)",
         "zero_stage " + std::to_string(c.zero_stage));
}

}  // namespace llm
