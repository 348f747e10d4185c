// defines: optimizer_group (LoRA+, Axolotl's embedding and lr_groups groups, the Trainer's default)
#include "train/optimizer_groups.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/apollo.h"
#include "engine/galore.h"
#include "engine/muon.h"
#include "engine/user_error.h"
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
  const bool decay = LlamaModel::decays(name);
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

bool low_rank_target(const TrainConfig& c, const std::string& name) {
  const std::string suffix = ".weight";
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  const std::string module = name.substr(0, name.size() - suffix.size());
  const size_t dot = module.rfind('.');
  const bool linear = module == "lm_head" || (module.rfind("model.layers.", 0) == 0 && dot != std::string::npos &&
                                              linear_module_index(module.substr(dot + 1)) >= 0);
  if (!linear) return false;
  if (c.optim_target_all_linear) return true;
  for (const std::string& t : c.optim_target_modules)
    if (holds(module, t)) return true;
  for (const std::string& t : c.optim_target_modules)
    if (std::regex_match(module, std::regex(t))) return true;
  return false;
}

bool low_rank_projects(const TrainConfig& c, const std::string& name, int64_t ndim) {
  if (!c.optimizer_qgalore()) return low_rank_target(c, name);
  if (ndim != 2) return false;
  for (const std::string& t : c.optim_target_modules)
    if (holds(name, t)) return true;
  return false;
}

namespace {

// optim_args' rank, update_proj_gap, scale and proj_type over `Projection`'s defaults (GaloreConfig's
// or ApolloConfig's).
template <class Projection>
Projection projection_config(const TrainConfig& c) {
  Projection p;
  p.rank = static_cast<int64_t>(c.optim_arg("rank", double(p.rank)));
  p.update_proj_gap = static_cast<int64_t>(c.optim_arg("update_proj_gap", double(p.update_proj_gap)));
  p.scale = static_cast<float>(c.optim_arg("scale", p.scale));
  p.side = static_cast<GaloreSide>(static_cast<int>(c.optim_arg("proj_type", 0)));
  return p;
}

// GaLore's from optim_args, or Q-GaLore's from Axolotl's qgalore_* keys.
GaloreConfig galore_config(const TrainConfig& c) {
  if (!c.optimizer_qgalore()) return projection_config<GaloreConfig>(c);
  const TrainConfig::QGaloreKeys& q = c.qgalore;
  GaloreConfig g;
  g.rank = q.rank;
  g.update_proj_gap = q.update_proj_gap;
  g.scale = static_cast<float>(q.scale);
  g.quant_bits = q.proj_quant ? static_cast<int>(q.proj_bits) : 0;
  g.quant_group = q.proj_group_size;
  g.queue_size = q.queue_size;
  g.cos_threshold = q.cos_threshold;
  g.gamma_proj = q.gamma_proj;
  g.min_8bit_size = static_cast<int64_t>(c.optim_arg("min_8bit_size", double(kMin8bitSize)));
  return g;
}

ApolloConfig apollo_config(const TrainConfig& c) {
  ApolloConfig a = projection_config<ApolloConfig>(c);
  a.basis = static_cast<ApolloBasis>(static_cast<int>(c.optim_arg("proj", 0)));
  a.scaling = static_cast<ApolloScaling>(static_cast<int>(c.optim_arg("scale_type", 0)));
  return a;
}

// galore_torch's AdamW (transformers' old one: eps 1e-6, no decay), bitsandbytes' AdamW8bit
// (eps 1e-8, decay 1e-2) or its Adafactor (no decay; the rest its own constants), each at its
// defaults.
// Q-GaLore's, as Axolotl builds it: its betas, eps and weight_decay (config_optimizer.cpp).
AdamWConfig galore_adam(const TrainConfig& c) {
  if (c.optimizer_qgalore()) return AdamWConfig{float(c.adam_beta1), float(c.adam_beta2), float(c.adam_epsilon), float(c.weight_decay)};
  if (c.optimizer_per_parameter() == "galore_adamw_8bit") return AdamWConfig{0.9f, 0.999f, 1e-8f, 0.01f};
  return AdamWConfig{0.9f, 0.999f, 1e-6f, 0.0f};
}

// Which of `params` are projected, every tensor in one group (the class's learning rate scale and
// decay, bitsandbytes' f32-state overrides none); throws UserError when none is, as transformers raises.
std::vector<bool> low_rank_targets(const TrainConfig& c, std::vector<OptimParam>& params) {
  std::vector<bool> projected;
  for (OptimParam& p : params) {
    projected.push_back(low_rank_projects(c, p.name, p.param->dim()));
    p.decay = true;
    p.lr_scale = 1.0f;
    p.f32_state = false;
  }
  if (std::find(projected.begin(), projected.end(), true) == projected.end())
    throw UserError(fmt::format(
        "{}: optim_target_modules: no trained {} matches {} ({}; {} raises as well)", c.source,
        c.optimizer_qgalore() ? "matrix" : "linear weight",
        c.optim_target_all_linear ? "all_linear" : fmt::format("[{}]", fmt::join(c.optim_target_modules, ", ")),
        c.optimizer_qgalore() ? "the 2-D parameters whose name holds an entry"
                              : "the block linears q_proj ... down_proj, or an untied lm_head",
        c.optimizer_qgalore() ? "Axolotl" : "transformers"));
  return projected;
}

// The sum of f(name, shape) over every weight of a model of `m`'s shape training whole; the norms
// (two a block and the final one, never projected) share one call, counted as many times.
template <class F>
double over_model_weights(const LlamaConfig& m, F f) {
  const Shape embedding{m.vocab_size, m.hidden_size}, norm{m.hidden_size};
  double sum = f("model.embed_tokens.weight", embedding) + (2 * m.num_hidden_layers + 1) * f("model.norm.weight", norm);
  if (!m.tie_word_embeddings) sum += f("lm_head.weight", embedding);
  for (int64_t layer = 0; layer < m.num_hidden_layers; layer++)
    for (int k = 0; k < kNumLinear; k++) sum += f(linear_module_name(layer, k) + ".weight", linear_shape(m, k));
  return sum;
}
}  // namespace

std::unique_ptr<Optimizer> make_galore(const TrainConfig& c, std::vector<OptimParam> params) {
  std::vector<bool> projected = low_rank_targets(c, params);
  const std::string base = c.optimizer_per_parameter();
  const GaloreInner inner = base == "galore_adamw"        ? GaloreInner::hf_adamw
                            : base == "galore_adamw_8bit" || c.optimizer_qgalore() ? GaloreInner::bnb_adamw_8bit
                                                          : GaloreInner::adafactor;
  return std::make_unique<Galore>(std::move(params), std::move(projected), galore_adam(c), galore_config(c), inner,
                                  c.optimizer_layerwise());
}

std::unique_ptr<Optimizer> make_apollo(const TrainConfig& c, std::vector<OptimParam> params,
                                       const std::vector<std::string>& model_parameters) {
  const std::vector<bool> projected = low_rank_targets(c, params);
  const ApolloConfig apollo = apollo_config(c);
  // apollo_torch seeds a parameter's first basis with its 1-based position in its optimizer:
  // transformers' groups list the untargeted parameters, then the targets, each in the model's
  // order (frozen ones among them); layer-wise, every parameter is its own optimizer's first.
  int64_t untargeted = 0;
  for (const std::string& name : model_parameters) untargeted += !low_rank_target(c, name);
  std::map<std::string, int64_t> position;  // of each target
  for (const std::string& name : model_parameters)
    if (low_rank_target(c, name)) position.emplace(name, untargeted + static_cast<int64_t>(position.size()) + 1);
  std::vector<int64_t> seeds;
  for (size_t i = 0; i < params.size(); i++)
    seeds.push_back(c.optimizer_layerwise() || !projected[i] ? 1 : position.at(params[i].name));
  const AdamWConfig plain{0.9f, 0.999f, 1e-6f, 0.0f};  // the class's defaults
  const AdamWConfig low_rank{float(c.adam_beta1), float(c.adam_beta2), float(c.adam_epsilon), 0.0f};
  return std::make_unique<Apollo>(std::move(params), projected, std::move(seeds), plain, low_rank, apollo,
                                  c.optimizer_layerwise());
}

double low_rank_state_bytes(const TrainConfig& c) {
  if (c.optimizer_apollo()) {
    // f32 moments of the low-rank gradient, the basis and the limiter's norm; the rest's moments.
    const ApolloConfig a = apollo_config(c);
    return over_model_weights(c.model, [&](const std::string& name, const Shape& shape) {
      if (!low_rank_target(c, name)) return 8.0 * static_cast<double>(shape_numel(shape));
      return 8.0 * static_cast<double>(shape_numel(Apollo::low_rank_shape(shape, a))) +
             4.0 * static_cast<double>(shape_numel(Apollo::projector_shape(shape, a)) + 1);
    });
  }
  const GaloreConfig g = galore_config(c);
  const bool eight_bit = c.optimizer_per_parameter() == "galore_adamw_8bit" || c.optimizer_qgalore();
  const bool adafactor = c.optimizer_per_parameter() == "galore_adafactor";
  // A tensor's state: two moments, f32 or 8-bit codes with an f32 absmax per block from
  // kMin8bitSize elements on; Adafactor's f32 means per row and column (per element of a vector).
  const auto state = [&](const Shape& shape) {
    const double n = static_cast<double>(shape_numel(shape));
    if (adafactor) return 4.0 * (shape.size() == 2 ? static_cast<double>(shape[0] + shape[1]) : n);
    return eight_bit && n >= static_cast<double>(g.min_8bit_size) ? 2 * (n + 4 * std::ceil(n / kQuantBlock)) : 8 * n;
  };
  // A basis: f32, or Q-GaLore's u8 codes with an f32 scale and zero point per group; Q-GaLore's
  // adaptive gap keeps the top singular vector (a basis' row or column) too.
  const auto basis = [&](const Shape& shape) {
    const Shape b = Galore::projector_shape(shape, g);
    const double n = static_cast<double>(shape_numel(b));
    const double top = g.queue_size > 0 ? 4.0 * static_cast<double>(projects_from_right(shape, g.side) ? b[1] : b[0]) : 0;
    return (g.quant_bits > 0 ? n + 8 * (n / static_cast<double>(g.quant_group)) : 4 * n) + top;
  };
  return over_model_weights(c.model, [&](const std::string& name, const Shape& shape) {
    if (!low_rank_projects(c, name, static_cast<int64_t>(shape.size()))) return state(shape);
    return state(Galore::low_rank_shape(shape, g)) + basis(shape);
  });
}

namespace {
// The first projected weight of a model of `c`'s shape for which unfit(name, shape) says what does
// not fit (non-empty), or "".
template <class Unfit>
std::string first_unfit_target(const TrainConfig& c, Unfit unfit) {
  std::string first;
  over_model_weights(c.model, [&](const std::string& name, const Shape& shape) {
    if (first.empty() && low_rank_projects(c, name, static_cast<int64_t>(shape.size()))) first = unfit(name, shape);
    return 0.0;
  });
  return first;
}
}  // namespace

std::string qgalore_unfit_target(const TrainConfig& c) {
  const GaloreConfig g = galore_config(c);
  if (g.quant_bits == 0) return "";
  return first_unfit_target(c, [&](const std::string& name, const Shape& shape) {
    const Shape b = Galore::projector_shape(shape, g);
    return shape_numel(b) % g.quant_group == 0 ? std::string() : fmt::format("{}'s basis [{}]", name, fmt::join(b, ", "));
  });
}

std::string apollo_unfit_target(const TrainConfig& c) {
  const ApolloConfig a = apollo_config(c);
  return first_unfit_target(c, [&](const std::string& name, const Shape& shape) {
    return Apollo::scaling_fits(shape, a) ? std::string() : fmt::format("{} [{}]", name, fmt::join(shape, ", "));
  });
}

double low_rank_update_scratch_bytes(const TrainConfig& c) {
  const GaloreConfig g = galore_config(c);
  if (!c.optimizer_apollo() && g.quant_bits == 0) return 0;
  double largest = 0;  // APOLLO's scaled gradient, or Q-GaLore's dequantised basis
  over_model_weights(c.model, [&](const std::string& name, const Shape& shape) {
    if (low_rank_projects(c, name, static_cast<int64_t>(shape.size())))
      largest = std::max(largest, static_cast<double>(shape_numel(c.optimizer_apollo() ? shape : Galore::projector_shape(shape, g))));
    return 0.0;
  });
  return 4 * largest;
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
