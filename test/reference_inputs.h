// The inputs of a transformers reference fixture (tools/make_hf_reference.py): reference.json's
// token ids as our model takes them, with the targets shifted as HF shifts labels. Used by the
// suites held to transformers' numbers (test_hf, test_lora_peft, test_qlora, test_qat, test_fp8).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "io/safetensors.h"
#include "model/llama.h"
#include "test/test_files.h"
#include "test/test_util.h"

namespace llm::testing {

inline TokenBatch reference_inputs(const std::string& reference_json) {
  const nlohmann::json ref = nlohmann::json::parse(read_file(reference_json));
  const auto rows = ref["ids"].get<std::vector<std::vector<int32_t>>>();
  const int64_t B = static_cast<int64_t>(rows.size()), S = static_cast<int64_t>(rows[0].size());
  std::vector<int32_t> ids, positions, targets;
  for (const std::vector<int32_t>& row : rows)
    for (int64_t i = 0; i < S; i++) {
      ids.push_back(row[i]);
      positions.push_back(static_cast<int32_t>(i));
      targets.push_back(i + 1 < S ? row[i + 1] : kIgnoreIndex);  // HF shifts labels the same way
    }
  return {Tensor::from_ints(ids, {B, S}), Tensor::from_ints(targets, {B * S}),
          Tensor::from_ints(positions, {B, S})};
}

// `model`, loaded from the reference fixture `hf_dir`, run with `opt` on its inputs against
// another tool's logits and gradients of that model with the same change (`want`: "logits" and
// "grad.<parameter>"; `loss`): within test_hf's tolerance (both f32, summed in other orders), and
// the plain forward far from them, so the comparison sees what `opt` changes.
inline void check_against_reference(LlamaModel& model, const std::string& hf_dir, const SafetensorsFile& want,
                                    double loss, const ForwardOptions& opt) {
  const TokenBatch in = reference_inputs(hf_dir + "/reference.json");
  auto check_close = [](const Tensor& got, const Tensor& expected) {
    const float scale = std::max(1.0f, max_abs(expected));
    INFO("max |ours - reference| " << max_abs_diff(got, expected) << ", max |reference| " << scale);
    CHECK(max_abs_diff(got, expected) <= 2e-5f * scale);
  };
  const Tensor logits = want.read("logits", DType::f32);
  check_close(model.logits(in.ids, in.positions, opt).reshape(logits.shape()), logits);
  CHECK(max_abs_diff(model.logits(in.ids, in.positions).reshape(logits.shape()), logits) > 1e-3f * max_abs(logits));
  Tensor got_loss = model.loss(in.ids, in.targets, in.positions, opt);
  CHECK(got_loss.item() == doctest::Approx(loss).epsilon(1e-6));
  backward(got_loss);
  for (const ParamRef& p : model.parameters()) {
    CAPTURE(p.name);
    check_close(p.tensor->grad(), want.read("grad." + p.name, DType::f32));
  }
}

}  // namespace llm::testing
