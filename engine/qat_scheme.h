// defines: QatScheme (Axolotl's qat schemes, as its prepare_model_for_qat builds torchao's fake
// quantisers: what a linear layer's input and weight become; engine/ops.h's qat_input and
// qat_weight apply it)
#pragma once
#include <cstdint>

namespace llm {

struct QatScheme {
  // int8_absmax: ternary's inputs (symmetric per row, straight through).
  enum class Input { none, int8_per_token, fp8_per_row, mxfp4, int8_absmax };
  // int4_min_max: int4 for bf16 activations (min-max groups); int4_after_fp8: for fp8 activations
  // (fp8 rows, then symmetric groups); fp8_per_row: e4m3 rows; mxfp4: blocks of 32 along a row;
  // ternary: Axolotl's BitNet b1.58 rows (not torchao's).
  enum class Weight { none, int4_min_max, int4_after_fp8, fp8_per_row, mxfp4, ternary };
  Input input = Input::none;
  Weight weight = Weight::none;
  int64_t group = 0;  // the int4 weights' group size
  bool on() const { return weight != Weight::none; }
  // torchao's quantize_ swaps lm_head too; Axolotl's ternary swap leaves it in full precision.
  bool quantizes_head() const { return on() && weight != Weight::ternary; }
  bool operator==(const QatScheme& o) const { return input == o.input && weight == o.weight && group == o.group; }
};

}  // namespace llm
