// LoRA adapters as PEFT defines them: a frozen linear layer W (out, in) gains a trainable pair
// A (r, in), B (out, r), and y = x W^T + (alpha / r) * dropout(x) A^T B^T. A starts as PEFT's
// nn.init.kaiming_uniform_(a=sqrt(5)), i.e. uniform(-1/sqrt(in), 1/sqrt(in)); B starts at zero,
// so an untrained adapter leaves the model exactly as it was.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"
#include "model/llama_config.h"

namespace llm {

// The linear layers of a Llama block, in HF's order: LoRA's target module names.
constexpr int kNumLinear = 7;
extern const char* const kLinearModules[kNumLinear];  // q_proj, k_proj, ..., down_proj
// "self_attn.q_proj", "mlp.down_proj": the module's path inside a block.
std::string linear_module_path(int kind);
int linear_module_index(const std::string& name);  // -1 when name is none of them

// The modules a LoRA run may train whole (Axolotl's lora_modules_to_save): embed_tokens, lm_head,
// and a sequence classifier's classifier and score, which PEFT's SEQ_CLS task adds to every such
// adapter (a reward model's; Llama has a score head and no module named classifier).
extern const std::vector<std::string> kSavableModules;

struct LoraConfig {
  int64_t r = 8;
  float alpha = 16.0f;
  float dropout = 0.0f;                      // on the adapters' input, training only
  std::vector<std::string> target_modules;   // of kLinearModules
  bool target_linear = false;                // every linear layer of the blocks
  std::vector<std::string> modules_to_save;  // of kSavableModules: trained whole
  bool saves(const std::string& module) const {
    return std::find(modules_to_save.begin(), modules_to_save.end(), module) != modules_to_save.end();
  }
  // PEFT's ensure_weight_tying (Axolotl's peft_ensure_weight_tying): on a tied model, modules_to_save
  // trains the one shared table. Without it PEFT trains each listed module as a copy of its own,
  // which the config resolves by untying the model (resolve_tied_modules_to_save).
  bool ensure_weight_tying = false;
  bool use_rslora = false;  // rank-stabilised LoRA (PEFT's use_rslora): alpha / sqrt(r)
  bool use_dora = false;    // DoRA (PEFT's use_dora): a learned magnitude per output feature
  std::vector<int64_t> layers;  // PEFT's layers_to_transform: the blocks that get adapters; empty: all
  // PEFT's layer_replication: [start, end) ranges of the base's blocks, stacked in order into the
  // blocks that train (LlamaModel::replicate_layers); layers and the patterns count in those.
  std::vector<std::pair<int64_t, int64_t>> layer_replication;
  // The blocks of a base of `base_layers` once replicated: the ranges' total, or base_layers.
  int64_t replicated_layers(int64_t base_layers) const {
    if (layer_replication.empty()) return base_layers;
    int64_t n = 0;
    for (const auto& [start, end] : layer_replication) n += end - start;
    return n;
  }
  // The base's blocks the ranges keep (their union), whose weights the replicated blocks share.
  int64_t base_layers_used(int64_t base_layers) const {
    if (layer_replication.empty()) return base_layers;
    std::vector<bool> used(static_cast<size_t>(base_layers), false);
    for (const auto& [start, end] : layer_replication)
      for (int64_t i = start; i < end && i < base_layers; i++) used[static_cast<size_t>(i)] = true;
    return std::count(used.begin(), used.end(), true);
  }
  // PEFT's target_modules given as one string: a regular expression (ECMAScript's, which reads
  // Python's common ones alike) that a module's whole HF name must match, as re.fullmatch; then
  // target_modules, target_linear and layers are unused (PEFT ignores layers_to_transform too).
  std::string target_pattern;
  // PEFT's rank_pattern and alpha_pattern (Axolotl's lora_rank_pattern, lora_alpha_pattern): in
  // the config's order, the first key that matches a module's HF name as PEFT's
  // re.match(rf"(.*\.)?({key})$", name) gives that module its own r (alpha); other modules keep
  // r (alpha).
  // PEFT's init_lora_weights: "true" (A Kaiming-uniform, B zero), "false" (B Kaiming-uniform
  // too: uniform in +-1/sqrt(r)), "gaussian" (A normal with std 1/r, B zero), or from the base
  // weight, which then holds the residual: "pissa", "pissa_niter_K", "olora" (model/lora_init.h).
  std::string init = "true";
  std::vector<std::pair<std::string, int64_t>> rank_pattern;
  std::vector<std::pair<std::string, float>> alpha_pattern;
  // PEFT's trainable_token_indices (Axolotl's peft_trainable_token_indices): rows of embed_tokens
  // (a plain list names these) and of an untied lm_head that train as a tensor of their own, the
  // rest of the table frozen (PEFT's TrainableTokensLayer). A tied lm_head reads the embedding's
  // trained rows, as PEFT ties them.
  std::vector<int64_t> embed_token_rows, head_token_rows;
  bool token_rows_listed = false;  // given as a plain list, as adapter_config.json writes it back
  bool trains_token_rows() const { return !embed_token_rows.empty() || !head_token_rows.empty(); }
  int64_t rank(int64_t layer, int kind) const;
  // alpha / r (alpha / sqrt(r) with use_rslora): of a module no pattern names, and of linear
  // `kind` in block `layer` by its own r and alpha.
  float scale() const { return scale_for(alpha, r); }
  float scale(int64_t layer, int kind) const;
  float scale_for(float module_alpha, int64_t module_r) const {
    const auto rank_f = static_cast<float>(module_r);
    return use_rslora ? module_alpha / std::sqrt(rank_f) : module_alpha / rank_f;
  }
  // The keys of rank_pattern and alpha_pattern that match no adapted module of a model of
  // `num_layers` blocks (PEFT warns of them and ignores them).
  std::vector<std::string> unmatched_patterns(int64_t num_layers) const;
  // target_modules, or all seven with target_linear, in kLinearModules' order.
  std::vector<std::string> targets() const;
  bool targets(int kind) const;
  bool adapts_layer(int64_t layer) const;  // layer is one of `layers`, or `layers` is empty
  // Whether linear `kind` of block `layer` gets adapters: target_pattern matches its name, or
  // targets(kind) and adapts_layer(layer).
  bool adapts(int64_t layer, int kind) const;
  // What target_pattern matches in a model of `num_layers` blocks that LoRA cannot adapt here
  // (embed_tokens, lm_head, norms, a block or its attention or MLP as a whole, ...): the first
  // such module name, else "". PEFT adapts embeddings and lm_head, and refuses the others.
  std::string pattern_matches_other_module(int64_t num_layers) const;
};

// Whether a rank_pattern / alpha_pattern key names module `name`, as PEFT's get_pattern_key
// matches it: re.match(rf"(.*\.)?({key})$", name). A key that is no valid regular expression
// throws std::regex_error.
bool pattern_key_matches(const std::string& key, const std::string& name);

// The HF name of linear `kind` in block `layer`: model.layers.3.self_attn.q_proj.
std::string linear_module_name(int64_t layer, int kind);

// The (out, in) shape of linear `kind` in a block of `model`.
Shape linear_shape(const LlamaConfig& model, int kind);
// What a LoRA run trains: r x (in + out) per targeted linear of every adapted block (+ out with DoRA), plus the
// modules_to_save trained whole (a tied lm_head is the embedding) and the trainable token rows.
int64_t lora_trainable_parameters(const LlamaConfig& model, const LoraConfig& lora);

struct LoraPair {
  Tensor a;  // (r, in)
  Tensor b;  // (out, r); both undefined when the layer is not a target
  Tensor magnitude;  // f32 (out), DoRA only: the learned norm of each output feature's weight row
  float scale = 0.0f;  // LoraConfig::scale of this module
};

// x (N, in), w (out, in), a (r, in), b (out, r) -> x w^T + scale * dropout(x) a^T b^T. Dropout
// (p > 0) draws its mask from `seed` (engine/ops.h dropout).
Tensor lora_linear(const Tensor& x, const Tensor& w, const Tensor& a, const Tensor& b, float scale,
                   float dropout_p, uint64_t seed);
// The same with the frozen layer's output `base` (N, out) already computed, e.g. by an NF4
// linear: base + scale * dropout(x) a^T b^T.
Tensor add_lora_term(const Tensor& base, const Tensor& x, const Tensor& a, const Tensor& b, float scale,
                     float dropout_p, uint64_t seed);

// DoRA (Liu et al. 2024, PEFT's use_dora): the adapted weight W + scale B A is split into its
// row directions and a learned magnitude m per output feature, so the layer computes
// c * (x W^T + scale x A^T B^T) with c = m / ||W + scale B A|| per row. The norm is a constant for
// autograd (PEFT detaches it, after the paper's section 4.3): `inverse_norms` (f32 (out), from
// row_inverse_norms) gets no gradient; m, A and B do. With dropout (p > 0), as PEFT: the frozen
// output `base` stays as it is and the correction uses the dropped-out input xd,
// base + (c - 1) * frozen(xd) + c * scale * xd A^T B^T. `frozen` is the layer's x -> x W^T.
Tensor add_dora_term(const Tensor& base, const Tensor& x, const std::function<Tensor(const Tensor&)>& frozen,
                     const Tensor& a, const Tensor& b, const Tensor& magnitude, const Tensor& inverse_norms,
                     float scale, float dropout_p, uint64_t seed);

// A seed for one use of dropout, from the step's seed and which use it is (layer, module), so
// that no two uses share a mask.
uint64_t mix_seed(uint64_t seed, uint64_t use);

}  // namespace llm
