// The inputs of a transformers reference fixture (tools/make_hf_reference.py): reference.json's
// token ids as our model takes them, with the targets shifted as HF shifts labels. Used by
// test_hf and test_lora.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/ops.h"
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

}  // namespace llm::testing
