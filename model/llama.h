// Llama 3 as HF's LlamaForCausalLM: embedding, N x [RMSNorm, GQA attention with RoPE, residual,
// RMSNorm, SwiGLU MLP, residual], final RMSNorm, lm_head (tied or not). Parameters carry HF's
// names so HF interop maps names, not shapes. The forward is written with engine ops only.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/qat_scheme.h"
#include "engine/quant_weight.h"
#include "engine/tensor.h"
#include "engine/weight_units.h"
#include "model/attention_kind.h"
#include "model/llama_config.h"
#include "model/lora.h"

namespace llm {

struct LlamaLayer {
  Tensor input_layernorm;           // (C)
  Tensor q_proj, k_proj, v_proj;    // (H*D, C), (Hkv*D, C), (Hkv*D, C)
  Tensor o_proj;                    // (C, H*D)
  Tensor post_attention_layernorm;  // (C)
  Tensor gate_proj, up_proj;        // (F, C)
  Tensor down_proj;                 // (C, F)
  LoraPair lora[kNumLinear];        // adapters, by kLinearModules' index; undefined: none
  // QLoRA or a load_in_8bit base: the frozen linear weights in NF4 or int8, by kLinearModules'
  // index; the Tensor above is then undefined (the weight exists only as codes).
  QuantWeight quant[kNumLinear];
  // ReLoRA on a quantised base: each linear's full-precision value (f32, host memory), which a
  // restart merges into and quantises afresh, as Axolotl merges into its last full-weight save
  // rather than into the codes; undefined otherwise.
  Tensor full[kNumLinear];

  const Tensor& linear(int kind) const;  // q_proj ... down_proj by kLinearModules' index
  Tensor& linear(int kind);
};

struct ParamRef {
  std::string name;
  Tensor* tensor;
};

// A weight of the base model as start-up makes it: its HF name and tensor (`ref`; the tensor is
// undefined for a block linear held only quantised, LlamaLayer::quant) and its shape.
struct BaseWeight {
  ParamRef ref;
  Shape shape;
};

// Receives one weight's whole value (f32, on the host) while a model's weights are made one at a
// time (LlamaModel::draw_weights, read_hf_weights); where the value goes is the receiver's choice.
using WeightSink = std::function<void(const ParamRef& param, const Tensor& value)>;

struct SsmaxOptions {
  bool on = false;
  float s = 0.43f, b = 0.0f;  // Axolotl's scaling_softmax_factor and scaling_softmax_bias defaults
};

struct ForwardOptions {
  int64_t recompute_every_n_layers = 0;  // 0: keep every activation; n: one segment per n layers
  bool offload_recompute_inputs = false;  // segment inputs kept in host memory (engine/autograd.h)
  AttentionKind attention = AttentionKind::eager;
  int64_t s2_group_size = 0;  // with AttentionKind::s2
  Tensor doc_ids;             // i32 (B, S): sample packing's document mask (flash / mem_efficient)
  // bf16: mixed precision. Parameters stay f32 (the master weights the optimizer updates) and each
  // use computes in bf16: a linear's through master_linear (its weight gradient written in f32 by
  // the GEMM), the others through casts whose gradients flow back to f32. A LoRA run's frozen base
  // may be stored in bf16 already (store_frozen_as), and bfloat16: true stores every parameter in
  // bf16 (store_weights_in_bf16): no cast then.
  DType compute_dtype = DType::f32;
  uint64_t dropout_seed = 0;  // LoRA dropout's and NEFTune's draws for this forward (with gradients only)
  // NEFTune (neftune_noise_alpha): with gradients, the embeddings get uniform noise of magnitude
  // alpha / sqrt(S x C) per element, as transformers' hook adds it in training mode; 0: none.
  float neftune_noise_alpha = 0.0f;
  // No LoRA dropout even with gradients: TRL's disable_dropout, which preference training keeps
  // (its default), so the policy's forward and the reference's agree where the weights do.
  bool no_dropout = false;
  // The base alone, every LoRA and DoRA pair skipped: PEFT's disable_adapter, under which TRL runs
  // the reference of a run's new adapters. Trainable token rows and modules_to_save's copies are
  // read as they are (before a run's first step, the base's).
  bool adapters_off = false;
  // Quantisation-aware training (Axolotl's qat, torchao's fake quantisation): every linear layer,
  // lm_head included (not under ternary, QatScheme::quantizes_head), computes with its input and
  // weight fake-quantised as the scheme says (int4 groups: each in_features a multiple of the
  // group size); off by default. A LoRA pair's own
  // path reads the unquantised input, as PEFT's LoRA around torchao's FakeQuantizedLinear.
  QatScheme qat;
  // fp8 training (Axolotl's fp8: torchao's Float8Linear through accelerate): the block linears
  // with both widths multiples of 16 compute as engine/ops.h's fp8_linear, except the model's
  // first linear (block 0's q_proj) and lm_head, which accelerate keeps in high precision.
  bool fp8 = false;
  TokenWeighting token_weighting;  // loss() only: EAFT's or DFT's token weights (Axolotl's use_eaft, use_dft)
  // loss() only: the fused lm_head loss's rows per chunk (0: default_cross_entropy_chunk_rows).
  // Speed and memory only, the same loss: llm_bench step times the step at other sizes.
  int64_t loss_chunk_rows = 0;
  // loss() only: the seed its backward will be given (the trainer's weight of the micro-batch),
  // which the fused loss forms its gradients with, so that backward makes no pass over them
  // (linear_cross_entropy's grad_seed). Another seed still gives the right gradients.
  float loss_grad_seed = 1.0f;
  // loss() only: the targets in host memory when the caller has them (a batch before its copy to
  // the device), so the loss counts them there rather than wait for the device to read them.
  Tensor targets_host;
  // SSMax (Axolotl's scaling_softmax): every query, after RoPE, times s * log(max(position + 1,
  // 2)) + b (engine/ops.h ssmax_scale), which scales its attention scores so in every kernel.
  SsmaxOptions ssmax;
  // Diffusion training (Axolotl's DiffusionPlugin): every attention bidirectional within the
  // documents doc_ids marks (which must be set: they keep queries off the padding too).
  bool bidirectional = false;
  // When set, layer `layer`'s attention of q (B, S, H, D) over k, v (B, S, Hkv, D) instead of the
  // kind above: sampling's key/value cache (model/generate.cpp) keeps and reads keys there.
  std::function<Tensor(int64_t layer, const Tensor& q, const Tensor& k, const Tensor& v)> attend;
};

class LlamaModel {
 public:
  // Weights drawn as HF initialises them: normal(0, initializer_range), norms at 1.
  LlamaModel(const LlamaConfig& config, Device device, uint64_t seed);
  // Every weight with its shape and gradient flag but no bytes (Tensor::released): ZeRO-3's
  // sharded start-up, where each rank keeps only its slices (ShardedWeights::keep_slice) of the
  // values draw_weights or read_hf_weights hand over one weight at a time.
  LlamaModel(const LlamaConfig& config, Device device);
  // The seed's initial weights, one at a time, on the host, into `sink`. One random stream runs
  // through the weights in base_weights()' order (norms draw nothing), so every weight gets the
  // same values whether it is kept whole, sliced or quantised; each value is freed after `sink`
  // returns. As transformers' _init_weights: N(0, initializer_range), norms 1, and the embedding's
  // pad_token_id row (nn.Embedding's padding_idx) zero. A classifier's score head draws from a
  // stream of its own (draw_score_head), so a causal LM's weights are the same draws with or without it.
  void draw_weights(uint64_t seed, const WeightSink& sink);
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  const LlamaConfig& config() const { return config_; }
  Device device() const { return device_; }
  // Every weight of the base model kept as a tensor, with its HF name, in HF's order (a weight
  // quantised to NF4 is not one).
  std::vector<ParamRef> parameters();
  // Every weight of the base model in HF's order, those held only quantised included: what a
  // start-up draws or reads.
  std::vector<BaseWeight> base_weights();
  // ZeRO-3's units of weights, as engine/weight_units.h numbers them: the embedding (tied: with
  // the final norm), each block, and untied, the final norm with lm_head; and the hooks that
  // gather them around each use (null, the default: every weight always resident).
  std::vector<std::vector<Tensor*>> weight_units();
  // An adapter run's ZeRO-3 units (engine/frozen_shards.h): per unit, every frozen tensor its
  // forward reads, the NF4 or int8 codes and scales of a quantised base included.
  std::vector<std::vector<Tensor*>> frozen_units();
  void set_weight_units(WeightUnits* units);
  bool gathers_units() const { return units_ != nullptr; }  // a forward is then collective

  // PEFT's layer_replication (LoraConfig::layer_replication), on the base as loaded and before
  // add_lora: the blocks become, for each [start, end) in turn, blocks start .. end - 1 again, a
  // copy sharing its original's frozen weights (PEFT's clone_module with share_weights), and
  // num_hidden_layers their count; add_lora then gives every block adapters of its own. The
  // frozen base's later transforms (quantize_frozen_linears, store_frozen_as, move_to) make each
  // shared weight once.
  void replicate_layers(const std::vector<std::pair<int64_t, int64_t>>& ranges);
  // A tied model made untied, lm_head a copy of the embedding as it stands: PEFT's
  // modules_to_save on a tied model trains each listed module as a copy of its own
  // (TrainConfig::unties_embeddings). On the base as loaded and before add_lora.
  void untie_embeddings();
  // LoRA (model/lora.h): an adapter pair on each targeted linear layer of every block, A drawn
  // from `seed`, B zero; every base weight but lora.modules_to_save stops requiring gradients.
  // `frozen_dtype`: what store_frozen_as will keep the base in; PiSSA and OLoRA decompose the
  // weights as that dtype holds them (PEFT decomposes a bf16 model's bf16 weights).
  void add_lora(const LoraConfig& lora, uint64_t seed, DType frozen_dtype = DType::f32);
  const LoraConfig* lora() const { return has_lora_ ? &lora_ : nullptr; }
  // The adapters, named as PEFT's state dict without its "base_model.model." prefix:
  // model.layers.0.self_attn.q_proj.lora_A.weight, ...
  std::vector<ParamRef> adapter_parameters();
  // What the optimizer updates: every tensor that requires a gradient, base weights first.
  std::vector<ParamRef> trainable_parameters();
  // Frozen base weights kept in `dtype` only (bf16 on a GPU): no f32 master copy of them. Weights
  // without bytes (a sharded start-up) change dtype only.
  void store_frozen_as(DType dtype);
  // `bfloat16: true`: every weight kept in bf16 only (rounded to nearest even, as torch's
  // .to(torch.bfloat16)), no f32 master; a trained one stays the same autograd leaf, its gradient
  // summed in f32 (AutogradMeta::grad_in_f32) for AdamW to update it in place.
  void store_weights_in_bf16();
  // QLoRA or LoRA on an 8-bit base, after add_lora: every block's seven linear weights (frozen)
  // replaced by their quantisation as transformers + bitsandbytes load_in_4bit (NF4) or
  // load_in_8bit (int8) does it (embeddings, norms and lm_head keep their precision). The same
  // weights always give the same codes. Weights without bytes (a sharded start-up) get codes and
  // scales without bytes (quant_layout), filled by frozen_values. Returns the bytes the quantised
  // weights take.
  size_t quantize_frozen_linears(QuantFormat format, bool double_quant);
  // An adapter run's sharded start-up (ZeRO-3), after quantize_frozen_linears and store_frozen_as
  // on a model without bytes: what the frozen base weight `weight` is kept as, made from its f32
  // value as those two make it from the whole model (its NF4 or int8 codes and scales, or itself
  // in the frozen dtype), each tensor with the model's tensor it fills, to `keep`. With
  // `start_dora`, a DoRA magnitude on this weight starts from what is kept, as
  // init_dora_magnitudes starts it from the whole model (no other weight need be resident).
  using FrozenSink = std::function<void(const Tensor* target, const Tensor& value)>;
  void frozen_values(const ParamRef& weight, const Tensor& value, const FrozenSink& keep, bool start_dora = false);
  // Every weight, adapter and quantised weight moved to `device`, gradient flags kept: a qlora run
  // builds and quantises its base on the host, so the f32 base never sits on the GPU.
  void move_to(Device device);
  const LlamaLayer& layer(int64_t i) const { return layers_[i]; }
  // W + scale * B A of layer `layer`'s linear `kind` in f32 (W itself when it has no adapter; W
  // dequantised when quantised, or its full value when kept), with DoRA's rows scaled by
  // m / ||W + scale * B A||: the weight the adapted layer computes with.
  Tensor merged_weight(int64_t layer, int kind) const;
  // The same merged onto `base` (f32, its shape) in place of W: a base weight read again.
  Tensor merged_weight(int64_t layer, int kind, const Tensor& base) const;
  // ReLoRA on a quantised base, before quantize_frozen_linears: every block linear also kept in
  // f32 in host memory (LlamaLayer::full), which merged_weight and ReLoRA's restarts then use
  // instead of the codes.
  void keep_full_linears();
  // ReLoRA's restart (Axolotl's merge_and_save with reinit): every adapted linear weight becomes
  // W + scale B A (in its own dtype), then A is drawn afresh from `seed` (PEFT's Kaiming init) and
  // B zeroed, each in place so the optimizer and autograd keep their tensors. Not with DoRA. On a
  // quantised base W is the kept full value, the sum is rounded to fp16 as Axolotl saves it and
  // the codes are made afresh from it.
  void merge_and_redraw_adapters(uint64_t seed);
  // The frozen linear weights that carry adapters, named as HF names them: what ReLoRA's merges
  // change, so its checkpoints keep them (on a quantised base, their full values).
  std::vector<ParamRef> adapted_base_weights();
  // Each quantised linear with a full value (keep_full_linears) quantised afresh from it, as
  // quantize_frozen_linears made its codes: after a checkpoint restored those values.
  void quantize_full_linears();
  // DoRA, after the base weights are final (loaded, quantised, stored in their dtype): every
  // magnitude set to its row's norm ||W|| (B is zero), as PEFT starts it, so the untrained
  // adapter leaves the model as it was.
  void init_dora_magnitudes();
  // PEFT's merge of the trainable token rows (LoraConfig::embed_token_rows, head_token_rows) into
  // `table`, the value (f32) of the embedding or an untied lm_head by HF name; `table` itself for
  // any other weight.
  Tensor merged_token_rows(const std::string& name, const Tensor& table) const;
  // The trainable token rows' values set to their tables' rows as the model holds them now, widened
  // to f32 (PEFT's init: add_lora does it, and an adapter run again once store_frozen_as has put the
  // tables in the compute dtype, as PEFT takes them from Axolotl's bf16 model).
  void start_token_rows();
  static bool is_norm_weight(const std::string& name);  // excluded from weight decay
  // The sequence classifier's head (LlamaConfig::num_labels), by its HF name.
  static constexpr const char* kScoreHeadName = "score.weight";
  // A token classifier's score bias (LlamaConfig::has_score_bias), zeros as transformers starts it.
  static constexpr const char* kScoreBiasName = "score.bias";
  // Whether the optimizer decays it: not the norms' weights nor a bias, as HF's Trainer groups them.
  static bool decays(const std::string& name) { return !is_norm_weight(name) && name != kScoreBiasName; }
  // The untied head's HF name: lm_head.weight, or a sequence classifier's score.weight.
  std::string head_name() const { return config_.num_labels > 0 ? kScoreHeadName : "lm_head.weight"; }
  // A sequence classifier's score head as transformers starts one missing from a checkpoint:
  // normal(0, initializer_range), drawn from `seed` alone (f32, on the host).
  Tensor draw_score_head(uint64_t seed) const;
  // The token embedding (HF's nn.Embedding): f32 state under an 8-bit optimizer, as the Trainer keeps it.
  static bool is_embedding_weight(const std::string& name) { return name == "model.embed_tokens.weight"; }
  // Whether linear `kind` of block `layer` computes in fp8 under ForwardOptions::fp8.
  bool fp8_linear_at(int64_t layer, int kind) const;

  // ids, positions i32 (B, S) -> final hidden states (B*S, C).
  Tensor hidden_states(const Tensor& ids, const Tensor& positions, const ForwardOptions& opt = {});
  // hidden (N, C) -> logits (N, V) through lm_head (a token classifier's (N, num_labels) in f32,
  // with its bias).
  Tensor logits_from_hidden(const Tensor& hidden) const;
  // -> logits (B*S, V).
  Tensor logits(const Tensor& ids, const Tensor& positions, const ForwardOptions& opt = {});
  // Mean next-token cross-entropy; targets i32 (B*S) with -100 for positions without loss.
  Tensor loss(const Tensor& ids, const Tensor& targets, const Tensor& positions,
              const ForwardOptions& opt = {});
  // Preference training: f32 (num_sequences), the summed log-likelihood of the targets of each
  // sequence; sequences i32 (B*S), best in host memory, names each position's (engine/ops.h's
  // linear_sequence_logps); `sums` asks for more per sequence (WPO's aligned log-likelihoods,
  // the entropy and mean logit of its rows, ...).
  Tensor sequence_logps(const Tensor& ids, const Tensor& targets, const Tensor& positions, const Tensor& sequences,
                        int64_t num_sequences, const ForwardOptions& opt = {}, const SequenceRowSums& sums = {});

  // Diffusion training: f32 (num_sequences), entry s the summed log-likelihood of targets[k] under
  // the logits of hidden row rows[k] (of the B*S) over the k whose sequences[k] is s; rows,
  // targets and sequences i32 (K), targets_host (opt) the targets on the host. Only the K scored
  // rows go through lm_head. With `argmax_hits`, per sequence the count of its targets that are
  // their logits' argmax (no gradient).
  Tensor row_logps(const Tensor& ids, const Tensor& positions, const Tensor& rows, const Tensor& targets,
                   const Tensor& sequences, int64_t num_sequences, const ForwardOptions& opt = {},
                   Tensor* argmax_hits = nullptr);

  // A sequence classifier (LlamaConfig::num_labels): f32 (K, num_labels), the score head on the
  // final hidden states of rows `rows` (i32 (K), of the B*S): LlamaForSequenceClassification's
  // logits pooled at those positions.
  Tensor scores(const Tensor& ids, const Tensor& positions, const Tensor& rows, const ForwardOptions& opt = {});

  // Model FLOPs per token for one training step (forward + backward), for MFU: 6 x the
  // parameters other than the input embedding (PaLM's non-embedding count, torchtitan's: the
  // lookup multiplies nothing; a tied table counts, as lm_head's weight) plus attention's
  // 12 x layers x hidden x seq.
  double training_flops_per_token(int64_t seq_len) const;
  int64_t multiplied_parameters() const;  // that N: the parameters other than an untied input embedding

 private:
  struct LayerOptions {
    AttentionKind attention;
    int64_t s2_group;
    DType dtype;
    float lora_dropout;  // decided outside any recompute segment, whose first run has no grad
    QatScheme qat;       // ForwardOptions::qat
    bool fp8;            // ForwardOptions::fp8
    decltype(ForwardOptions::attend) attend;
    SsmaxOptions ssmax;  // ForwardOptions::ssmax
    bool bidirectional;  // ForwardOptions::bidirectional
    bool adapters_off;   // ForwardOptions::adapters_off
  };
  // Block `index` on x (B*S, C): its output as `sum`. Residual adds are fused with the rmsnorm
  // that follows them (add_rmsnorm): `normed` is input_layernorm(x) when the block before made
  // it so, else undefined; with `next_norm` (the next block's input_layernorm weight) the last
  // add is fused with it too, and the result's `normed` is what the next block takes.
  AddNorm layer_forward(int64_t index, const Tensor& x, const Tensor& normed,
                        const Tensor& next_norm, const Tensor& positions, const Tensor& doc_ids,
                        const Tensor& query_scale, const LayerOptions& opt, uint64_t dropout_seed) const;
  // Blocks [first, last) on x, one recompute segment (or all the blocks): the last one's output.
  Tensor segment_forward(int64_t first, int64_t last, Tensor x, const Tensor& positions, const Tensor& doc_ids,
                         const LayerOptions& opt, uint64_t seed) const;
  // Every base weight member, undefined ones included (quantised linears), in HF's order.
  std::vector<ParamRef> all_weights();
  bool owns_base(size_t layer) const { return base_owner_.empty() || base_owner_[layer] == layer; }
  // The frozen members of the blocks that share another's (replicate_layers): what a transform of
  // the frozen base skips, share_replicated_bases then pointing them at their owner's result.
  std::vector<const Tensor*> shared_base_members();
  // Before a transform, the copies drop their handles, so each old weight is freed as its owner's
  // is replaced (no second set held until the end); after it, they take their owner's again.
  void unshare_replicated_bases();
  void share_replicated_bases();
  QuantWeight* quantised(const Tensor* weight);  // the quantisation of a block linear, if any
  // W of a block linear in f32: its full value when kept, its dequantised codes, or itself.
  Tensor own_weight(int64_t layer, int kind) const;
  Tensor adapted_weight(int64_t layer, int kind, const Tensor& w) const;  // w + scale * B A, no DoRA factor
  Tensor adapted_weight(int64_t layer, int kind) const { return adapted_weight(layer, kind, own_weight(layer, kind)); }
  Tensor* dora_magnitude(const Tensor* weight);  // the DoRA magnitude of block linear `weight`, if any
  // A DoRA magnitude as PEFT starts it: the row norms of the weight its layer computes with (B is
  // zero), given in f32.
  static void start_dora_magnitude(Tensor& magnitude, const Tensor& weight);
  // PEFT's trainable token rows of a table: their indices (i32, on the model's device) and trained
  // values (f32, (n, C)); both undefined without them.
  struct TokenRows {
    Tensor index, values;
  };
  // The table a lookup or lm_head computes with: `table`, or an f32 copy with the trained rows in it.
  static Tensor with_token_rows(const Tensor& table, const TokenRows& rows);
  // lm_head's weight: the embedding when tied (with the embedding's trained rows), with its rows.
  Tensor lm_head_weight() const {
    return config_.tie_word_embeddings ? with_token_rows(embed_tokens_, embed_rows_) : with_token_rows(lm_head_, head_rows_);
  }
  // lm_head's input and weight as a forward computes with them (fake-quantised under QAT).
  static Tensor head_input(const Tensor& hidden, const ForwardOptions& opt);
  Tensor head_weight(DType dtype, const ForwardOptions& opt) const;
  // lm_head's weight as the fused losses take it: the weight itself, which they cast to `dtype`
  // and whose gradient they form in f32 (engine/ops/head_weight.h); under QAT its fake-quantised
  // copy, head_weight's.
  Tensor loss_head_weight(DType dtype, const ForwardOptions& opt) const;
  // The unit of the final norm and lm_head: unit 0 when tied, else the one after the blocks.
  int head_unit() const { return config_.tie_word_embeddings ? 0 : static_cast<int>(layers_.size()) + 1; }

  LlamaConfig config_;
  Device device_;
  Tensor embed_tokens_;  // (V, C)
  std::vector<LlamaLayer> layers_;
  // Per block, the block whose frozen weights it shares (replicate_layers): itself, or the first
  // copy of the same base block; empty without replication.
  std::vector<size_t> base_owner_;
  Tensor norm_;     // (C)
  Tensor lm_head_;  // (V, C); undefined when tied to embed_tokens_
  Tensor score_bias_;  // (num_labels) of a token classifier; else undefined
  // logits (N, num_labels) plus the score bias broadcast over the rows (an embedding of row 0 of
  // the bias for every row, whose backward sums the rows' gradients into it), in f32.
  Tensor add_score_bias(const Tensor& logits) const;
  TokenRows embed_rows_, head_rows_;  // head_rows_ only untied
  bool has_lora_ = false;
  LoraConfig lora_;
  WeightUnits* units_ = nullptr;
};

}  // namespace llm
