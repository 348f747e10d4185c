// defines: optimizer_rows (the optimizer's keys: its choice, optim_args, the Adam settings and
// weight decay; their rules against each other are train/config_optimizer.cpp)
#include "train/config_field_builders.h"
#include "train/config_fields.h"

namespace llm {
using namespace field_builders;

namespace {

// Keys only CAME reads; keys GaLore leaves unused (transformers hands its classes the learning rate
// alone), weight_decay APOLLO too (the learning rate, betas and eps).
ConfigField came_only(ConfigField field) {
  return written_when(std::move(field), [](const TrainConfig& c) { return c.optimizer == "came_pytorch"; });
}
ConfigField unused_by_galore(ConfigField field) {
  return written_when(std::move(field), [](const TrainConfig& c) { return !c.optimizer_galore(); });
}

}  // namespace

std::vector<ConfigField> optimizer_rows(const char* section) {
  return {
      choice("optimizer", section, MEMBER(optimizer),
             {"adamw_torch", "adamw_torch_fused", "adamw", "paged_adamw_32bit", "adamw_8bit",
              "adamw_bnb_8bit", "paged_adamw_8bit", "adopt_adamw", "lion_32bit", "lion_8bit", "paged_lion_32bit",
              "paged_lion_8bit", "adafactor", "ademamix", "ademamix_8bit", "paged_ademamix_32bit",
              "paged_ademamix_8bit", "muon", "optimi_adamw", "adamc", "came_pytorch", "schedule_free_adamw",
              "schedule_free_radam", "schedule_free_sgd", "adamw_torch_8bit", "adamw_torch_4bit", "ao_adamw_fp8", "sgd",
              "adagrad", "rmsprop", "rmsprop_bnb", "rmsprop_bnb_32bit", "rmsprop_bnb_8bit", "galore_adamw",
              "galore_adamw_8bit", "galore_adafactor", "galore_adamw_layerwise", "galore_adamw_8bit_layerwise",
              "galore_adafactor_layerwise", "apollo_adamw", "apollo_adamw_layerwise", "q_galore_adamw8bit", "stable_adamw",
              "grokadamw", "lomo", "adalomo"},
             "AdamW; the *_8bit spellings keep its moments 8-bit blockwise (bitsandbytes); adopt_adamw: "
             "ADOPT (f32, no ZeRO; betas 0.9 / 0.9999 and eps 1e-6 unless adam_beta1 and adam_beta2 / "
             "adam_epsilon are given); lion_*: bitsandbytes' Lion with adam_beta1 and adam_beta2 as its betas "
             "(f32 or 8-bit momentum, no ZeRO); adafactor: transformers' Adafactor as the Trainer builds it "
             "(the schedule's lr, factored second moments, no ZeRO); ademamix*: bitsandbytes' AdEMAMix (adam_beta1, "
             "adam_beta2, beta3 0.9999, alpha 5, adam_epsilon unless optim_args says; f32 or 8-bit moments, no ZeRO); "
             "muon: Axolotl's Muon (Moonlight's): matrices take Newton-Schulz-orthogonalised momentum, embed_tokens / "
             "lm_head AdamW with betas 0.95 / 0.95 unless adam_beta1 and adam_beta2 are given, tensors under 2-D "
             "(norms) no update, as Axolotl's factory leaves them out (f32, no ZeRO); optimi_adamw: torch-optimi's AdamW "
             "(AdamW's update with betas 0.9 / 0.99 and eps 1e-6 unless adam_beta1 and adam_beta2 / adam_epsilon are "
             "given); adamc: Axolotl's AdamC (AdamW whose decay at lr is weight_decay x lr^2 / learning_rate, or / "
             "optim_args' max_lr; betas 0.9 / 0.999 unless adam_beta1 and adam_beta2 are both given); came_pytorch: CAME "
             "(Adafactor's factored second moment, a first moment, its factored instability; adam_beta1, adam_beta2 "
             "and adam_beta3 each, eps adam_epsilon (1e-30 unless given) and adam_epsilon2; f32, no ZeRO); "
             "schedule_free_adamw / _radam / _sgd: the schedulefree package's optimizers as transformers builds them "
             "(adam_beta1, adam_beta2 and adam_epsilon for AdamW and RAdam, momentum 0.9 for SGD; AdamW and SGD warm "
             "up over warmup_steps themselves, on top of lr_scheduler; the weights train at y and are evaluated and "
             "exported at x, the average; f32, no ZeRO); adamw_torch_8bit: torchao's AdamW8bit as transformers builds "
             "it (u8 m and v with an f32 scale per 256 elements for tensors of 4096 elements or more in whole blocks, "
             "f32 moments for the rest; no ZeRO); adamw_torch_4bit: torchao's AdamW4bit, the same with 4-bit codes "
             "two a byte (m on its signed dynamic map, v on 16 linear steps without zero); ao_adamw_fp8: torchao's "
             "AdamWFp8 as Axolotl builds it (float8 e4m3 m and v with an f32 scale per 256 elements, the same tensors; "
             "Axolotl's groups: embed_tokens and lm_head without decay; betas 0.9 / 0.999 and eps 1e-8 unless "
             "adam_beta1 and adam_beta2 / adam_epsilon are given); sgd, adagrad, rmsprop: "
             "torch.optim's, as transformers builds them (weight_decay added to the gradient; optim_args momentum, "
             "dampening, nesterov (SGD); lr_decay, eps 1e-10 (Adagrad); momentum, alpha 0.99, eps 1e-8, centered "
             "(RMSprop); f32 state, no ZeRO); rmsprop_bnb, rmsprop_bnb_32bit, rmsprop_bnb_8bit: bitsandbytes' RMSprop as "
             "transformers builds it (torch's update without momentum or centering, alpha 0.99, eps 1e-8, no optim_args; "
             "square_avg f32, or with _8bit blockwise 8-bit for tensors of 4096 elements or more but the embedding; "
             "no ZeRO); galore_adamw, galore_adamw_8bit, galore_adafactor: GaLore (galore_torch) as transformers builds it over "
             "optim_target_modules: each targeted linear's gradient projected to rank r by the top singular vectors "
             "of its gradient (recomputed every update_proj_gap updates), Adam in that space, the step carried "
             "back x scale; transformers' old AdamW (betas 0.9 / 0.999, eps 1e-6, no decay), bitsandbytes' 8-bit "
             "AdamW (eps 1e-8, decay 0.01) or transformers' Adafactor (factored, no decay), the package's defaults "
             "whatever adam_* and weight_decay say; no ZeRO); galore_adamw_layerwise, galore_adamw_8bit_layerwise: the same, "
             "one optimizer a parameter stepped in backward as soon as its gradient is complete (the gradient then "
             "dropped), as transformers' layer-wise GaLore: no clipping, gradient_accumulation_steps 1, one process, "
             "transformers' schedules only (galore_adafactor_layerwise is refused: transformers' build of it raises); "
             "apollo_adamw: APOLLO (apollo_torch) as transformers builds it over optim_target_modules: each targeted "
             "linear's gradient projected to rank r by a random Gaussian basis (or its SVD's, proj: svd) redrawn every "
             "update_proj_gap updates, transformers' old AdamW's moments in that space, and the gradient itself "
             "scaled by the ratio of the normalised to the projected gradient's norms per channel (or per tensor, "
             "scale_type: tensor), its norm's growth held to 1.01x a step, x sqrt(scale); adam_beta1, adam_beta2 "
             "and adam_epsilon for the projected, betas 0.9 / 0.999 and eps 1e-6 for the rest; no decay; no ZeRO; "
             "apollo_adamw_layerwise: the same stepped in backward as galore_*_layerwise; "
             "q_galore_adamw8bit: Axolotl's Q-GaLore (q-galore-torch 1.0): galore_adamw_8bit's update over the 2-D "
             "parameters whose name holds an optim_target_modules entry, its basis kept as qgalore_proj_bits-bit codes "
             "per qgalore_proj_group_size elements and its gap growing by qgalore_gamma_proj once the top singular "
             "vectors stay alike (qgalore_* keys); adam_beta1 and adam_beta2 (both) / adam_epsilon and weight_decay "
             "as Axolotl passes them; no optim_args; no ZeRO; "
             "stable_adamw: torch-optimi's StableAdamW as transformers "
             "builds it (AdamW with adam_beta1, adam_beta2, adam_epsilon and the Trainer's decay groups, each tensor's "
             "rate divided by max(1, the RMS of g^2 / max(v_hat, eps^2)); optim_args max_lr and decouple_lr; f32, no "
             "ZeRO); grokadamw: the grokadamw package's GrokAdamW as transformers builds it (AdamW on g + lamb x an "
             "EMA of g, each tensor's gradient clipped to its own norm, beta1 x (1 - gamma)^i along each of the "
             "Trainer's groups; betas 0.9 / 0.999 and eps 1e-8 whatever adam_* say; optim_args alpha_init, lamb, "
             "gamma, grokking_signal_decay_rate, gradient_clipping; f32, no ZeRO); lomo: LOMO (lomo_optim) as transformers "
             "builds it: SGD at the schedule's rate, each parameter updated in backward as its gradient completes, "
             "in every micro-batch's backward, the gradient then dropped; no state, decay or clipping (adam_*, "
             "weight_decay and max_grad_norm unused), one process, no ZeRO); adalomo: AdaLomo (lomo_optim) as transformers "
             "builds it: Adafactor's factored update the same way, each micro-batch's pass a step of its decay rate, "
             "the rate times max(1e-3, the parameter's RMS); f32 factored state, the same keys unused)"),
      {"optim_args", section, "a map or a 'key=value,...' string",
       "HF's optim_args: beta1, beta2, beta3, alpha, eps, t_alpha (alpha's warmup steps) and t_beta3 (beta3's) of "
       "AdEMAMix; momentum (0.95), nesterov (true) and ns_steps (5) of Muon; max_lr (learning_rate) of AdamC; "
       "clip_threshold (1) of CAME; weight_lr_power (2) and r (0) of Schedule-Free (the average's weights); "
       "block_size (256, the only one built) and bf16_stochastic_round of adamw_torch_8bit, adamw_torch_4bit and "
       "ao_adamw_fp8 (a map with ao_adamw_fp8: Axolotl hands its values on as they are); "
       "momentum, dampening and nesterov of sgd, lr_decay and eps of adagrad, momentum, alpha, eps and centered of "
       "rmsprop (rmsprop_bnb* refuses any: transformers hands them on as strings, which bitsandbytes raises on); "
       "rank (128), update_proj_gap (200), scale (0.25) and proj_type (std, reverse_std, right or left) of galore_*; "
       "rank (128), proj (random or svd), scale_type (channel or tensor), update_proj_gap (200), scale (1) and "
       "proj_type (std, reverse_std, right or left) of apollo_*; "
       "max_lr (learning_rate), decouple_lr and kahan_sum of stable_adamw; alpha_init (0.98), lamb (2), gamma "
       "(0.1), grokking_signal_decay_rate (0.1) and gradient_clipping (1) of grokadamw; "
       "unused by the other "
       "optimizers",
       read_optim_args, write_optim_args},
      {"optim_target_modules", section, "a list of module names or regular expressions, or all_linear",
       "GaLore's and APOLLO's targets (galore_*, apollo_*): the linear modules (block linears, an untied lm_head) "
       "whose name equals an "
       "entry, holds it, or matches it whole as a regular expression, as transformers matches them; all_linear: "
       "every one; Q-GaLore's (q_galore_adamw8bit, a list): the 2-D parameters whose name holds an entry, as "
       "Axolotl matches them; unused by the other optimizers",
       read_optim_target_modules, [](const TrainConfig& c) {
         return c.optim_target_all_linear ? std::string("all_linear")
                : c.optim_target_modules.empty() ? std::string() : yaml_list(c.optim_target_modules);
       }},
      unused_by_galore(number("adam_beta1", section, MEMBER(adam_beta1), kBeta, "AdamW beta1")),
      unused_by_galore(number("adam_beta2", section, MEMBER(adam_beta2), kBeta, "AdamW beta2")),
      came_only(number("adam_beta3", section, MEMBER(adam_beta3), kBeta, "CAME's beta3, the instability's rate (0.9999)")),
      // AdamW keeps these two as floats.
      unused_by_galore(number("adam_epsilon", section, MEMBER(adam_epsilon), {0, false, kFloatMax, false},
                              "AdamW epsilon")),
      came_only(number("adam_epsilon2", section, MEMBER(adam_epsilon2), {0, false, kFloatMax, false},
                       "CAME's eps2, added to each instability term (1e-16)")),
      written_when(number("weight_decay", section, MEMBER(weight_decay), {0, false, kFloatMax, false},
                          "decoupled weight decay (not on norm weights)"),
                   [](const TrainConfig& c) { return !c.optimizer_transformers_low_rank(); })
  };
}

}  // namespace llm
