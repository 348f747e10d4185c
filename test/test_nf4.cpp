// NF4 (engine/nf4.h) against bitsandbytes 0.50.2 itself (tools/make_nf4_reference.py): codes,
// double-quantised absmax, offset, scales and the dequantised weight; then the quantized_linear op
// against an f32 matmul with the dequantised weight, forward and dx.
#include <cstring>

#include "engine/backend.h"
#include "engine/nf4.h"
#include "engine/ops.h"
#include "engine/quant_map.h"
#include "io/safetensors.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {

const SafetensorsFile& reference() {
  static const SafetensorsFile file(LLM_NF4_REFERENCE_DIR "/reference.safetensors");
  return file;
}
// The reference tensor `what` of case `name` ("codes", "square" -> codes.square).
std::vector<float> bnb(const std::string& what, const std::string& name = "") {
  return reference().read(name.empty() ? what : what + "." + name, DType::f32).to_floats();
}

std::vector<float> u8_as_floats(const Tensor& t) {
  std::vector<float> out(t.numel());
  for (int64_t i = 0; i < t.numel(); i++) out[i] = t.data<uint8_t>()[i];
  return out;
}

// Bit-identical f32 values.
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

// bnb builds its dynamic map with torch.linspace in f32, whose rounding differs from ours by one
// unit in the last place in 28 of the 256 entries.
TEST_CASE("bitsandbytes' NF4 code values are ours, its dynamic map ours to one ulp") {
  CHECK(same_bits(bnb("nf4_code"), std::vector<float>(kNf4Code, kNf4Code + 16)));
  const std::array<float, 256> map = dynamic_quant_map(true);
  const std::vector<float> want = bnb("state2_code");
  for (int i = 0; i < 256; i++) CHECK(map[i] == doctest::Approx(want[i]).epsilon(1.2e-7));
}

// square: 64 blocks; odd: 259 elements (a partial block, a padded nibble); rows: 302 blocks with
// a partial one, two double-quantisation scales, zero blocks, row scales over four decades.
TEST_CASE("nf4_quantize and nf4_dequantize match bitsandbytes' quantize_4bit / dequantize_4bit") {
  for (const char* name : {"square", "odd", "rows"}) {
    CAPTURE(name);
    const Tensor w = reference().read(std::string("w.") + name, DType::f32);
    const QuantWeight nested = nf4_quantize(w, true), plain = nf4_quantize(w, false);
    CHECK(u8_as_floats(nested.codes) == bnb("codes", name));
    CHECK(u8_as_floats(plain.codes) == bnb("codes", name));
    CHECK(same_bits(plain.absmax.to_floats(), bnb("absmax", name)));
    CHECK(u8_as_floats(nested.absmax) == bnb("absmax_codes", name));
    // bnb's offset is torch's f32 mean (its own summation order); ours sums in f64.
    CHECK(nested.absmax_offset == doctest::Approx(bnb("offset", name)[0]).epsilon(1e-6));
    const std::vector<float> scale = nested.absmax_scale.to_floats(), want_scale = bnb("state2_absmax", name);
    REQUIRE(scale.size() == want_scale.size());
    for (size_t i = 0; i < scale.size(); i++) CHECK(scale[i] == doctest::Approx(want_scale[i]).epsilon(1e-6));
    const Tensor want = reference().read(std::string("dequant.") + name, DType::f32);
    // The map's one-ulp differences reach the absmax, and through it the values.
    CHECK(max_abs_diff(dequantize(nested, DType::f32), want) <= 1e-6f * max_abs(want));
    CHECK(same_bits(dequantize(plain, DType::f32).to_floats(), bnb("dequant_plain", name)));
    CHECK(nested.nbytes() == nested.codes.nbytes() + nested.absmax.nbytes() + nested.absmax_scale.nbytes() + 4);
  }
}

TEST_CASE("nf4_quantize is deterministic and dequantises to bf16 as the f32 values rounded") {
  const Tensor w = randn({33, 70}, 0.05f);
  const QuantWeight a = nf4_quantize(w, true), b = nf4_quantize(w, true);
  CHECK(u8_as_floats(a.codes) == u8_as_floats(b.codes));
  CHECK(u8_as_floats(a.absmax) == u8_as_floats(b.absmax));
  CHECK(same_bits(dequantize(a, DType::bf16).to_floats(),
                  dequantize(a, DType::f32).to(DType::bf16).to_floats()));
  // From bf16 storage, as the weights of a bf16 base arrive: the same as from their f32 values.
  const Tensor w16 = w.to(DType::bf16);
  CHECK(u8_as_floats(nf4_quantize(w16, true).codes) == u8_as_floats(nf4_quantize(w16.to(DType::f32), true).codes));
}

TEST_CASE("quantized_linear: x W^T with W dequantised; dx only, as f32 linear on the dequantised W") {
  for (bool double_quant : {true, false}) {
    CAPTURE(double_quant);
    const QuantWeight w = nf4_quantize(randn({13, 65}, 0.1f), double_quant);  // odd: 845 elements
    const Tensor dense = dequantize(w, DType::f32);
    Tensor x = randn({2, 7, 65}), x_ref = x.clone();
    x.set_requires_grad(true);
    x_ref.set_requires_grad(true);
    const Tensor seed = randn({2, 7, 13});
    const Tensor y = quantized_linear(x, w);  // each graph backpropagated before the next is recorded
    backward(y, seed);
    const Tensor y_ref = linear(x_ref, dense);
    backward(y_ref, seed);
    REQUIRE(y.shape() == Shape{2, 7, 13});
    CHECK(max_abs_diff(y, y_ref) <= 1e-5f * max_abs(y_ref));
    CHECK(max_abs_diff(x.grad(), x_ref.grad()) <= 1e-5f * max_abs(x_ref.grad()));
  }
  // Finite differences through x (the weight is a constant).
  const QuantWeight w = nf4_quantize(randn({6, 9}), true);
  check_gradients([&w](const std::vector<Tensor>& in) { return quantized_linear(in[0], w); }, {randn({5, 9})});
  CHECK_THROWS_WITH(quantized_linear(randn({3, 8}), w), doctest::Contains("quantized_linear: x f32[3, 8]"));
}
