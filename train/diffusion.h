// defines: DiffusionSettings (Axolotl's DiffusionPlugin: its `diffusion:` map) and
// draw_diffusion_masks, the forward process of one micro-batch.
//
// Diffusion language-model training as Axolotl's plugin runs it on a causal LM (LLaDA, Nie et al.
// 2025): each row draws a time t ~ U[0, 1) and masks each of its tokens with probability
// p = (1 - eps) t + eps, never a special token (BOS, EOS, pad) nor one whose label is -100. The
// model reads the row with the masked tokens replaced by the mask token, every attention
// bidirectional within its document, and is scored on the masked tokens only, each by the logits
// one position to its left (HF's next-token logits shifted right: the head keeps its meaning;
// position 0 by its own). A row's loss is the sum of those token losses, each divided by p
// (importance_weighting), over the row's count of labelled tokens; the micro-batch's is the
// mean over its rows.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace llm {

struct DiffusionSettings {
  bool on = false;  // plugins lists DiffusionPlugin
  double eps = 1e-3;
  bool importance_weighting = true;
  // The mask token: mask_token_id when it is a plain token of the vocabulary (below
  // Tokenizer::base_vocab_size), else mask_token_str (default <|diffusion_mask|>), added to the
  // tokenizer when it is not in it (the embedding and lm_head grow), as Axolotl resolves it.
  int64_t mask_token_id = -1;  // < 0: unset
  std::string mask_token_str;  // empty: unset
  std::string mask_token() const { return mask_token_str.empty() ? "<|diffusion_mask|>" : mask_token_str; }
  // Sample generation (train/diffusion_samples.h), Axolotl's defaults: every generation_interval
  // steps, num_generation_samples rows of at most generation_max_length tokens, generation_steps
  // passes at generation_temperature.
  bool generate_samples = true;
  int64_t generation_interval = 100, num_generation_samples = 3, generation_steps = 128, generation_max_length = 100;
  double generation_temperature = 0.0;
  bool operator==(const DiffusionSettings& o) const {
    return on == o.on && eps == o.eps && importance_weighting == o.importance_weighting &&
           mask_token_id == o.mask_token_id && mask_token_str == o.mask_token_str &&
           generate_samples == o.generate_samples && generation_interval == o.generation_interval &&
           num_generation_samples == o.num_generation_samples && generation_steps == o.generation_steps &&
           generation_max_length == o.generation_max_length && generation_temperature == o.generation_temperature;
  }
};

// One micro-batch's draw: what the forward reads and how its loss is formed from the per-row
// log-likelihoods (LlamaModel::row_logps) of the scored tokens.
struct DiffusionDraw {
  std::vector<int32_t> noisy;  // (B*S) the inputs with the masked tokens replaced by the mask token
  // One entry per masked token: the hidden row that scores it (b*S + max(i - 1, 0)), its token and
  // its row b. Never empty: with no token masked, one entry of target -100 (no loss, zero
  // gradients) keeps the backward's shape.
  std::vector<int32_t> rows, targets, sequences;
  // (B) the loss's derivative in each row's summed log-likelihood: -(1/p_b or 1) / (max(A_b, 1) B),
  // A_b the row's labelled tokens (0 for a row with nothing masked). The micro-batch's loss is
  // sum_b coefficients[b] logps[b].
  std::vector<float> coefficients;
  int64_t masked = 0;  // tokens masked
  // For the metrics: the micro-batch's tokens (B*S) and labelled ones, and over the masked
  // tokens the sums of p and of 1/p.
  int64_t tokens = 0, labelled = 0;
  double p_sum = 0, inverse_p_sum = 0;
};

// Axolotl's diffusion trainer's logged metrics, which it keeps per micro-batch (store_metrics, on
// rank 0) and averages at each log (num_masked_tokens summed): sums since the last log line.
struct DiffusionMetrics {
  double micro_batches = 0, mask_ratio = 0, num_masked_tokens = 0, avg_p_mask = 0, ce_loss = 0, answer_ratio = 0,
         avg_answer_length = 0, importance_weight_avg = 0, accuracy = 0;
  // One micro-batch of B rows: its draw, its masked tokens' summed cross-entropy and the count of
  // them whose logits' argmax is the token.
  void add(const DiffusionDraw& draw, int64_t B, double ce_sum, double hits, bool importance_weighting);
  // The means (num_masked_tokens the sum) as metrics.jsonl members, ", \"<prefix>mask_ratio\": ...";
  // "" without a micro-batch.
  std::string json(const std::string& prefix) const;
  std::string text() const;  // " | ce_loss 3.1 | mask_ratio 0.48" for the log line
  // The sums as one array, for a checkpoint, and back.
  static constexpr int kFields = 9;
  void to_array(double* out) const;
  static DiffusionMetrics from_array(const double* in);
};

// inputs and labels (each token's own label) i32 (B, S) in row order; `special` the ids never
// masked; `seed` picks every draw (a function of it alone: a resumed run draws the same masks).
DiffusionDraw draw_diffusion_masks(const std::vector<int32_t>& inputs, const std::vector<int32_t>& labels, int64_t B,
                                   int64_t S, const DiffusionSettings& settings, int32_t mask_id,
                                   const std::vector<int32_t>& special, uint64_t seed);

}  // namespace llm
