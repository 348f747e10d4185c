// bitsandbytes' own optimizers (0.50.2 on the CPU, tools/make_bnb_optimizer_reference.py) against
// ours, update by update: each of three updates starts from bitsandbytes' parameters and state
// (imported as a checkpoint's would be) and is compared with its next ones. A 4 x 1100 weight (18
// blocks of 256, the last short; weight decay; a block of zero gradients) and a 64-element norm
// (under min_8bit_size: f32 state even in 8-bit mode; no decay). Cases: 8-bit AdamW (adamw_8bit,
// adamw_bnb_8bit, paged_adamw_8bit), Lion with f32 state (lion_32bit) and 8-bit state (lion_8bit),
// AdEMAMix with f32 and 8-bit state (ademamix, ademamix_8bit), RMSprop with f32 and 8-bit
// square_avg (rmsprop_bnb / rmsprop_bnb_32bit, rmsprop_bnb_8bit).
#include <cmath>

#include "engine/ademamix.h"
#include "engine/autograd.h"
#include "engine/lion.h"
#include "engine/quant_map.h"
#include "engine/torch_optim.h"
#include "io/safetensors.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {

const SafetensorsFile& reference() {
  static const SafetensorsFile file(LLM_BNB_OPTIMIZER_REFERENCE_DIR "/reference.safetensors");
  return file;
}
// A reference tensor; "name[k]" is row k of it (AdEMAMix keeps its two first moments, and their
// absmax, as the rows of state1 and absmax1).
Tensor bnb(const std::string& name) {
  const size_t bracket = name.find('[');
  if (bracket == std::string::npos) return reference().read(name, DType::f32);
  const Tensor whole = reference().read(name.substr(0, bracket), DType::f32);
  const int64_t row = std::stoll(name.substr(bracket + 1)), rows = whole.shape()[0];
  return whole.reshape({rows, whole.numel() / rows}).narrow(0, row, 1).contiguous().reshape({whole.numel() / rows});
}

constexpr int kSteps = 3;
constexpr float kWeightDecay = 0.1f;

using MakeOptimizer = std::function<std::unique_ptr<Optimizer>(std::vector<OptimParam>)>;
using StateNames = std::map<std::string, std::string>;  // ours -> bitsandbytes' ("w.exp_avg" -> "w.state1")

Tensor as_dtype(const Tensor& f32, DType dtype) {
  if (dtype == DType::f32) return f32;
  Tensor codes = Tensor::zeros(f32.shape(), DType::u8, Device::cpu());
  const std::vector<float> v = f32.to_floats();
  for (size_t i = 0; i < v.size(); i++) codes.data<uint8_t>()[i] = static_cast<uint8_t>(v[i]);
  return codes;
}

// Elements of `ours` more than `tol` from `theirs`.
int64_t count_off(const std::vector<float>& ours, const std::vector<float>& theirs, float tol) {
  REQUIRE(ours.size() == theirs.size());
  int64_t off = 0;
  for (size_t i = 0; i < ours.size(); i++) off += !(std::fabs(ours[i] - theirs[i]) <= tol);
  return off;
}

// Update t + 1 of case `name` from bitsandbytes' parameters and state after t, against its own.
// Parameters within 1e-6 (its bias corrections and 1 - beta are rounded from double, ours are
// float as in its CUDA kernels and torch's: a few ulps). f32 states and absmax within 3e-5 of their
// scale (that 1 - beta2: 1.3e-5 relative at 0.999). Codes: its CPU quantiser is not exactly
// nearest (a value 2e-5 past the midpoint of two entries keeps the lower one) nor keeps a
// negative first moment off 0 as its CUDA kernels do; ours does both, so a code may differ by
// one entry, for at most 1% of the elements.
void check_update(const std::string& name, int t, float lr, const MakeOptimizer& make, const StateNames& names) {
  CAPTURE(name);
  CAPTURE(t);
  const std::string before = name + "." + std::to_string(t) + ".", after = name + "." + std::to_string(t + 1) + ".";
  Tensor w = bnb(before + "w"), norm = bnb(before + "norm");
  w.set_requires_grad(true);
  norm.set_requires_grad(true);
  std::unique_ptr<Optimizer> optimizer = make({{"w", &w, true}, {"norm", &norm, false}});
  if (t > 0) {
    optimizer->import_state([&](const std::string& key, const Shape& shape, DType dtype, int64_t begin, int64_t count) {
      REQUIRE(names.count(key) == 1);
      Tensor value = as_dtype(bnb(before + names.at(key)), dtype);
      REQUIRE(shape_numel(value.shape()) == shape_numel(shape));
      return value.reshape({value.numel()}).narrow(0, begin, count);
    });
    optimizer->set_steps_taken(t);
  }
  accumulate_grad(*w.autograd_meta(), bnb(name + ".grad.w." + std::to_string(t)));
  accumulate_grad(*norm.autograd_meta(), bnb(name + ".grad.norm." + std::to_string(t)));
  optimizer->step(lr);
  CHECK(count_off(w.to_floats(), bnb(after + "w").to_floats(), 1e-6f) == 0);
  CHECK(count_off(norm.to_floats(), bnb(after + "norm").to_floats(), 1e-6f) == 0);
  int64_t checked = 0;
  optimizer->export_state([&](const std::string& key, const Tensor& value) {
    CAPTURE(key);
    REQUIRE(names.count(key) == 1);
    std::vector<float> ours = value.to_floats();
    const std::vector<float> theirs = bnb(after + names.at(key)).to_floats();
    checked++;
    if (value.dtype() == DType::u8) {
      // A block of zeros (absmax 0) dequantises to 0 whatever its codes: bitsandbytes' are 0,
      // ours the code of 0. Below 1e-3 of the absmax its CPU search is coarse (codes of 1e-4
      // where the value is 1e-7 of it); its CUDA kernels' is exact there, as ours.
      const std::string absmax = key.substr(0, key.size() - std::string("codes").size()) + "absmax";
      const std::vector<float> scale = bnb(after + names.at(absmax)).to_floats();
      const std::array<float, 256> map = dynamic_quant_map(key.find("exp_avg_sq") == std::string::npos);
      int64_t tiny = 0;
      for (size_t i = 0; i < ours.size(); i++) {
        const bool small = std::fabs(map[uint8_t(ours[i])]) < 1e-3f && std::fabs(map[uint8_t(theirs[i])]) < 1e-3f;
        tiny += small && ours[i] != theirs[i];
        if (scale[i / kQuantBlock] == 0.0f || small) ours[i] = theirs[i];
      }
      const int64_t off = count_off(ours, theirs, 0.0f);
      CHECK(count_off(ours, theirs, 1.0f) == 0);
      CHECK(off <= static_cast<int64_t>(ours.size() / 100));
      MESSAGE(name << " update " << t + 1 << ": " << key << ": " << off << " of " << ours.size()
                   << " codes one entry from bitsandbytes', " << tiny << " below 1e-3 of the absmax elsewhere");
      return;
    }
    float scale = 0.0f;
    for (float x : theirs) scale = std::max(scale, std::fabs(x));
    // AdEMAMix's slow moment takes 1 - beta3, 1.7e-4 relative apart at 0.9999 between float and double.
    CHECK(count_off(ours, theirs, (key.find("exp_avg_slow") == std::string::npos ? 3e-5f : 2e-4f) * scale) == 0);
  });
  CHECK(checked == static_cast<int64_t>(names.size()));
}

void check_case(const std::string& name, float lr, const MakeOptimizer& make, const StateNames& names) {
  for (int t = 0; t < kSteps; t++) check_update(name, t, lr, make, names);
}

}  // namespace

TEST_CASE("8-bit AdamW: bitsandbytes' AdamW(optim_bits=8), its codes and absmax per 256 elements") {
  check_case(
      "adamw_8bit", 2e-3f,
      [](std::vector<OptimParam> params) {
        return std::make_unique<AdamW>(std::move(params), AdamWConfig{0.9f, 0.999f, 1e-8f, kWeightDecay},
                                       AdamWState::blockwise_8bit);
      },
      {{"w.exp_avg.codes", "w.state1"}, {"w.exp_avg.absmax", "w.absmax1"}, {"w.exp_avg_sq.codes", "w.state2"},
       {"w.exp_avg_sq.absmax", "w.absmax2"}, {"norm.exp_avg", "norm.state1"}, {"norm.exp_avg_sq", "norm.state2"}});
}

TEST_CASE("Lion: bitsandbytes' Lion, f32 momentum") {
  check_case(
      "lion_32bit", 1e-3f,
      [](std::vector<OptimParam> params) {
        return std::make_unique<Lion>(std::move(params), AdamWConfig{0.9f, 0.999f, 0.0f, kWeightDecay});
      },
      {{"w.exp_avg", "w.state1"}, {"norm.exp_avg", "norm.state1"}});
}

TEST_CASE("Lion 8-bit: bitsandbytes' Lion(optim_bits=8), the momentum's codes and absmax") {
  check_case(
      "lion_8bit", 1e-3f,
      [](std::vector<OptimParam> params) {
        return std::make_unique<Lion>(std::move(params), AdamWConfig{0.9f, 0.999f, 0.0f, kWeightDecay},
                                      AdamWState::blockwise_8bit);
      },
      {{"w.exp_avg.codes", "w.state1"}, {"w.exp_avg.absmax", "w.absmax1"}, {"norm.exp_avg", "norm.state1"}});
}

TEST_CASE("AdEMAMix: bitsandbytes' AdEMAMix, f32 and 8-bit moments (m1, m2 and nu)") {
  const AdamWConfig adam{0.9f, 0.999f, 1e-8f, kWeightDecay};
  for (const AdamWState state : {AdamWState::f32, AdamWState::blockwise_8bit}) {
    const bool q8 = state == AdamWState::blockwise_8bit;
    const StateNames f32_names{{"w.exp_avg", "w.state1[0]"}, {"w.exp_avg_slow", "w.state1[1]"}, {"w.exp_avg_sq", "w.state2"}};
    const StateNames q8_names{{"w.exp_avg.codes", "w.state1[0]"},      {"w.exp_avg.absmax", "w.absmax1[0]"},
                              {"w.exp_avg_slow.codes", "w.state1[1]"}, {"w.exp_avg_slow.absmax", "w.absmax1[1]"},
                              {"w.exp_avg_sq.codes", "w.state2"},      {"w.exp_avg_sq.absmax", "w.absmax2"}};
    StateNames names = q8 ? q8_names : f32_names;
    names.insert({{"norm.exp_avg", "norm.state1[0]"}, {"norm.exp_avg_slow", "norm.state1[1]"},
                  {"norm.exp_avg_sq", "norm.state2"}});
    check_case(q8 ? "ademamix_8bit" : "ademamix", 2e-3f,
               [&](std::vector<OptimParam> params) {
                 return std::make_unique<AdEMAMix>(std::move(params), adam, AdemamixConfig{}, state);
               },
               names);
  }
}

// transformers' rmsprop_bnb*: torch's RMSprop update (decay added to the gradient, no momentum),
// square_avg f32 or on the signed map.
TEST_CASE("RMSprop: bitsandbytes' RMSprop, f32 and 8-bit square_avg") {
  for (const bool q8 : {false, true}) {
    TorchOptimConfig config;
    config.kind = TorchOptimKind::rmsprop;
    config.weight_decay = kWeightDecay;
    config.eps = 1e-8;  // bitsandbytes' default, as torch's RMSprop's
    config.blockwise_8bit = q8;
    StateNames names = q8 ? StateNames{{"w.square_avg.codes", "w.state1"}, {"w.square_avg.absmax", "w.absmax1"}}
                          : StateNames{{"w.square_avg", "w.state1"}};
    names.insert({"norm.square_avg", "norm.state1"});
    check_case(q8 ? "rmsprop_8bit" : "rmsprop_32bit", 1e-3f,
               [&](std::vector<OptimParam> params) { return std::make_unique<TorchOptimizer>(std::move(params), config); },
               names);
  }
}
