// How each trained tensor joins the optimizer (weight decay or not, its learning-rate multiple),
// as Axolotl's trainer builds the optimizer from the config.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/optimizer.h"
#include "engine/torch_optim.h"
#include "train/config.h"

namespace llm {

struct OptimizerGroup {
  bool decay;      // decoupled weight decay applies
  float lr_scale;  // its learning rate is the scheduled learning_rate x this
};

// The tensor `name` (HF's name, or PEFT's without its prefix) of `ndim` dimensions, in order of
// precedence:
// - LoRA+ (loraplus_lr_ratio), PEFT's create_loraplus_optimizer: lora_B matrices and 1-D tensors
//   at the ratio, the rest at 1; no weight decay anywhere (Axolotl passes PEFT none).
// - Axolotl's groups (embedding_lr_scale, embedding_lr, lr_groups): a name holding embed_tokens or
//   lm_head learns at learning_rate x embedding_lr_scale (else embedding_lr, else learning_rate)
//   without decay; a decayed tensor whose name holds a module of lr_groups learns at that group's
//   lr (the first module listed that it holds, of the last group that lists that module, as
//   Axolotl's lookup); norm weights at learning_rate.
// - Otherwise the Trainer's: decay on everything but norm weights, one learning rate.
OptimizerGroup optimizer_group(const TrainConfig& c, const std::string& name, int64_t ndim);

// `optimizer: muon` over `params` as Axolotl's Muon factory groups them (axolotl-contribs-mit
// 0.0.6): a matrix whose name holds embed_tokens or lm_head takes its AdamW, the other matrices
// Muon, and the tensors under 2-D nothing; optim_args' momentum, nesterov and ns_steps.
std::unique_ptr<Optimizer> make_muon(const TrainConfig& c, std::vector<OptimParam> params);

// Whether `optimizer: galore_*` or `apollo_*` projects the trained tensor `name`: a linear's
// weight (a block linear's, or lm_head's) whose module name equals an optim_target_modules entry,
// holds it, or matches it whole as a regular expression (transformers' check_target_module_exists),
// or any linear's under all_linear.
bool low_rank_target(const TrainConfig& c, const std::string& name);
// Whether the optimizer projects the trained tensor `name` of `ndim` dimensions: Q-GaLore's
// targets as Axolotl's build_qgalore_param_groups picks them (a matrix whose parameter name holds
// an entry), GaLore's and APOLLO's low_rank_target.
bool low_rank_projects(const TrainConfig& c, const std::string& name, int64_t ndim);
// `optimizer: galore_*` over `params` as transformers builds it: the targets projected with
// optim_args' rank, update_proj_gap, scale and proj_type, every tensor in one group at the
// package's own betas, eps and decay (transformers hands the class the learning rate alone);
// `optimizer: q_galore_adamw8bit` as Axolotl builds it, with the qgalore_* keys, Axolotl's betas,
// eps and weight_decay on every tensor.
// Throws UserError when no tensor is a target, as transformers raises.
std::unique_ptr<Optimizer> make_galore(const TrainConfig& c, std::vector<OptimParam> params);
// `optimizer: apollo_*` the same way with optim_args' rank, proj, scale_type, update_proj_gap,
// scale and proj_type, the targets at adam_beta1, adam_beta2 and adam_epsilon; model_parameters:
// every parameter of the model by name in its order (the first bases' seeds are positions).
std::unique_ptr<Optimizer> make_apollo(const TrainConfig& c, std::vector<OptimParam> params,
                                       const std::vector<std::string>& model_parameters);
// The first target of a model of `c`'s shape whose Q-GaLore basis is not whole groups of
// qgalore_proj_group_size (q-galore-torch asserts it), or "".
std::string qgalore_unfit_target(const TrainConfig& c);
// The first target (its name and shape) of a model of `c`'s shape whose APOLLO channel factors do
// not fit its gradient (apollo_torch's broadcast fails), or "".
std::string apollo_unfit_target(const TrainConfig& c);
// GaLore's or APOLLO's state bytes over a model of `c`'s shape training whole (the memory plan).
double low_rank_state_bytes(const TrainConfig& c);
// The f32 scratch an update holds beside the gradients: APOLLO's scaled gradient of its largest
// projected matrix, Q-GaLore's largest dequantised basis (GaLore's low-rank temporaries are small
// beside them: 0).
double low_rank_update_scratch_bytes(const TrainConfig& c);

// `optimizer: sgd | adagrad | rmsprop` as transformers builds torch.optim's: weight_decay (the
// Trainer's decayed group), the rest from optim_args over torch's defaults.
TorchOptimConfig torch_optim_config(const TrainConfig& c);
// The f32 state tensors each parameter keeps under it (SGD without momentum: none).
int64_t torch_optim_state_count(const TorchOptimConfig& t);

}  // namespace llm
