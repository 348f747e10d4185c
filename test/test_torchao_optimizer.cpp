// torchao's own AdamW8bit, AdamW4bit and AdamWFp8 (0.18 on the CPU, their updates torch.compile'd;
// tools/make_torchao_optimizer_reference.py) against ours, update by update: each of three updates
// starts from torchao's parameters and state (imported as a checkpoint's would be) and must give its
// next ones bit for bit: a 4 x 1024 weight (16 blocks of 256, 8-bit, 4-bit or fp8 state, weight decay, a
// block of small values, a block of zero gradients) and a 64-element norm (f32 state, no decay).
#include <map>

#include "engine/autograd.h"
#include "engine/quant_map.h"
#include "engine/torchao_adamw.h"
#include "io/safetensors.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {

// Tensor `name` of torchao's run with `codes`.
Tensor torchao(TorchaoCodes codes, const std::string& name) {
  static const SafetensorsFile eight(LLM_TORCHAO_OPTIMIZER_REFERENCE_DIR "/reference.safetensors");
  static const SafetensorsFile four(LLM_TORCHAO_OPTIMIZER_REFERENCE_DIR "/reference_4bit.safetensors");
  static const SafetensorsFile fp8(LLM_TORCHAO_OPTIMIZER_REFERENCE_DIR "/reference_fp8.safetensors");
  const SafetensorsFile& file = codes == TorchaoCodes::dynamic_4bit ? four : codes == TorchaoCodes::fp8 ? fp8 : eight;
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

// Three updates of torchao's AdamW with `codes`, each from torchao's state, against its next.
void check_updates(TorchaoCodes codes) {
  const TorchaoAdamWConfig config{0.9, 0.999, 1e-8, 0.1, codes};
  auto theirs = [codes](const std::string& name) { return torchao(codes, name); };
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
  check_updates(TorchaoCodes::dynamic_8bit);
}

// Its 4-bit codes pack two a byte (4096 elements: 2048 bytes a moment), v on a map without zero.
TEST_CASE("adamw_torch_4bit: torchao's AdamW4bit update by update, parameters, packed codes and scales bit for bit") {
  check_updates(TorchaoCodes::dynamic_4bit);
}

// Its codes are float8_e4m3fn bytes of m / scale and v / scale, the scale a block's absmax / 448.
TEST_CASE("ao_adamw_fp8: torchao's AdamWFp8 update by update, parameters, float8 codes and scales bit for bit") {
  check_updates(TorchaoCodes::fp8);
}

TEST_CASE("float8 e4m3 bytes: every byte's value, and back from the rounded value") {
  const QuantMap<256> map = TorchaoFp8BlockQuant::table(true);
  const float* values = map.value;
  CHECK(values[0x00] == 0.0f);
  CHECK(values[0x01] == 0.001953125f);  // the smallest subnormal, 2^-9
  CHECK(values[0x08] == 0.015625f);     // the smallest normal, 2^-6
  CHECK(values[0x38] == 1.0f);
  CHECK(values[0x7E] == 448.0f);
  CHECK(values[0xFE] == -448.0f);
  CHECK(std::isnan(values[0x7F]));
  CHECK(std::isnan(values[0xFF]));
  for (int byte = 0; byte < 256; byte++) {
    CAPTURE(byte);
    if (byte == 0x7F || byte == 0xFF) continue;
    CHECK(e4m3_byte(values[byte]) == byte);  // -0 is 0x80
  }
  const Fp8Spec e4m3 = fp8_spec(Fp8Format::e4m3);
  CHECK(e4m3_byte(round_to_fp8(1.0625f, e4m3)) == 0x38);  // halfway between 1 and 1.125: to even
  CHECK(e4m3_byte(round_to_fp8(448.0001f, e4m3)) == 0x7E);
  CHECK(e4m3_byte(NAN) == 0x7F);
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
  const QuantMap<16> m_map = make_quant_map(m), v_map = make_quant_map(v);
  CHECK(quantize_torchao(v_map, 0.0f) == 0);
  CHECK(quantize_torchao(v_map, 0.09375f) == 1);  // halfway between 1/16 and 2/16: up
  CHECK(quantize_torchao(v_map, 0.0937f) == 0);
  CHECK(quantize_torchao(v_map, 1.0f) == 15);
  CHECK(quantize_torchao(m_map, -1.0f) == 0);
  CHECK(quantize_torchao(m_map, 0.0f) == 7);
}
