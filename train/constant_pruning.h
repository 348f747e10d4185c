// Sparse fine-tuning (Axolotl's LLMCompressorPlugin with llmcompressor's ConstantPruningModifier):
// the weights its targets name keep the zeros they start with. At start each gets a mask, 1 where
// |w| > 1e-8 (llmcompressor's epsilon), and after every optimizer step w *= mask, as the
// modifier's optimizer-post-step hook does; gradients, moments and the clipped norm see the whole
// weight, as there.
#pragma once
#include <string>
#include <vector>

#include "model/llama.h"

namespace llm {

// llmcompressor's match of a parameter's full name: a target "re:<pattern>" matches when the
// regular expression matches from the name's start (Python's re.match), any other target when it
// is the name itself.
bool pruning_target_matches(const std::string& target, const std::string& name);

struct PruningMask {
  std::string name;
  Tensor* param;
  Tensor keep;  // u8 of the parameter's shape, on its device
};

// A mask for every parameter of `params` one of `targets` matches, from its values now. Throws a
// UserError naming the target that matches none (llmcompressor's "could not find targets").
std::vector<PruningMask> make_pruning_masks(const std::vector<ParamRef>& params, const std::vector<std::string>& targets);
// w *= mask for every mask, in place.
void apply_pruning_masks(const std::vector<PruningMask>& masks);

}  // namespace llm
