// torchao's own AdamW8bit (0.18 on the CPU, its update torch.compile'd;
// tools/make_torchao_optimizer_reference.py) against ours, update by update: each of three updates
// starts from torchao's parameters and state (imported as a checkpoint's would be) and must give its
// next ones bit for bit: a 4 x 1024 weight (16 blocks of 256, 8-bit state, weight decay, a block of
// small values, a block of zero gradients) and a 64-element norm (f32 state, no decay).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <map>

#include "engine/autograd.h"
#include "engine/torchao_adamw.h"
#include "io/safetensors.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {

Tensor torchao(const std::string& name) {
  static const SafetensorsFile file(LLM_TORCHAO_OPTIMIZER_REFERENCE_DIR "/reference.safetensors");
  return file.read(name, DType::f32);
}

// Ours -> torchao's names of a state tensor ("w.exp_avg.absmax" is its scale).
std::string reference_name(const std::string& ours) {
  const std::string absmax = ".absmax";
  if (ours.size() > absmax.size() && ours.compare(ours.size() - absmax.size(), absmax.size(), absmax) == 0)
    return ours.substr(0, ours.size() - absmax.size()) + ".scale";
  return ours;
}

Tensor as_dtype(const Tensor& f32, DType dtype) {  // codes are saved as F16, read here as floats
  if (dtype == DType::f32) return f32;
  Tensor codes = Tensor::zeros(f32.shape(), DType::u8, Device::cpu());
  const std::vector<float> v = f32.to_floats();
  for (size_t i = 0; i < v.size(); i++) codes.data<uint8_t>()[i] = static_cast<uint8_t>(v[i]);
  return codes;
}

}  // namespace

TEST_CASE("adamw_torch_8bit: torchao's AdamW8bit update by update, parameters, codes and scales bit for bit") {
  const TorchaoAdamWConfig config{0.9, 0.999, 1e-8, 0.1};
  for (int t = 0; t < 3; t++) {
    CAPTURE(t);
    const std::string before = std::to_string(t) + ".", after = std::to_string(t + 1) + ".";
    Tensor w = torchao(before + "w"), norm = torchao(before + "norm");
    w.set_requires_grad(true);
    norm.set_requires_grad(true);
    TorchaoAdamW8bit optimizer({{"w", &w, true}, {"norm", &norm, false}}, config);
    if (t > 0) {
      optimizer.import_state([&](const std::string& key, const Shape& shape, DType dtype, int64_t begin, int64_t count) {
        Tensor value = as_dtype(torchao(before + reference_name(key)), dtype);
        REQUIRE(shape_numel(value.shape()) == shape_numel(shape));
        return value.reshape({value.numel()}).narrow(0, begin, count);
      });
      optimizer.set_steps_taken(t);
    }
    accumulate_grad(*w.autograd_meta(), torchao("grad.w." + std::to_string(t)));
    accumulate_grad(*norm.autograd_meta(), torchao("grad.norm." + std::to_string(t)));
    optimizer.step(2e-3f);
    CHECK(w.to_floats() == torchao(after + "w").to_floats());
    CHECK(norm.to_floats() == torchao(after + "norm").to_floats());
    int64_t checked = 0;
    optimizer.export_state([&](const std::string& key, const Tensor& value) {
      CAPTURE(key);
      const Tensor theirs = torchao(after + reference_name(key));
      CHECK(value.to_floats() == theirs.to_floats());
      checked++;
    });
    CHECK(checked == 6);  // w: two moments' codes and scales; norm: two f32 moments
  }
}
