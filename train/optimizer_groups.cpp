// defines: optimizer_group (LoRA+, Axolotl's embedding and lr_groups groups, the Trainer's default)
#include "train/optimizer_groups.h"

#include <algorithm>

#include "engine/muon.h"
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

std::unique_ptr<Optimizer> make_muon(const TrainConfig& c, std::vector<OptimParam> params) {
  std::vector<MuonRole> roles;
  for (const OptimParam& p : params) {
    const bool embedding = holds(p.name, "embed_tokens") || holds(p.name, "lm_head");
    roles.push_back(p.param->dim() < 2 ? MuonRole::untrained : embedding ? MuonRole::adamw : MuonRole::orthogonalised);
  }
  MuonConfig muon;
  muon.momentum = static_cast<float>(c.optim_arg("momentum", muon.momentum));
  muon.nesterov = c.optim_arg("nesterov", 1) != 0;
  muon.ns_steps = static_cast<int64_t>(c.optim_arg("ns_steps", double(muon.ns_steps)));
  const AdamWConfig adam{float(c.adam_beta1), float(c.adam_beta2), float(c.adam_epsilon), float(c.weight_decay)};
  return std::make_unique<Muon>(std::move(params), std::move(roles), adam, muon);
}

TorchOptimConfig torch_optim_config(const TrainConfig& c) {
  TorchOptimConfig t;
  t.kind = c.optimizer == "adagrad"                                   ? TorchOptimKind::adagrad
           : c.optimizer == "rmsprop" || c.optimizer_bnb_rmsprop() ? TorchOptimKind::rmsprop
                                                                     : TorchOptimKind::sgd;
  t.blockwise_8bit = c.optimizer == "rmsprop_bnb_8bit";
  t.weight_decay = c.weight_decay;
  t.momentum = c.optim_arg("momentum", 0.0);
  t.dampening = c.optim_arg("dampening", 0.0);
  t.nesterov = c.optim_arg("nesterov", 0.0) != 0;
  t.lr_decay = c.optim_arg("lr_decay", 0.0);
  t.eps = c.optim_arg("eps", t.kind == TorchOptimKind::rmsprop ? 1e-8 : 1e-10);
  t.alpha = c.optim_arg("alpha", 0.99);
  t.centered = c.optim_arg("centered", 0.0) != 0;
  // Adagrad has no momentum for OneCycleLR to cycle (the config refuses the pair).
  t.cycled_momentum = c.lr_scheduler == "one_cycle" && c.lr_scheduler_kwargs.cycle_momentum.value_or(true) &&
                      t.kind != TorchOptimKind::adagrad;
  return t;
}

int64_t torch_optim_state_count(const TorchOptimConfig& t) {
  const std::array<std::string, 3> names = torch_optim_state_names(t);
  return std::count_if(names.begin(), names.end(), [](const std::string& name) { return !name.empty(); });
}

}  // namespace llm
