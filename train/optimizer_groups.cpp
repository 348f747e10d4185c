// defines: optimizer_group (LoRA+, Axolotl's embedding and lr_groups groups, the Trainer's default)
#include "train/optimizer_groups.h"

#include "model/llama.h"

namespace llm {

namespace {
bool holds(const std::string& name, const std::string& part) { return name.find(part) != std::string::npos; }

// Axolotl maps each module to a group in a dict: a module listed by several groups is the last's.
double lr_of_module(const TrainConfig& c, const std::string& module) {
  for (auto g = c.lr_groups.rbegin(); g != c.lr_groups.rend(); ++g)
    for (const std::string& m : g->modules)
      if (m == module) return g->lr;
  return c.learning_rate;  // not reached: the module came from a group
}
}  // namespace

OptimizerGroup optimizer_group(const TrainConfig& c, const std::string& name, int64_t ndim) {
  if (c.loraplus_lr_ratio > 0) {
    const bool group_b = holds(name, "lora_B") || ndim == 1;
    return {false, group_b ? static_cast<float>(c.loraplus_lr_ratio) : 1.0f};
  }
  const bool decay = !LlamaModel::is_norm_weight(name);
  if (!c.grouped_optimizer()) return {decay, 1.0f};
  if (holds(name, "embed_tokens") || holds(name, "lm_head")) {
    const double lr = c.embedding_lr_scale > 0 ? c.learning_rate * c.embedding_lr_scale
                      : c.embedding_lr > 0     ? c.embedding_lr
                                               : c.learning_rate;
    return {false, static_cast<float>(lr / c.learning_rate)};
  }
  if (decay)  // Axolotl tries the modules in the order they are first listed
    for (const TrainConfig::LrGroup& g : c.lr_groups)
      for (const std::string& module : g.modules)
        if (holds(name, module)) return {true, static_cast<float>(lr_of_module(c, module) / c.learning_rate)};
  return {decay, 1.0f};
}

}  // namespace llm
