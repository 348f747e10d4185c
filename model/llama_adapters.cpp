// defines: LlamaModel's adapters: replicate_layers (PEFT's layer_replication), add_lora,
// adapter_parameters, trainable_parameters, the adapted and merged weights, and DoRA's magnitudes
// (from the whole model here; one weight at a time under ZeRO-3's sharded start-up through
// frozen_values)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/check.h"
#include "engine/ops.h"
#include "engine/user_error.h"
#include "model/llama.h"
#include "model/lora_init.h"

namespace llm {
namespace {
// PEFT's nn.init.kaiming_uniform_(a=sqrt(5)) on (rows, fan_in): gain sqrt(2 / (1 + 5)), bound
// gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in).
std::vector<float> kaiming_uniform(std::mt19937_64& rng, int64_t rows, int64_t fan_in) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
  std::uniform_real_distribution<float> dist(-bound, bound);
  std::vector<float> v(rows * fan_in);
  for (float& x : v) x = dist(rng);
  return v;
}

// PiSSA or OLoRA (model/lora_init.h) on linear k of l, scale already set: its adapter from the
// weight as `frozen_dtype` holds it (bf16-rounded for a bf16 base, as PEFT takes a bf16 model's
// weight), which keeps the residual (in its dtype, on its device; store_frozen_as rounds it). pissa_niter_K's draws come
// from `rng`, standard normal as torch.randn's.
void start_from_base(LlamaLayer& l, int k, const std::string& init_name, const std::string& module, int64_t r,
                     DType frozen_dtype, std::mt19937_64& rng) {
  NoGradGuard no_grad;
  Tensor& weight = l.linear(k);
  HostMatrix w{weight.size(0), weight.size(1), weight.to_floats()};
  if (frozen_dtype == DType::bf16)
    for (float& v : w.values) v = bf16_to_f32(f32_to_bf16(v));
  if (r > std::min(w.rows, w.cols))
    throw UserError(fmt::format("peft_init_lora_weights: {}: rank {} above min(out, in) = {} of {} (PEFT's init "
                                "takes r singular vectors or QR columns of the weight)",
                                init_name, r, std::min(w.rows, w.cols), module));
  const float scale = l.lora[k].scale;
  LoraFromBase init;
  if (init_name == "olora") {
    init = olora_init(w, r, scale);
  } else {
    const int niter = pissa_power_iterations(init_name);
    HostMatrix draws;
    if (niter >= 0) {
      draws = {svd_lowrank_draw_rows(w), r, std::vector<float>(svd_lowrank_draw_rows(w) * r)};
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (float& x : draws.values) x = normal(rng);
    }
    init = pissa_init(w, r, scale, niter, draws);
  }
  const Device device = weight.device();
  l.lora[k].a = Tensor::from_floats(init.a.values, {init.a.rows, init.a.cols}, device);
  l.lora[k].b = Tensor::from_floats(init.b.values, {init.b.rows, init.b.cols}, device);
  weight.copy_from(Tensor::from_floats(init.residual.values, weight.shape()));
}

// Linear k's codes made afresh from its full value, as bitsandbytes quantises a weight it is given.
void quantize_from_full(LlamaLayer& l, int k, Device device) {
  l.quant[k] = quantize_weight(l.full[k], l.quant[k].format, l.quant[k].double_quant()).to(device);
}
}  // namespace

void LlamaModel::untie_embeddings() {
  LLM_CHECK(config_.tie_word_embeddings && !has_lora_ && !units_, "untie_embeddings: a tied model before add_lora");
  NoGradGuard no_grad;
  lm_head_ = embed_tokens_.detach().clone();
  config_.tie_word_embeddings = false;
}

void LlamaModel::replicate_layers(const std::vector<std::pair<int64_t, int64_t>>& ranges) {
  LLM_CHECK(!has_lora_ && base_owner_.empty() && !units_, "replicate_layers: before add_lora, once, without ZeRO-3 units");
  std::vector<LlamaLayer> blocks;
  std::vector<size_t> first_copy(layers_.size(), SIZE_MAX);
  for (const auto& [start, end] : ranges) {
    LLM_CHECK(0 <= start && start < end && end <= static_cast<int64_t>(layers_.size()),
              "replicate_layers: range [" + std::to_string(start) + ", " + std::to_string(end) + ") of " +
                  std::to_string(layers_.size()) + " blocks");
    for (int64_t i = start; i < end; i++) {
      if (first_copy[i] == SIZE_MAX) first_copy[i] = blocks.size();
      base_owner_.push_back(first_copy[i]);
      blocks.push_back(layers_[i]);  // tensors are handles: the copy shares its weights' bytes
    }
  }
  layers_ = std::move(blocks);
  config_.num_hidden_layers = static_cast<int64_t>(layers_.size());
}

std::vector<const Tensor*> LlamaModel::shared_base_members() {
  std::vector<const Tensor*> out;
  for (size_t i = 0; i < layers_.size(); i++) {
    if (owns_base(i)) continue;
    LlamaLayer& l = layers_[i];
    out.push_back(&l.input_layernorm);
    out.push_back(&l.post_attention_layernorm);
    for (int k = 0; k < kNumLinear; k++) out.push_back(&l.linear(k));
  }
  return out;
}

namespace {
// A copy's frozen members set to `from`'s (another block's, or an empty block's).
void set_frozen_members(LlamaLayer& l, const LlamaLayer& from) {
  l.input_layernorm = from.input_layernorm;
  l.post_attention_layernorm = from.post_attention_layernorm;
  for (int k = 0; k < kNumLinear; k++) {
    l.linear(k) = from.linear(k);
    l.quant[k] = from.quant[k];
    l.full[k] = from.full[k];
  }
}
}  // namespace

void LlamaModel::unshare_replicated_bases() {
  for (size_t i = 0; i < layers_.size(); i++)
    if (!owns_base(i)) set_frozen_members(layers_[i], LlamaLayer());
}

void LlamaModel::share_replicated_bases() {
  for (size_t i = 0; i < layers_.size(); i++)
    if (!owns_base(i)) set_frozen_members(layers_[i], layers_[base_owner_[i]]);
}

void LlamaModel::add_lora(const LoraConfig& lora, uint64_t seed, DType frozen_dtype) {
  LLM_CHECK(!has_lora_ && lora.r >= 1 && (!lora.targets().empty() || !lora.target_pattern.empty()),
            "add_lora: bad LoRA config");
  has_lora_ = true;
  lora_ = lora;
  std::mt19937_64 rng(mix_seed(seed, 0x4C6F5241));  // its own stream: the base init is unchanged
  for (size_t i = 0; i < layers_.size(); i++) {
    LlamaLayer& l = layers_[i];
    for (int k = 0; k < kNumLinear; k++) {
      if (!lora.adapts(static_cast<int64_t>(i), k)) continue;
      const int64_t out = l.linear(k).size(0), in = l.linear(k).size(1);
      const int64_t r = lora.rank(static_cast<int64_t>(i), k);
      l.lora[k].scale = lora.scale(static_cast<int64_t>(i), k);
      if (lora_init_from_base(lora.init)) {
        start_from_base(l, k, lora.init, "model.layers." + std::to_string(i) + "." + linear_module_path(k), r,
                        frozen_dtype, rng);
      } else {
        std::vector<float> a(r * in);
        std::normal_distribution<float> normal(0.0f, 1.0f / static_cast<float>(r));
        if (lora.init == "gaussian")
          for (float& x : a) x = normal(rng);
        else
          a = kaiming_uniform(rng, r, in);
        l.lora[k].a = Tensor::from_floats(a, {r, in}, device_);
        l.lora[k].b = lora.init == "false" ? Tensor::from_floats(kaiming_uniform(rng, out, r), {out, r}, device_)
                                           : Tensor::zeros({out, r}, DType::f32, device_);
      }
      l.lora[k].a.set_requires_grad(true);
      l.lora[k].b.set_requires_grad(true);
      if (lora.use_dora) {  // its values: init_dora_magnitudes, once the base weights are final
        l.lora[k].magnitude = Tensor::zeros({out}, DType::f32, device_);
        l.lora[k].magnitude.set_requires_grad(true);
      }
    }
  }
  for (const ParamRef& p : parameters()) p.tensor->set_requires_grad(false);
  // A tied lm_head is the embedding: training either trains both, as in transformers.
  if (lora.saves("embed_tokens") || (lora.saves("lm_head") && config_.tie_word_embeddings))
    embed_tokens_.set_requires_grad(true);
  if (lora.saves("lm_head") && !config_.tie_word_embeddings) lm_head_.set_requires_grad(true);
  if (lora.saves("score") && config_.num_labels > 0) {  // the classifier's head, its bias too (PEFT's modules_to_save)
    lm_head_.set_requires_grad(true);
    if (config_.has_score_bias()) score_bias_.set_requires_grad(true);
  }
  // The rows' indices on the table's device; their values start as the table's rows.
  const auto index_of = [](const std::vector<int64_t>& ids, const Tensor& table) {
    std::vector<int32_t> index;
    for (int64_t id : ids) {
      LLM_CHECK(id >= 0 && id < table.size(0), "trainable token row " + std::to_string(id) + " outside " + table.str());
      index.push_back(static_cast<int32_t>(id));
    }
    return Tensor::from_ints(index, {static_cast<int64_t>(index.size())}).to(table.device());
  };
  if (!lora.embed_token_rows.empty()) embed_rows_.index = index_of(lora.embed_token_rows, embed_tokens_);
  if (!lora.head_token_rows.empty()) {
    LLM_CHECK(!config_.tie_word_embeddings, "add_lora: a tied lm_head has the embedding's token rows");
    head_rows_.index = index_of(lora.head_token_rows, lm_head_);
  }
  start_token_rows();
}

void LlamaModel::start_token_rows() {
  NoGradGuard no_grad;
  const std::pair<TokenRows*, const Tensor*> tables[] = {{&embed_rows_, &embed_tokens_}, {&head_rows_, &lm_head_}};
  for (const auto& [rows, table] : tables) {
    if (!rows->index.defined()) continue;
    rows->values = embedding(rows->index, *table, -1, DType::f32);
    rows->values.set_requires_grad(true);
  }
}

// In f32 whatever the table's dtype (a frozen bf16 table on a GPU): the rows' gradient is then
// summed in f32, by the lookup's scatter and over the fused loss's chunks (as a trained f32
// table's, engine/ops/head_weight.h), and reaches the f32 rows uncast.
Tensor LlamaModel::with_token_rows(const Tensor& table, const TokenRows& rows) {
  if (!rows.values.defined()) return table;
  return replace_rows(table.dtype() == DType::f32 ? table : table.to(DType::f32), rows.index, rows.values);
}

Tensor LlamaModel::merged_token_rows(const std::string& name, const Tensor& table) const {
  NoGradGuard no_grad;
  const TokenRows* rows = name == "model.embed_tokens.weight"             ? &embed_rows_
                          : name == "lm_head.weight" && lm_head_.defined() ? &head_rows_
                                                                          : nullptr;
  if (!rows || !rows->values.defined()) return table;
  return with_token_rows(table.to(rows->values.device()), *rows);
}

std::vector<ParamRef> LlamaModel::adapter_parameters() {
  std::vector<ParamRef> out;
  for (size_t i = 0; i < layers_.size(); i++)
    for (int k = 0; k < kNumLinear; k++) {
      LoraPair& pair = layers_[i].lora[k];
      if (!pair.a.defined()) continue;
      const std::string p = "model.layers." + std::to_string(i) + "." + linear_module_path(k);
      out.push_back({p + ".lora_A.weight", &pair.a});
      out.push_back({p + ".lora_B.weight", &pair.b});
      if (pair.magnitude.defined()) out.push_back({p + ".lora_magnitude_vector", &pair.magnitude});
    }
  // PEFT's names of the trainable token rows (its state dict's, without the adapter name).
  if (embed_rows_.values.defined())
    out.push_back({"model.embed_tokens.token_adapter.trainable_tokens_delta", &embed_rows_.values});
  if (head_rows_.values.defined()) out.push_back({"lm_head.token_adapter.trainable_tokens_delta", &head_rows_.values});
  return out;
}

std::vector<ParamRef> LlamaModel::trainable_parameters() {
  std::vector<ParamRef> out;
  for (const ParamRef& p : parameters())
    if (p.tensor->requires_grad()) out.push_back(p);
  for (const ParamRef& p : adapter_parameters()) out.push_back(p);
  return out;
}

void LlamaModel::keep_full_linears() {
  // Shares a weight's bytes when it is f32 on the host already: quantising then drops the weight.
  for (LlamaLayer& l : layers_)
    for (int k = 0; k < kNumLinear; k++) l.full[k] = l.linear(k).to(DType::f32).to(Device::cpu());
}

void LlamaModel::merge_and_redraw_adapters(uint64_t seed) {
  LLM_CHECK(has_lora_ && !lora_.use_dora, "merge_and_redraw_adapters: needs LoRA adapters without DoRA");
  NoGradGuard no_grad;
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < layers_.size(); i++)
    for (int k = 0; k < kNumLinear; k++) {
      LlamaLayer& l = layers_[i];
      LoraPair& pair = l.lora[k];
      if (!pair.a.defined()) continue;
      const Tensor merged = adapted_weight(static_cast<int64_t>(i), k);
      if (l.quant[k].defined()) {
        LLM_CHECK(l.full[k].defined(), "merge_and_redraw_adapters: a quantised base without its full values");
        std::vector<float> values = merged.to_floats();
        for (float& v : values) v = round_to_f16(v);
        l.full[k] = Tensor::from_floats(values, merged.shape());
        quantize_from_full(l, k, device_);
      } else {
        l.linear(k).copy_from(merged);
      }
      pair.a.copy_from(Tensor::from_floats(kaiming_uniform(rng, pair.a.size(0), pair.a.size(1)), pair.a.shape()));
      pair.b.copy_from(Tensor::zeros(pair.b.shape(), DType::f32, Device::cpu()));
    }
}

void LlamaModel::quantize_full_linears() {
  for (LlamaLayer& l : layers_)
    for (int k = 0; k < kNumLinear; k++)
      if (l.quant[k].defined() && l.full[k].defined()) quantize_from_full(l, k, device_);
}

std::vector<ParamRef> LlamaModel::adapted_base_weights() {
  std::vector<ParamRef> out;
  for (size_t i = 0; i < layers_.size(); i++)
    for (int k = 0; k < kNumLinear; k++) {
      LlamaLayer& l = layers_[i];
      if (l.lora[k].a.defined())
        out.push_back({linear_module_name(static_cast<int64_t>(i), k) + ".weight",
                       l.quant[k].defined() ? &l.full[k] : &l.linear(k)});
    }
  return out;
}

Tensor LlamaModel::own_weight(int64_t layer, int kind) const {
  const LlamaLayer& l = layers_[layer];
  return l.full[kind].defined()    ? l.full[kind].to(device_)
         : l.quant[kind].defined() ? dequantize(l.quant[kind], DType::f32)
                                   : l.linear(kind).to(DType::f32);
}

Tensor LlamaModel::adapted_weight(int64_t layer, int kind, const Tensor& w) const {
  NoGradGuard no_grad;
  const LoraPair& pair = layers_[layer].lora[kind];
  if (!pair.a.defined()) return w;
  return add_scaled(w.to(pair.a.device()), matmul(pair.b, pair.a), pair.scale);
}

Tensor LlamaModel::merged_weight(int64_t layer, int kind) const {
  return merged_weight(layer, kind, own_weight(layer, kind));
}

Tensor LlamaModel::merged_weight(int64_t layer, int kind, const Tensor& base) const {
  NoGradGuard no_grad;
  const Tensor w = adapted_weight(layer, kind, base);
  const Tensor& magnitude = layers_[layer].lora[kind].magnitude;
  if (!magnitude.defined()) return w;
  // Output feature r is computed by row r of the weight: scaling the layer's output columns
  // (add_dora_term) is scaling the weight's rows, i.e. the columns of its transpose.
  const Tensor factors = mul(magnitude, row_inverse_norms(w));
  return scale_columns(w.transpose(0, 1).contiguous(), factors).transpose(0, 1).contiguous();
}

void LlamaModel::start_dora_magnitude(Tensor& magnitude, const Tensor& weight) {
  NoGradGuard no_grad;
  std::vector<float> norms = row_inverse_norms(weight).to_floats();
  for (float& n : norms) n = 1.0f / n;
  magnitude = Tensor::from_floats(norms, magnitude.shape(), magnitude.device());
  magnitude.set_requires_grad(true);
}

void LlamaModel::init_dora_magnitudes() {
  for (size_t i = 0; i < layers_.size(); i++)
    for (int k = 0; k < kNumLinear; k++) {
      Tensor& magnitude = layers_[i].lora[k].magnitude;
      if (magnitude.defined()) start_dora_magnitude(magnitude, adapted_weight(static_cast<int64_t>(i), k));
    }
}

Tensor* LlamaModel::dora_magnitude(const Tensor* weight) {
  for (LlamaLayer& l : layers_)
    for (int k = 0; k < kNumLinear; k++)
      if (&l.linear(k) == weight && l.lora[k].magnitude.defined()) return &l.lora[k].magnitude;
  return nullptr;
}

}  // namespace llm
