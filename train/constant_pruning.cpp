// defines: pruning_target_matches, make_pruning_masks, apply_pruning_masks (sparse fine-tuning's
// masks, llmcompressor's ConstantPruningModifier)
#include "train/constant_pruning.h"

#include <cmath>
#include <regex>

#include "engine/backend.h"
#include "engine/user_error.h"

namespace llm {

namespace {
constexpr float kPruningEpsilon = 1e-8f;  // llmcompressor's _epsilon, 10e-9
}  // namespace

bool pruning_target_matches(const std::string& target, const std::string& name) {
  if (target.rfind("re:", 0) != 0) return target == name;
  return std::regex_search(name, std::regex(target.substr(3)), std::regex_constants::match_continuous);
}

std::vector<PruningMask> make_pruning_masks(const std::vector<ParamRef>& params, const std::vector<std::string>& targets) {
  std::vector<PruningMask> masks;
  std::vector<bool> found(targets.size(), false);
  for (const ParamRef& p : params) {
    bool matched = false;
    for (size_t t = 0; t < targets.size(); t++)
      if (pruning_target_matches(targets[t], p.name)) found[t] = matched = true;
    if (!matched) continue;
    const std::vector<float> values = p.tensor->to_floats();
    std::vector<uint8_t> keep(values.size());
    for (size_t i = 0; i < values.size(); i++) keep[i] = std::fabs(values[i]) > kPruningEpsilon;
    Tensor mask = Tensor::empty(p.tensor->shape(), DType::u8, Device::cpu());
    std::copy(keep.begin(), keep.end(), mask.data<uint8_t>());
    masks.push_back({p.name, p.tensor, mask.to(p.tensor->device())});
  }
  for (size_t t = 0; t < targets.size(); t++)
    if (!found[t])
      throw UserError("llmcompressor: ConstantPruningModifier's target '" + targets[t] +
                      "' matches no trained parameter of the model (names as HF's, e.g. "
                      "model.layers.0.self_attn.q_proj.weight; 're:' + a regular expression matched from the start)");
  return masks;
}

void apply_pruning_masks(const std::vector<PruningMask>& masks) {
  for (const PruningMask& m : masks) backend(m.param->device()).multiply_by_mask(*m.param, m.keep);
}

}  // namespace llm
