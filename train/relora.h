// ReLoRA as Axolotl runs it (its ReLoRACallback, https://arxiv.org/abs/2307.05695): before each
// step that follows a multiple of jagged_restart_steps, the adapters are merged into the base
// weights and drawn afresh, and their AdamW moments pruned, so the next period learns a new
// low-rank update on top of the last ones. The schedule's jagged restarts are LrSchedule's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/optimizer.h"
#include "model/llama.h"

namespace llm {

// torch.quantile(|values| in f32, ratio) with its linear interpolation, computed as torch 2.15
// does (the f32 ratio's rank ratio x (n - 1) in double, then torch.lerp between its neighbours in
// f32): Axolotl's magnitude_pruning_ threshold.
float magnitude_threshold(const std::vector<float>& values, float ratio);

// Axolotl's reset_optimizer on one moment: "magnitude" zeroes (multiplies by 0, as its mask does)
// every value with |v| <= the ratio quantile of |v| (tensors over 2^24 values are left as they are: torch.quantile refuses them and
// Axolotl skips them); "random" and "reset" zero each value with probability `ratio`, drawn from
// `seed` (torch.rand's distribution, our draws). Returns how many values are zero after it.
int64_t prune_moment(std::vector<float>& values, const std::string& method, float ratio, uint64_t seed);

// The prune ratio a restart uses: relora_prune_ratio, else 0.999 for reset and 0.9 otherwise.
float relora_prune_ratio(const std::string& method, double configured);

// One restart at step `step` (the steps done so far): the model's adapters merged and redrawn,
// then every moment of the optimizer's (AdamW, f32, unsharded: the adapters' own) pruned. Both
// draw from (seed, step), so a resumed run restarts as the unbroken one did. Returns the share of
// the moments' values that are zero.
double relora_restart(LlamaModel& model, Optimizer& optimizer, const std::string& method, float ratio, uint64_t seed,
                      int64_t step);

}  // namespace llm
