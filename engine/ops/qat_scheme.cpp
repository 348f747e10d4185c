// defines: qat_input, qat_weight (Axolotl's qat schemes on a linear layer's input and weight, as
// torchao's FakeQuantizedLinear applies its two quantisers)
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

namespace {
// torchao's Int4WeightFakeQuantizer for fp8 activations first casts the weight to fp8 per row
// with this floor under each row's largest magnitude (MSLK's quantize_fp8_row).
constexpr float kFp8WeightFloor = 1e-12f;
}  // namespace

Tensor qat_input(const Tensor& x, const QatScheme& scheme) {
  switch (scheme.input) {
    case QatScheme::Input::none: return x;
    case QatScheme::Input::int8_per_token: return fake_quantize_int8_rows(x);
    case QatScheme::Input::fp8_per_row: return fake_quantize_fp8_rows(x);
    case QatScheme::Input::mxfp4: return fake_quantize_mxfp4(x);
    case QatScheme::Input::int8_absmax: return fake_quantize_int8_absmax(x);
  }
  LLM_CHECK(false, "qat_input: unknown input scheme");
  return x;
}

Tensor qat_weight(const Tensor& w, const QatScheme& scheme) {
  switch (scheme.weight) {
    case QatScheme::Weight::none: return w;
    case QatScheme::Weight::int4_min_max: return fake_quantize_int4(w, scheme.group);
    case QatScheme::Weight::int4_after_fp8:
      return fake_quantize_int4_symmetric(fake_quantize_fp8_rows(w, kFp8WeightFloor), scheme.group);
    case QatScheme::Weight::fp8_per_row: return fake_quantize_fp8_rows(w);
    case QatScheme::Weight::mxfp4: return fake_quantize_mxfp4(w);
    case QatScheme::Weight::ternary: return fake_quantize_ternary(w);
  }
  LLM_CHECK(false, "qat_weight: unknown weight scheme");
  return w;
}

}  // namespace llm
