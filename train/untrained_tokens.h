// defines: UntrainedTokens, find_untrained_tokens, fix_untrained_tokens: Axolotl's
// fix_untrained_tokens (Unsloth's fix, in its LGPL contributions), which gives the rows of a base
// model's never-trained tokens (Llama 3's reserved special tokens: embed_tokens rows of zeros) that
// the training data uses the trained rows' mean, scaled by how often each occurs, before training.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace llm {

struct UntrainedTokens {
  std::vector<int64_t> ids;  // the rows to rewrite, ascending
  std::vector<double> scales;  // each one's count in the data / the most frequent token's count
  std::vector<double> embed_mean, head_mean;  // the trained rows' means (C each)
};

// What the fix rewrites, from f32 host matrices embed (V, C) and head (V, C; the same one when
// tied), as Axolotl finds it:
// - untrained: a row of embed whose largest value is <= 1e-16, whose head row also is (largest
//   <= 1e-16) or, rounded to 3 decimals, equals another such candidate's head row; never `pad`;
//   plus `extra` (the key's list);
// - nothing, unless one of them is in `template_ids` (the chat template's special tokens) or in
//   the first or last 250 training examples (`examples`, their token ids in order);
// - the rows of those the training examples use, each set to the mean of the rows not found
//   untrained (their sum less the untrained ones' over V - found) x its count / the largest count.
// `trains` false (embed_tokens or lm_head frozen): a UserError naming the ids the first or last 250
// (or else 2000) examples use, as Axolotl raises, or nothing when they use none.
UntrainedTokens find_untrained_tokens(const float* embed, const float* head, int64_t vocab, int64_t hidden,
                                      int64_t pad, const std::vector<int64_t>& extra,
                                      const std::vector<int64_t>& template_ids,
                                      const std::vector<std::vector<int32_t>>& examples, bool trains);

// Rewrites the rows of `embed` and `head` (any device; `head` may be `embed`, tied) as found,
// each value rounded to `model_dtype` as Axolotl casts the rows to its weights' dtype (bf16 in a
// bf16 run, whose f32 master rows then hold bf16 values, as every row loaded from bf16 does).
void apply_untrained_tokens(const UntrainedTokens& fix, Tensor& embed, Tensor& head, DType model_dtype);

}  // namespace llm
