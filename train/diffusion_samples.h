// defines: the pieces of Axolotl's diffusion sample generation (its DiffusionPlugin's
// generate_samples, every generation_interval steps): which rows it takes, what it masks, and the
// reverse diffusion that fills the masks back in.
//
// A sample is a row of the evaluation batches (the training batches without them), cut to
// generation_max_length: with labels, its prompt and as many of its answer tokens as fit, every
// answer token masked; without, a random share of its tokens, uniform in [0.1, 0.7), masked. The
// model then reads the row bidirectionally generation_steps times; each pass predicts every
// masked token from the logits one position to its left (the mask token itself never), by argmax
// (temperature 0) or Gumbel sampling at the temperature, and keeps the most confident
// max(1, remaining / steps left) of them (all at the last step). The draws are seeded from
// llm_train's counter hash (permutations by torch's randperm algorithm), not from the state of
// torch's global generator that Axolotl draws from, so they are not Axolotl's.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace llm {

struct DiffusionSampleRow {
  std::vector<int32_t> ids, labels;  // the row's first tokens and their own labels (-100: a prompt's)
};

// Axolotl's cut of one row of `length` real tokens (no padding): nullopt for a row shorter than 10
// tokens, or one with labels but no answer token within max_length.
std::optional<DiffusionSampleRow> diffusion_sample_row(const int32_t* ids, const int32_t* labels, int64_t length,
                                                       int64_t max_length);

// Which tokens of the row the sample masks (1: masked), drawn from `seed`.
std::vector<uint8_t> diffusion_sample_mask(const DiffusionSampleRow& row, uint64_t seed);

// The (length, vocab) logits, f32 in row order, of the model reading `ids` bidirectionally.
using SampleLogits = std::function<std::vector<float>(const std::vector<int32_t>& ids)>;

// The reverse diffusion over `ids` (masked positions hold mask_id), `steps` passes.
std::vector<int32_t> denoise(std::vector<int32_t> ids, int32_t mask_id, int64_t vocab, int64_t steps,
                             double temperature, uint64_t seed, const SampleLogits& logits);

}  // namespace llm
