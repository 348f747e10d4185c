// HF interop: a model directory as transformers' LlamaForCausalLM.save_pretrained writes it and
// from_pretrained reads it (config.json + safetensors weights, io/safetensors.h), loaded into a
// LlamaModel and written back. Parameters carry HF's names, so the mapping is by name.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "io/safetensors.h"
#include "model/hf_config.h"
#include "model/llama.h"

namespace llm {

// Copies dir's weights into `model` (on whatever device it lives), by HF name. Every parameter
// must be there with exactly its shape and every tensor there must be a parameter (a tied
// model's lm_head.weight, which transformers ignores too, excepted). A sequence classifier
// (LlamaConfig::num_labels) ignores a causal LM's lm_head.weight too, and a score.weight missing
// from dir is drawn from `score_seed` (LlamaModel::draw_score_head). Returns the count loaded.
// growth (Axolotl's `tokens`, a vocabulary grown past dir's): embed_tokens and lm_head may have
// fewer rows in dir than the model; the rest start as transformers' resize starts them: drawn
// normal(0, initializer_range) from `seed` (its init; Axolotl's default), or with `mean` (its
// mean_resizing) the mean of dir's rows (transformers adds noise of 1e-9 x their covariance).
struct VocabularyGrowth {
  uint64_t seed = 0;
  bool mean = false;
  // A smaller vocabulary (Axolotl's shrink_embeddings): a larger saved table keeps its first rows,
  // as transformers' resize_token_embeddings cuts it.
  bool shrink = false;
};
int64_t load_hf_weights(LlamaModel& model, const std::string& dir, std::optional<VocabularyGrowth> growth = {},
                        uint64_t score_seed = 0);
// A weight read from `file` (f32, on the host) with a NaN or an infinity: UserError naming the file,
// the tensor and how many. Every loss from such weights is NaN, so no step could ever update.
void require_finite_weight(const Tensor& value, const std::string& file, const std::string& name);
// The same checks, then each weight read alone (f32, on the host) into `sink`, in base_weights()'
// order, and freed before the next is read: ZeRO-3's start-up keeps only this rank's slices.
int64_t read_hf_weights(LlamaModel& model, const std::string& dir, const WeightSink& sink,
                        std::optional<VocabularyGrowth> growth = {}, uint64_t score_seed = 0);

// Writes dir/config.json and the weights in `dtype` (model.safetensors, or shards and their
// index beyond max_shard_bytes).
void save_hf_model(LlamaModel& model, const std::string& dir, DType dtype, HfTokenIds ids,
                   uint64_t max_shard_bytes = kDefaultMaxShardBytes);
// The same from the tensors by HF name (a merged LoRA model's weights, model/peft_adapter.h).
void save_hf_tensors(const LlamaConfig& config, const std::vector<NamedTensor>& tensors,
                     const std::string& dir, DType dtype, HfTokenIds ids,
                     uint64_t max_shard_bytes = kDefaultMaxShardBytes);
// The same from a table and a producer (write_safetensors_dir's): a ZeRO run's final weights,
// gathered one bucket at a time while they are written.
void save_hf_tensors(const LlamaConfig& config, const std::vector<TensorEntry>& table,
                     const std::function<void(const TensorSink& put)>& produce, const std::string& dir,
                     DType dtype, HfTokenIds ids);

}  // namespace llm
