// LLM.int8's row-wise int8 weights (engine/int8.h) against bitsandbytes 0.50.2 itself
// (tools/make_int8_reference.py): Int8Params' codes (CB) and row scales (SCB) exactly, and
// int8_vectorwise_dequant bit for bit; then quantized_linear on an int8 weight.
#include <cstring>

#include "engine/int8.h"
#include "engine/ops.h"
#include "io/safetensors.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {

const SafetensorsFile& reference() {
  static const SafetensorsFile file(LLM_INT8_REFERENCE_DIR "/reference.safetensors");
  return file;
}
std::vector<float> bnb(const std::string& what, const std::string& name) {
  return reference().read(what + "." + name, DType::f32).to_floats();
}

std::vector<float> i8_as_floats(const Tensor& t) {
  std::vector<float> out(t.numel());
  for (int64_t i = 0; i < t.numel(); i++) out[i] = static_cast<int8_t>(t.data<uint8_t>()[i]);
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

// square: weights of std 0.02 (many fall between fp16 values); rows: scales from 1e-7 (fp16
// subnormals) to 10 and a row whose absmax is negative; ties: products of exactly k + 0.5.
TEST_CASE("int8_quantize and dequantize match bitsandbytes' Int8Params and int8_vectorwise_dequant") {
  for (const std::string name : {"square", "rows", "ties"}) {
    CAPTURE(name);
    const Tensor w = reference().read("w." + name, DType::f32);
    const QuantWeight q = int8_quantize(w);
    CHECK(q.format == QuantFormat::int8);
    CHECK(i8_as_floats(q.codes) == bnb("codes", name));
    CHECK(same_bits(q.absmax.to_floats(), bnb("scb", name)));
    CHECK(same_bits(dequantize(q, DType::f32).to_floats(), bnb("dequant", name)));
    CHECK(q.nbytes() == q.codes.nbytes() + q.absmax.nbytes());
    // From bf16 storage: the same as from its f32 values; bf16 output is the f32 values rounded.
    const Tensor w16 = w.to(DType::bf16);
    CHECK(i8_as_floats(int8_quantize(w16).codes) == i8_as_floats(int8_quantize(w16.to(DType::f32)).codes));
    CHECK(same_bits(dequantize(q, DType::bf16).to_floats(), dequantize(q, DType::f32).to(DType::bf16).to_floats()));
  }
}

TEST_CASE("int8_quantize: an all-zero row stays zero; beyond fp16's range is refused") {
  std::vector<float> v(12, 0.0f);
  v[7] = 0.5f;  // row 1 of (3, 4); rows 0 and 2 are zero
  const QuantWeight q = int8_quantize(Tensor::from_floats(v, {3, 4}));
  CHECK(dequantize(q, DType::f32).to_floats() == std::vector<float>{0, 0, 0, 0, 0, 0, 0, 0.5f, 0, 0, 0, 0});
  v[0] = 70000.0f;
  CHECK_THROWS_WITH(int8_quantize(Tensor::from_floats(v, {3, 4})), doctest::Contains("exceeds fp16's range"));
}

TEST_CASE("quantized_linear on an int8 weight: x W^T with W dequantised; dx as f32 linear") {
  const QuantWeight w = int8_quantize(randn({13, 65}, 0.1f));
  const Tensor dense = dequantize(w, DType::f32);
  Tensor x = randn({2, 7, 65}), x_ref = x.clone();
  x.set_requires_grad(true);
  x_ref.set_requires_grad(true);
  const Tensor seed = randn({2, 7, 13});
  const Tensor y = quantized_linear(x, w);
  backward(y, seed);
  const Tensor y_ref = linear(x_ref, dense);
  backward(y_ref, seed);
  CHECK(max_abs_diff(y, y_ref) <= 1e-5f * max_abs(y_ref));
  CHECK(max_abs_diff(x.grad(), x_ref.grad()) <= 1e-5f * max_abs(x_ref.grad()));
  const QuantWeight small = int8_quantize(randn({6, 9}));
  check_gradients([&small](const std::vector<Tensor>& in) { return quantized_linear(in[0], small); }, {randn({5, 9})});
}
