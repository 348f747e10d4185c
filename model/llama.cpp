// defines: LlamaModel (parameters, HF initialisation, frozen and quantised weights, forward with
// optional recompute segments); its adapters are model/llama_adapters.cpp's
#include "model/llama.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/autograd.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

LlamaModel::LlamaModel(const LlamaConfig& config, Device device) : config_(config), device_(device) {
  std::string problem = config.validate();
  LLM_CHECK(problem.empty(), "invalid model config: " + problem);
  const int64_t C = config.hidden_size, F = config.intermediate_size, D = config.head_dim();
  const int64_t H = config.num_attention_heads, Hkv = config.num_key_value_heads;
  auto weight = [device](const Shape& shape) {
    Tensor t = Tensor::released(shape, DType::f32, device);
    t.set_requires_grad(true);
    return t;
  };
  embed_tokens_ = weight({config.vocab_size, C});
  for (int64_t i = 0; i < config.num_hidden_layers; i++) {
    LlamaLayer l;
    l.input_layernorm = weight({C});
    l.q_proj = weight({H * D, C});
    l.k_proj = weight({Hkv * D, C});
    l.v_proj = weight({Hkv * D, C});
    l.o_proj = weight({C, H * D});
    l.post_attention_layernorm = weight({C});
    l.gate_proj = weight({F, C});
    l.up_proj = weight({F, C});
    l.down_proj = weight({C, F});
    layers_.push_back(std::move(l));
  }
  norm_ = weight({C});
  if (!config.tie_word_embeddings) lm_head_ = weight({config.head_rows(), C});
  if (config.has_score_bias()) score_bias_ = weight({config.num_labels});
}

LlamaModel::LlamaModel(const LlamaConfig& config, Device device, uint64_t seed) : LlamaModel(config, device) {
  draw_weights(seed, [device](const ParamRef& p, const Tensor& value) {
    *p.tensor = value.to(device);
    p.tensor->set_requires_grad(true);
  });
}

void LlamaModel::draw_weights(uint64_t seed, const WeightSink& sink) {
  std::mt19937_64 rng(seed);
  for (const BaseWeight& w : base_weights()) {
    if (is_norm_weight(w.ref.name)) {
      sink(w.ref, Tensor::full(w.shape, 1.0f, DType::f32));
      continue;
    }
    if (w.ref.name == kScoreHeadName) {
      sink(w.ref, draw_score_head(seed));
      continue;
    }
    if (w.ref.name == kScoreBiasName) {  // transformers' _init_weights zeroes a Linear's bias
      sink(w.ref, Tensor::zeros(w.shape, DType::f32));
      continue;
    }
    // A fresh distribution per weight (it caches a second value): the stream as HF's order of
    // normal_ calls draws it, whatever is kept of each weight.
    std::normal_distribution<float> dist(0.0f, config_.initializer_range);
    std::vector<float> v(shape_numel(w.shape));
    for (float& x : v) x = dist(rng);
    // transformers' _init_weights zeroes nn.Embedding's padding_idx row (config.json's pad_token_id).
    if (w.ref.name == "model.embed_tokens.weight" && config_.pad_token_id >= 0)
      std::fill_n(v.begin() + config_.pad_token_id * w.shape[1], w.shape[1], 0.0f);
    sink(w.ref, Tensor::from_floats(v, w.shape));
  }
}

Tensor LlamaModel::draw_score_head(uint64_t seed) const {
  // A stream of its own: the same head whether the rest is drawn or read from a causal LM.
  std::mt19937_64 rng(seed ^ 0x73636f7265ULL);
  std::normal_distribution<float> dist(0.0f, config_.initializer_range);
  std::vector<float> v(static_cast<size_t>(config_.num_labels * config_.hidden_size));
  for (float& x : v) x = dist(rng);
  return Tensor::from_floats(v, {config_.num_labels, config_.hidden_size});
}

std::vector<ParamRef> LlamaModel::parameters() {
  std::vector<ParamRef> out = all_weights();
  out.erase(std::remove_if(out.begin(), out.end(), [](const ParamRef& p) { return !p.tensor->defined(); }),
            out.end());
  return out;
}

std::vector<BaseWeight> LlamaModel::base_weights() {
  std::vector<BaseWeight> out;
  for (const ParamRef& p : all_weights()) {
    const QuantWeight* q = quantised(p.tensor);
    out.push_back({p, q ? q->shape : p.tensor->shape()});
  }
  return out;
}

QuantWeight* LlamaModel::quantised(const Tensor* weight) {
  for (LlamaLayer& l : layers_)
    for (int k = 0; k < kNumLinear; k++)
      if (&l.linear(k) == weight && l.quant[k].defined()) return &l.quant[k];
  return nullptr;
}

std::vector<ParamRef> LlamaModel::all_weights() {
  std::vector<ParamRef> out{{"model.embed_tokens.weight", &embed_tokens_}};
  for (size_t i = 0; i < layers_.size(); i++) {
    LlamaLayer& l = layers_[i];
    std::string p = "model.layers." + std::to_string(i) + ".";
    out.push_back({p + "input_layernorm.weight", &l.input_layernorm});
    out.push_back({p + "self_attn.q_proj.weight", &l.q_proj});
    out.push_back({p + "self_attn.k_proj.weight", &l.k_proj});
    out.push_back({p + "self_attn.v_proj.weight", &l.v_proj});
    out.push_back({p + "self_attn.o_proj.weight", &l.o_proj});
    out.push_back({p + "post_attention_layernorm.weight", &l.post_attention_layernorm});
    out.push_back({p + "mlp.gate_proj.weight", &l.gate_proj});
    out.push_back({p + "mlp.up_proj.weight", &l.up_proj});
    out.push_back({p + "mlp.down_proj.weight", &l.down_proj});
  }
  out.push_back({"model.norm.weight", &norm_});
  if (!config_.tie_word_embeddings) out.push_back({head_name(), &lm_head_});
  if (config_.has_score_bias()) out.push_back({kScoreBiasName, &score_bias_});
  return out;
}

std::vector<std::vector<Tensor*>> LlamaModel::weight_units() {
  std::vector<std::vector<Tensor*>> units{{&embed_tokens_}};
  for (LlamaLayer& l : layers_)
    units.push_back({&l.input_layernorm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj,
                     &l.post_attention_layernorm, &l.gate_proj, &l.up_proj, &l.down_proj});
  // Tied, lm_head's use of the embedding keeps unit 0 whole through the step: the final norm
  // joins it. Untied, the final norm and lm_head are a unit of their own, after the blocks.
  if (config_.tie_word_embeddings)
    units[0].push_back(&norm_);
  else
    units.push_back({&norm_, &lm_head_});
  if (config_.has_score_bias()) units.back().push_back(&score_bias_);
  return units;
}

void LlamaModel::set_weight_units(WeightUnits* units) {
  units_ = units;
  if (units_) units_->set_head_after_blocks(head_unit() != 0);
}

std::vector<std::vector<Tensor*>> LlamaModel::frozen_units() {
  std::vector<std::vector<Tensor*>> units = weight_units();
  for (size_t i = 0; i < layers_.size(); i++)
    for (QuantWeight& w : layers_[i].quant)
      for (Tensor* t : {&w.codes, &w.absmax, &w.absmax_scale}) units[i + 1].push_back(t);
  for (std::vector<Tensor*>& unit : units)
    unit.erase(std::remove_if(unit.begin(), unit.end(), [](const Tensor* t) { return !t->defined() || t->requires_grad(); }),
               unit.end());
  return units;
}

namespace {
Tensor LlamaLayer::*const kLinearWeights[kNumLinear] = {
    &LlamaLayer::q_proj, &LlamaLayer::k_proj,  &LlamaLayer::v_proj,   &LlamaLayer::o_proj,
    &LlamaLayer::gate_proj, &LlamaLayer::up_proj, &LlamaLayer::down_proj};
}  // namespace

const Tensor& LlamaLayer::linear(int kind) const { return this->*kLinearWeights[kind]; }
Tensor& LlamaLayer::linear(int kind) { return this->*kLinearWeights[kind]; }

void LlamaModel::store_frozen_as(DType dtype) {
  const std::vector<const Tensor*> shared = shared_base_members();
  unshare_replicated_bases();
  for (const ParamRef& p : parameters()) {
    Tensor& t = *p.tensor;
    if (std::count(shared.begin(), shared.end(), p.tensor) || t.requires_grad() || t.dtype() == dtype) continue;
    t = t.storage_resident() ? t.to(dtype) : Tensor::released(t.shape(), dtype, t.device());
  }
  share_replicated_bases();
}

void LlamaModel::store_weights_in_bf16() {
  for (const ParamRef& p : parameters()) {
    Tensor& t = *p.tensor;
    if (t.dtype() == DType::bf16) continue;
    LLM_CHECK(t.storage_resident(), "store_weights_in_bf16: " + p.name + " has no bytes");
    const std::shared_ptr<AutogradMeta> meta = t.autograd_meta();
    t = t.to(DType::bf16);
    if (!meta) continue;
    t.set_autograd_meta(meta);  // the same leaf to autograd and the optimizer
    meta->grad_in_f32 = true;
  }
}

size_t LlamaModel::quantize_frozen_linears(QuantFormat format, bool double_quant) {
  size_t bytes = 0;
  unshare_replicated_bases();
  for (size_t i = 0; i < layers_.size(); i++)
    for (int k = 0; k < kNumLinear && owns_base(i); k++) {
      LlamaLayer& l = layers_[i];
      LLM_CHECK(!l.linear(k).requires_grad(), "quantize_frozen_linears: " + std::string(kLinearModules[k]) +
                                                  " trains; only frozen weights are quantised");
      const Tensor& w = l.linear(k);
      l.quant[k] = w.storage_resident() ? quantize_weight(w, format, double_quant)
                                        : quant_layout(w.shape(), format, double_quant, w.device());
      l.linear(k) = Tensor();
      bytes += l.quant[k].nbytes();
    }
  share_replicated_bases();
  return bytes;
}

void LlamaModel::frozen_values(const ParamRef& weight, const Tensor& value, const FrozenSink& keep,
                               bool start_dora) {
  LLM_CHECK(!weight.tensor->requires_grad(), "frozen_values: " + weight.name + " trains");
  Tensor* magnitude = start_dora ? dora_magnitude(weight.tensor) : nullptr;
  QuantWeight* q = quantised(weight.tensor);
  if (!q) {
    const Tensor kept = value.to(weight.tensor->dtype());
    if (magnitude) start_dora_magnitude(*magnitude, kept.to(DType::f32));
    keep(weight.tensor, kept);
    return;
  }
  // The same function on the same f32 values as quantize_frozen_linears: the same codes.
  const QuantWeight made = quantize_weight(value, q->format, q->double_quant());
  if (magnitude) start_dora_magnitude(*magnitude, dequantize(made, DType::f32));
  q->absmax_offset = made.absmax_offset;  // a scalar every rank keeps whole
  keep(&q->codes, made.codes);
  keep(&q->absmax, made.absmax);
  if (q->double_quant()) keep(&q->absmax_scale, made.absmax_scale);
}

void LlamaModel::move_to(Device device) {
  std::vector<ParamRef> all = parameters(), adapters = adapter_parameters();
  all.insert(all.end(), adapters.begin(), adapters.end());
  const std::vector<const Tensor*> shared = shared_base_members();
  unshare_replicated_bases();
  for (const ParamRef& p : all) {
    if (std::count(shared.begin(), shared.end(), p.tensor)) continue;
    const bool trains = p.tensor->requires_grad();
    *p.tensor = p.tensor->to(device);
    p.tensor->set_requires_grad(trains);
  }
  for (size_t i = 0; i < layers_.size(); i++)
    for (QuantWeight& w : layers_[i].quant)
      if (w.defined() && owns_base(i)) w = w.to(device);
  share_replicated_bases();
  for (TokenRows* rows : {&embed_rows_, &head_rows_})
    if (rows->index.defined()) rows->index = rows->index.to(device);
  device_ = device;
}

bool LlamaModel::fp8_linear_at(int64_t layer, int kind) const {
  const Shape shape = linear_shape(config_, kind);
  return !(layer == 0 && kind == 0) && shape[0] % 16 == 0 && shape[1] % 16 == 0;
}

bool LlamaModel::is_norm_weight(const std::string& name) {
  return name.find("norm.weight") != std::string::npos;
}

namespace {
// q (B, S, H, D), k and v (B, S, Hkv, D) -> (B, S, H, D), causal unless `bidirectional`.
Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_ids,
              AttentionKind kind, int64_t s2_group, bool bidirectional) {
  // Diffusion training: every query sees every key of its document (doc_ids keep it off the
  // padding and the other packed documents), through the one kernel that takes both.
  if (bidirectional) return mem_efficient_attention(q, k, v, false, Tensor(), doc_ids);
  switch (kind) {
    case AttentionKind::flash:
      // Packed documents need the document mask, which the same tiled kernel takes through
      // its memory-efficient entry point.
      return doc_ids.defined() ? mem_efficient_attention(q, k, v, true, Tensor(), doc_ids)
                               : flash_attention(q, k, v, true);
    case AttentionKind::mem_efficient: return mem_efficient_attention(q, k, v, true, Tensor(), doc_ids);
    case AttentionKind::s2:
      LLM_CHECK(!doc_ids.defined(), "s2_attention's groups would span packed documents (sample_packing)");
      return s2_attention(q, k, v, s2_group);
    case AttentionKind::cudnn:
      LLM_CHECK(!doc_ids.defined(), "sdp_attention (cuDNN) has no document mask for sample "
                                    "packing; flash_attention and xformers_attention have");
      return cudnn_attention(q, k, v, true);
    case AttentionKind::eager: break;
  }
  LLM_CHECK(!doc_ids.defined(), "eager attention has no document mask (sample packing)");
  return attention(q, k, v, /*causal=*/true);
}
// A parameter in the compute dtype (a differentiable cast when it differs).
Tensor in_dtype(const Tensor& p, DType dtype) { return p.dtype() == dtype ? p : cast(p, dtype); }
}  // namespace

AddNorm LlamaModel::layer_forward(int64_t index, const Tensor& x, const Tensor& normed,
                                  const Tensor& next_norm, const Tensor& positions,
                                  const Tensor& doc_ids, const Tensor& query_scale,
                                  const LayerOptions& opt, uint64_t dropout_seed) const {
  const LlamaLayer& l = layers_[index];
  auto w = [&opt](const Tensor& p) { return in_dtype(p, opt.dtype); };
  // A linear's input as its base layer reads it: fake-quantised under QAT (once per input, which
  // q, k and v, or gate and up, share: torchao's quantisers of each give the same values).
  auto base_input = [&opt](const Tensor& in) { return qat_input(in, opt.qat); };
  // Linear `kind` of the block (a quantised weight, NF4 or int8, dequantised for the GEMM) on
  // `in_base` (base_input(in)), with its adapter, if any, on `in`.
  auto proj = [&](const Tensor& in, const Tensor& in_base, int kind) {
    auto frozen = [&](const Tensor& x_in) {
      if (l.quant[kind].defined()) return quantized_linear(x_in, l.quant[kind]);
      if (opt.fp8 && fp8_linear_at(index, kind)) return fp8_linear(x_in, w(l.linear(kind)));
      if (opt.qat.on()) return linear(x_in, qat_weight(w(l.linear(kind)), opt.qat));
      return master_linear(x_in, l.linear(kind));  // an f32 master's gradient straight from its GEMM
    };
    const Tensor base = frozen(in_base);
    const LoraPair& pair = l.lora[kind];
    if (!pair.a.defined() || opt.adapters_off) return base;
    if (pair.magnitude.defined()) {
      return add_dora_term(base, in, frozen, w(pair.a), w(pair.b), pair.magnitude,
                           row_inverse_norms(adapted_weight(index, kind)), pair.scale, opt.lora_dropout,
                           mix_seed(dropout_seed, kind));
    }
    return add_lora_term(base, in, w(pair.a), w(pair.b), pair.scale, opt.lora_dropout,
                         mix_seed(dropout_seed, kind));
  };
  const int64_t B = positions.size(0), S = positions.size(1);
  const int64_t H = config_.num_attention_heads, Hkv = config_.num_key_value_heads;
  const int64_t D = config_.head_dim();
  const float eps = config_.rms_norm_eps;
  // x (B*S, C): attention block.
  const Tensor h = normed.defined() ? normed : rmsnorm(x, w(l.input_layernorm), eps);
  const Tensor h_base = base_input(h);
  Tensor q = rope(reshape(proj(h, h_base, 0), {B, S, H, D}), positions, config_.rope);
  if (query_scale.defined()) q = reshape(scale_rows(reshape(q, {B * S, H, D}), query_scale), {B, S, H, D});
  Tensor k = rope(reshape(proj(h, h_base, 1), {B, S, Hkv, D}), positions, config_.rope);
  Tensor v = reshape(proj(h, h_base, 2), {B, S, Hkv, D});
  const Tensor attn = reshape(opt.attend ? opt.attend(index, q, k, v)
                                         : attend(q, k, v, doc_ids, opt.attention, opt.s2_group, opt.bidirectional),
                              {B * S, H * D});
  const AddNorm x1 = add_rmsnorm(x, proj(attn, base_input(attn), 3), w(l.post_attention_layernorm), eps);
  // MLP block.
  const Tensor x1_base = base_input(x1.normed);
  const Tensor gated = swiglu(proj(x1.normed, x1_base, 4), proj(x1.normed, x1_base, 5));
  Tensor mlp = proj(gated, base_input(gated), 6);
  if (next_norm.defined()) return add_rmsnorm(x1.sum, mlp, w(next_norm), eps);
  return {add(x1.sum, mlp), Tensor()};
}

Tensor LlamaModel::segment_forward(int64_t first, int64_t last, Tensor x, const Tensor& positions,
                                   const Tensor& doc_ids, const LayerOptions& opt, uint64_t seed) const {
  AddNorm h{std::move(x), Tensor()};
  // SSMax's factors depend on the positions alone: once per segment, shared by its blocks.
  const Tensor query_scale = opt.ssmax.on ? ssmax_scale(positions, opt.ssmax.s, opt.ssmax.b) : Tensor();
  for (int64_t i = first; i < last; i++) {
    const int unit = static_cast<int>(i) + 1;
    if (units_) units_->before_forward(unit);
    // A block's last add fuses with the next block's input norm only inside one segment (a
    // segment's output is one tensor) and without weight units (the next block's norm weight
    // may not be gathered yet).
    const bool fuse_next = !units_ && i + 1 < last;
    h = layer_forward(i, h.sum, h.normed, fuse_next ? layers_[i + 1].input_layernorm : Tensor(), positions,
                      doc_ids, query_scale, opt, mix_seed(seed, 1000 + i));
    if (units_) h.sum = units_->after_forward(unit, h.sum);
  }
  return h.sum;
}

Tensor LlamaModel::hidden_states(const Tensor& ids, const Tensor& positions, const ForwardOptions& opt) {
  LLM_CHECK(ids.dim() == 2 && positions.shape() == ids.shape(),
            "model input: ids " + ids.str() + " and positions " + positions.str() + " must be (B, S)");
  const DType dtype = opt.compute_dtype;
  const int64_t n = static_cast<int64_t>(layers_.size());
  const int64_t group = opt.recompute_every_n_layers > 0 ? opt.recompute_every_n_layers : n;
  if (units_) {
    // Recompute segments decide the order of backward's gathers, which prefetch follows.
    units_->set_recompute_every(opt.recompute_every_n_layers > 0 ? static_cast<int>(std::min(group, n)) : 0);
    units_->before_forward(0);  // tied: through to the loss (or logits)
  }
  Tensor x = reshape(embedding(ids, with_token_rows(embed_tokens_, embed_rows_), config_.pad_token_id, dtype),
                    {ids.numel(), config_.hidden_size});
  if (opt.neftune_noise_alpha > 0 && grad_enabled()) {
    const double dims = static_cast<double>(ids.size(1) * config_.hidden_size);  // the batch's S x C
    x = add_uniform_noise(x, static_cast<float>(opt.neftune_noise_alpha / std::sqrt(dims)),
                          mix_seed(opt.dropout_seed, 0x4E454654));
  }
  // Untied, the embedding is a unit of its own: released until its backward, the last.
  if (units_ && head_unit() != 0) x = units_->after_forward(0, x);
  const LayerOptions layer_opt{
      opt.attention, opt.s2_group_size, dtype,
      // LoRA dropout, as nn.Dropout in train mode: only when gradients are wanted.
      has_lora_ && grad_enabled() && !opt.no_dropout ? lora_.dropout : 0.0f, opt.qat, opt.fp8, opt.attend,
      opt.ssmax, opt.bidirectional, opt.adapters_off};
  for (int64_t first = 0; first < n; first += group) {
    const int64_t last = std::min(n, first + group);
    // Segment inputs: hidden state, positions, document ids (undefined without packing).
    // The dropout seed travels by value, so a recompute re-run draws the same masks.
    const uint64_t seed = opt.dropout_seed;
    auto segment = [this, first, last, layer_opt, seed](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{segment_forward(first, last, in[0], in[1], in[2], layer_opt, seed)};
    };
    // Without recompute the blocks take x itself, its last handle: without gradients (evaluation)
    // the segment's input is freed once its first block has added it to its residual.
    x = opt.recompute_every_n_layers > 0
            ? recompute(segment, {x, positions, opt.doc_ids}, opt.offload_recompute_inputs)[0]
            : segment_forward(first, last, std::move(x), positions, opt.doc_ids, layer_opt, seed);
  }
  if (units_ && head_unit() != 0) units_->before_forward(head_unit());  // through to the loss (or logits)
  return rmsnorm(x, in_dtype(norm_, dtype), config_.rms_norm_eps);
}

Tensor LlamaModel::logits_from_hidden(const Tensor& hidden) const {
  const Tensor out = linear(hidden, in_dtype(lm_head_weight(), hidden.dtype()));
  return config_.has_score_bias() ? add_score_bias(out) : out;
}

Tensor LlamaModel::head_input(const Tensor& hidden, const ForwardOptions& opt) {
  return opt.qat.quantizes_head() ? qat_input(hidden, opt.qat) : hidden;
}

Tensor LlamaModel::head_weight(DType dtype, const ForwardOptions& opt) const {
  // Tied, only lm_head's use of the embedding is fake-quantised (torchao swaps the linear only).
  const Tensor weight = in_dtype(lm_head_weight(), dtype);
  return opt.qat.quantizes_head() ? qat_weight(weight, opt.qat) : weight;
}

Tensor LlamaModel::loss_head_weight(DType dtype, const ForwardOptions& opt) const {
  return opt.qat.quantizes_head() ? head_weight(dtype, opt) : lm_head_weight();
}

Tensor LlamaModel::logits(const Tensor& ids, const Tensor& positions, const ForwardOptions& opt) {
  const Tensor hidden = hidden_states(ids, positions, opt);
  Tensor out = linear(head_input(hidden, opt), head_weight(hidden.dtype(), opt));
  if (config_.has_score_bias()) out = add_score_bias(out);
  return units_ ? units_->after_forward(head_unit(), out) : out;
}

Tensor LlamaModel::add_score_bias(const Tensor& logits) const {
  const Tensor rows = Tensor::zeros({logits.size(0)}, DType::i32, logits.device());
  return add(in_dtype(logits, DType::f32), embedding(rows, reshape(score_bias_, {1, config_.num_labels})));
}

Tensor LlamaModel::loss(const Tensor& ids, const Tensor& targets, const Tensor& positions,
                        const ForwardOptions& opt) {
  const Tensor hidden = hidden_states(ids, positions, opt);
  if (config_.has_score_bias()) {
    // A token classifier's few logits a token are formed whole, with its bias; the mean
    // cross-entropy over the labelled tokens, as transformers' loss.
    Tensor out = cross_entropy(logits_from_hidden(hidden), targets, kIgnoreIndex);
    return units_ ? units_->after_forward(head_unit(), out) : out;
  }
  // Fused with lm_head: the (B*S, V) logits never exist whole (engine/ops/linear_cross_entropy.cpp).
  Tensor out = linear_cross_entropy(head_input(hidden, opt), loss_head_weight(hidden.dtype(), opt), targets,
                                    kIgnoreIndex, opt.loss_chunk_rows, opt.targets_host, opt.token_weighting,
                                    opt.loss_grad_seed);
  return units_ ? units_->after_forward(head_unit(), out) : out;
}

Tensor LlamaModel::sequence_logps(const Tensor& ids, const Tensor& targets, const Tensor& positions,
                                  const Tensor& sequences, int64_t num_sequences, const ForwardOptions& opt,
                                  const SequenceRowSums& sums) {
  const Tensor hidden = hidden_states(ids, positions, opt);
  Tensor out = linear_sequence_logps(head_input(hidden, opt), loss_head_weight(hidden.dtype(), opt), targets, sequences,
                                     num_sequences, 0, opt.targets_host, sums);
  return units_ ? units_->after_forward(head_unit(), out) : out;
}

Tensor LlamaModel::row_logps(const Tensor& ids, const Tensor& positions, const Tensor& rows, const Tensor& targets,
                             const Tensor& sequences, int64_t num_sequences, const ForwardOptions& opt,
                             Tensor* argmax_hits) {
  const Tensor hidden = hidden_states(ids, positions, opt);
  // The scored rows gathered as an embedding lookup gathers (its backward adds each row's
  // gradient back into the hidden state it came from, twice for a row scored twice).
  const Tensor head_in = head_input(hidden, opt);
  const Tensor scored = embedding(rows, head_in, -1, head_in.dtype());
  SequenceRowSums sums;
  sums.argmax_hits = argmax_hits;
  Tensor out = linear_sequence_logps(scored, loss_head_weight(hidden.dtype(), opt), targets, sequences, num_sequences, 0,
                                     opt.targets_host, sums);
  return units_ ? units_->after_forward(head_unit(), out) : out;
}

Tensor LlamaModel::scores(const Tensor& ids, const Tensor& positions, const Tensor& rows, const ForwardOptions& opt) {
  LLM_CHECK(config_.num_labels > 0, "scores: the model has no score head (num_labels 0)");
  const Tensor hidden = hidden_states(ids, positions, opt);
  // Only the pooled rows go through the head, gathered as row_logps gathers them; the scores in
  // f32, as the losses over them read them.
  const Tensor pooled = embedding(rows, hidden, -1, hidden.dtype());
  Tensor out = in_dtype(linear(pooled, in_dtype(lm_head_, hidden.dtype())), DType::f32);
  if (config_.has_score_bias()) out = add_score_bias(out);
  return units_ ? units_->after_forward(head_unit(), out) : out;
}

int64_t LlamaModel::multiplied_parameters() const {
  const LlamaConfig& c = config_;
  // An untied input embedding is a lookup: no multiply-adds (a tied table is lm_head's weight).
  const int64_t lookup_only = c.tie_word_embeddings ? 0 : c.vocab_size * c.hidden_size;
  return c.num_parameters() - lookup_only;
}

double LlamaModel::training_flops_per_token(int64_t seq_len) const {
  const LlamaConfig& c = config_;
  return 6.0 * static_cast<double>(multiplied_parameters()) +
         12.0 * static_cast<double>(c.num_hidden_layers * c.hidden_size * seq_len);
}

}  // namespace llm
