// torchao's own AdamW8bit and AdamW4bit (0.18 on the CPU, their updates torch.compile'd;
// tools/make_torchao_optimizer_reference.py) against ours, update by update: each of three updates
// starts from torchao's parameters and state (imported as a checkpoint's would be) and must give its
// next ones bit for bit: a 4 x 1024 weight (16 blocks of 256, 8- or 4-bit state, weight decay, a
// block of small values, a block of zero gradients) and a 64-element norm (f32 state, no decay).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <map>

#include "engine/autograd.h"
#include "engine/quant_map.h"
#include "engine/torchao_adamw.h"
#include "io/safetensors.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {

// Tensor `name` of torchao's run with codes `code_bits` wide.
Tensor torchao(int code_bits, const std::string& name) {
  static const SafetensorsFile eight(LLM_TORCHAO_OPTIMIZER_REFERENCE_DIR "/reference.safetensors");
  static const SafetensorsFile four(LLM_TORCHAO_OPTIMIZER_REFERENCE_DIR "/reference_4bit.safetensors");
  return (code_bits == 4 ? four : eight).read(name, DType::f32);
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

// Three updates of torchao's AdamW with `code_bits` codes, each from torchao's state, against its next.
void check_updates(int code_bits) {
  TorchaoAdamWConfig config{0.9, 0.999, 1e-8, 0.1};
  config.code_bits = code_bits;
  auto theirs = [code_bits](const std::string& name) { return torchao(code_bits, name); };
  for (int t = 0; t < 3; t++) {
    CAPTURE(t);
    const std::string before = std::to_string(t) + ".", after = std::to_string(t + 1) + ".";
    Tensor w = theirs(before + "w"), norm = theirs(before + "norm");
    w.set_requires_grad(true);
    norm.set_requires_grad(true);
    TorchaoAdamW optimizer({{"w", &w, true}, {"norm", &norm, false}}, config);
    if (t > 0) {
      optimizer.import_state([&](const std::string& key, const Shape& shape, DType dtype, int64_t begin, int64_t count) {
        Tensor value = as_dtype(theirs(before + reference_name(key)), dtype);
        REQUIRE(shape_numel(value.shape()) == shape_numel(shape));
        return value.reshape({value.numel()}).narrow(0, begin, count);
      });
      optimizer.set_steps_taken(t);
    }
    accumulate_grad(*w.autograd_meta(), theirs("grad.w." + std::to_string(t)));
    accumulate_grad(*norm.autograd_meta(), theirs("grad.norm." + std::to_string(t)));
    optimizer.step(2e-3f);
    CHECK(w.to_floats() == theirs(after + "w").to_floats());
    CHECK(norm.to_floats() == theirs(after + "norm").to_floats());
    int64_t checked = 0;
    optimizer.export_state([&](const std::string& key, const Tensor& value) {
      CAPTURE(key);
      CHECK(value.to_floats() == theirs(after + reference_name(key)).to_floats());
      checked++;
    });
    CHECK(checked == 6);  // w: two moments' codes and scales; norm: two f32 moments
  }
}

}  // namespace

TEST_CASE("adamw_torch_8bit: torchao's AdamW8bit update by update, parameters, codes and scales bit for bit") {
  check_updates(8);
}

// Its 4-bit codes pack two a byte (4096 elements: 2048 bytes a moment), v on a map without zero.
TEST_CASE("adamw_torch_4bit: torchao's AdamW4bit update by update, parameters, packed codes and scales bit for bit") {
  check_updates(4);
}

TEST_CASE("torchao's 4-bit maps: the signed dynamic map of 3 exponent bits, and v's 16 linear steps") {
  const std::array<float, 16> m = torchao_4bit_map(true), v = torchao_4bit_map(false);
  // torchao 0.18's get_qmap_signed(), as torch.float32.
  const std::array<float, 16> expected_m = {-0.887499988079071f, -0.6625000238418579f, -0.4375f, -0.21249999105930328f,
                                            -0.07750000059604645f, -0.0325000025331974f, -0.005499999970197678f, 0.0f,
                                            0.005499999970197678f, 0.0325000025331974f, 0.07750000059604645f,
                                            0.21249999105930328f, 0.4375f, 0.6625000238418579f, 0.887499988079071f, 1.0f};
  CHECK(m == expected_m);
  for (int k = 0; k < 16; k++) CHECK(v[k] == (k + 1) / 16.0f);
  // The nearest code, ties up; below v's first step its first code (a second moment is never 0).
  CHECK(quantize_torchao<16>(v.data(), 0.0f) == 0);
  CHECK(quantize_torchao<16>(v.data(), 0.09375f) == 1);  // halfway between 1/16 and 2/16: up
  CHECK(quantize_torchao<16>(v.data(), 0.0937f) == 0);
  CHECK(quantize_torchao<16>(v.data(), 1.0f) == 15);
  CHECK(quantize_torchao<16>(m.data(), -1.0f) == 0);
  CHECK(quantize_torchao<16>(m.data(), 0.0f) == 7);
}
