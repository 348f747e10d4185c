// Every differentiable op, by name. Each is defined in engine/ops/*.cpp (each file's `defines:`
// line names its ops) with its backward beside its forward, dispatches to the backend of its
// inputs' device, and records its autograd node(s).
// Shapes: B batch, S sequence, H query heads, Hkv key/value heads, D head_dim, C channels,
// V vocabulary, N rows (tokens).
#pragma once
#include "engine/qat_scheme.h"
#include "engine/quant_weight.h"
#include "engine/tensor.h"

namespace llm {

// Views and conversions.
Tensor reshape(const Tensor& x, const Shape& shape);  // differentiable view
Tensor cast(const Tensor& x, DType dtype);

// Elementwise (same shapes) and reductions.
Tensor add(const Tensor& a, const Tensor& b);
Tensor add_scaled(const Tensor& a, const Tensor& b, float s);  // a + s * b
Tensor mul(const Tensor& a, const Tensor& b);
Tensor sum(const Tensor& x);  // f32 scalar (shape [])
// x (..., C) * s (C, f32), s broadcast over the leading dims, in x's dtype; both get gradients.
// DoRA's magnitude / weight-norm factor on a linear layer's output features (model/lora.h).
Tensor scale_columns(const Tensor& x, const Tensor& s);
// x (N, ...) with row r times s[r] (s f32 (N), a constant: only x gets a gradient), in x's dtype.
Tensor scale_rows(const Tensor& x, const Tensor& s);

// matmul: a (..., M, K) @ b (K, N) -> (..., M, N), or batched b (..., K, N) with the same
// leading dims as a. trans_a / trans_b take the last two dims of a / b transposed (no copy).
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// x (..., in) @ w^T with w (out, in), the layout of HF's nn.Linear weights.
inline Tensor linear(const Tensor& x, const Tensor& w) { return matmul(x, w, false, true); }
// linear(x, cast(master, x.dtype())) for an f32 master weight and bf16 x, the weight's gradient
// written in f32 by its GEMM (no bf16 gradient, no widening pass); linear itself when the dtypes
// agree (engine/ops/master_linear.cpp).
Tensor master_linear(const Tensor& x, const Tensor& master);

// A frozen linear layer whose weight is quantised (engine/quant_weight.h: NF4, QLoRA's base, or
// LLM.int8's int8, a load_in_8bit base):
// x (..., in) @ W^T with W (out, in) dequantised to x's dtype for the GEMM (again in backward,
// so no full-precision copy outlives the call). The weight gets no gradient; x does.
Tensor quantized_linear(const Tensor& x, const QuantWeight& w);

// embedding: ids i32 (...) into table (V, C) -> (..., C).
// padding_idx >= 0: that row of the table gets no gradient (torch's nn.Embedding(padding_idx)).
// The rows in rows_dtype: the table's, or bf16 from an f32 table (a master's gradient stays f32).
Tensor embedding(const Tensor& ids, const Tensor& table, int64_t padding_idx, DType rows_dtype);
inline Tensor embedding(const Tensor& ids, const Tensor& table, int64_t padding_idx = -1) {
  return embedding(ids, table, padding_idx, table.dtype());
}
// replace_rows: a copy of table (V, C) whose rows index (i32 (n), distinct, on the table's device)
// are rows (n, C, the table's dtype): PEFT's trainable token rows over a frozen table (torch's
// index_copy). The gradient of rows is the output gradient's rows at index; the table's, the
// output gradient with those rows zero.
Tensor replace_rows(const Tensor& table, const Tensor& index, const Tensor& rows);

// rmsnorm over the last dim: x (..., C), weight (C): x / sqrt(mean(x^2) + eps) * weight.
Tensor rmsnorm(const Tensor& x, const Tensor& weight, float eps);

// A residual add and the rmsnorm that follows it, in one pass over memory (as llm.c's
// fused_residual_forward): sum = x + r, normed = rmsnorm(sum, weight, eps); x and r same shape.
// The gradient is exact: d(x) = d(r) = d(sum) from later uses plus the norm's contribution.
struct AddNorm {
  Tensor sum, normed;
};
AddNorm add_rmsnorm(const Tensor& x, const Tensor& r, const Tensor& weight, float eps);

// RoPE as HF's Llama (rotate_half: dims i and i + D/2 form a pair), with HF's frequency scaling
// of `type` when factor > 0: Llama 3's, linear (every frequency over factor) or YaRN's. Dynamic
// NTK scales only positions past max_position_embeddings, which a config keeps training below
// (train/config.cpp): its frequencies are the unscaled ones.
enum class RopeType { llama3, linear, yarn, dynamic };
struct RopeConfig {
  float theta = 500000.0f;
  float factor = 0.0f;  // 0: no scaling
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_max_position_embeddings = 8192;
  RopeType type = RopeType::llama3;
  // YaRN's (HF's defaults): the rotation counts bounding its ramp, whether the ramp's ends are
  // whole dims, and its attention factor (0: from factor, mscale and mscale_all_dim as HF's).
  float beta_fast = 32.0f, beta_slow = 1.0f;
  bool truncate = true;
  float attention_factor = 0.0f, mscale = 0.0f, mscale_all_dim = 0.0f;
};
std::vector<float> rope_inv_freq(const RopeConfig& config, int head_dim);  // D/2 frequencies
// What HF multiplies cos and sin by (YaRN's; 1 for the others): rope's output is scaled by it.
float rope_attention_factor(const RopeConfig& config);
// x (B, S, Hx, D), positions i32 (B, S) -> rotated x.
Tensor rope(const Tensor& x, const Tensor& positions, const RopeConfig& config);
// SSMax (Scalable-Softmax, arXiv 2501.19399, as Axolotl's scaling_softmax applies it): each
// query's attention scores times s * log(n) + b, n = its position + 1 (at least 2). As a factor
// per query it scales q itself: f32 (B*S) factors for positions i32 (B, S), no gradient.
Tensor ssmax_scale(const Tensor& positions, float s, float b);

// Inverted dropout: x / (1 - p) where the mask keeps an element (probability 1 - p), else 0; p in
// [0, 1), 0 returns x itself. The mask is a hash of (seed, element index) (engine/counter_random.h):
// the same seed gives the same mask on every backend and on every re-run.
Tensor dropout(const Tensor& x, float p, uint64_t seed);
// x + magnitude * (2u - 1) with u uniform in [0, 1) drawn per element from the same hash: NEFTune's
// noise on the embeddings (transformers' neftune hook draws uniform(-magnitude, magnitude)). The
// gradient passes through; magnitude 0 returns x itself.
Tensor add_uniform_noise(const Tensor& x, float magnitude, uint64_t seed);

// Quantisation-aware training (Axolotl's `qat`, torchao's fake quantisation; the formulas and
// their gradients in engine/fake_quantize_math.h). w (R, C), C a multiple of `group` -> w with
// each group of a row rounded to 16 levels between its min and max (the gradient reaches the
// weights through the rounding, straight through, and through each group's min and max).
Tensor fake_quantize_int4(const Tensor& w, int64_t group);
// x (N, C) -> x with each row rounded to 256 levels (int8 with a zero point) over its range and
// 0; the gradient passes straight through where the rounding did not saturate.
Tensor fake_quantize_int8_rows(const Tensor& x);
// x (..., C) -> x with each row cast to e4m3 at the scale max(amax, lower_bound) / 448 (torchao's
// Float8FakeQuantizer, per row; 0: no bound); gradients through the cast and the scale.
Tensor fake_quantize_fp8_rows(const Tensor& x, float lower_bound = 0.0f);
// w (R, C), C a multiple of `group` -> w with each group rounded to int4 -8..7 times amax / 8
// (MSLK's symmetric int4); gradients through the rounding and the scale.
Tensor fake_quantize_int4_symmetric(const Tensor& w, int64_t group);
// x (..., C), C a multiple of 32 -> x with each block of 32 along a row in mxfp4 (e2m1 values
// times the block's power of two, OCP Microscaling); the gradient passes straight through.
Tensor fake_quantize_mxfp4(const Tensor& x);
// Axolotl's ternary QAT (BitNet b1.58), per row of x (..., C): weights to {-1, 0, 1} times the
// row's mean magnitude; inputs to int8 times the row's largest magnitude over 127. Both as x +
// (q - x) with the gradient straight through. ternarize: q itself, no gradient (what a finished
// run bakes into the weights).
Tensor fake_quantize_ternary(const Tensor& w);
Tensor fake_quantize_int8_absmax(const Tensor& x);
Tensor ternarize(const Tensor& w);

// Axolotl's qat schemes (engine/qat_scheme.h) on a linear layer's input and weight
// (engine/ops/qat_scheme.cpp).
Tensor qat_input(const Tensor& x, const QatScheme& scheme);   // x itself when the scheme leaves inputs be
Tensor qat_weight(const Tensor& w, const QatScheme& scheme);  // w itself when the scheme is off
// fp8 training (Axolotl's fp8, torchao's Float8Linear; engine/ops/fp8_linear.cpp): linear(x, w)
// on x and w cast to e4m3 with tensorwise scales, its gradients from the output gradient cast to
// e5m2.
Tensor fp8_linear(const Tensor& x, const Tensor& w);

// swiglu: silu(gate) * up, same shapes.
Tensor swiglu(const Tensor& gate, const Tensor& up);

// Eager attention (materialised scores, the reference for every other attention):
// q (B, S, H, D), k and v (B, S, Hkv, D) with H % Hkv == 0 (GQA) -> (B, S, H, D).
// softmax(q k^T / sqrt(D)) v, causal masks keys after the query.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal);

// The tiled attentions: FlashAttention-2's algorithm (query tiles, online softmax over key tiles,
// the row logsumexp saved; the backward recomputes the probabilities tile by tile). Shapes and
// GQA as `attention`; memory O(S), nothing O(S^2). A query row that sees no key gives output 0
// and zero gradients. The backward is deterministic.
Tensor flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal);

// cuDNN's fused flash attention (sdp_attention): flash_attention's contract, bf16 on CUDA (f32 is
// flash_attention's). The CPU, which has no cuDNN, runs flash_attention's tiles for it.
Tensor cudnn_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal);

// LongLoRA's shifted sparse attention (S2-Attn), always causal, groups of group_size G tokens
// (S % G == 0): query heads h < H/2 see the keys of their group [nG, nG + G); heads h >= H/2
// see groups shifted by G/2: [0, G/2), [G/2, 3G/2), ..., [S - G/2, S). Nothing wraps around (the
// roll-based formulation lets the first group see the last tokens). Heads split by query head,
// so with GQA one kv head may serve shifted and unshifted query heads alike; K/V are not copied.
Tensor s2_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t group_size);

// Memory-efficient attention (Rabe & Staats chunking, the same tiles as flash_attention) with
// optional masks, each narrowing which keys a query sees:
//   bias: f32 (B or 1, H or 1, S, S) added to the scaled scores (-inf masks); it gets a gradient
//     (summed over its broadcast dims) when it requires one. Being materialised, it is O(S^2).
//   doc_ids: i32 (B, S), non-decreasing along S: sample packing's block-diagonal mask, a query
//     sees only keys of its own document. Cumulative lengths [0, 3, 5] of two documents are
//     doc_ids [0, 0, 0, 1, 1].
Tensor mem_efficient_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                               const Tensor& bias = Tensor(), const Tensor& doc_ids = Tensor());

// Cross-entropy: logits (N, V), targets i32 (N) -> f32 scalar: mean of -log softmax(logits)[target]
// over rows whose target is not ignore_index.
constexpr int kIgnoreIndex = -100;
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int ignore_index = kIgnoreIndex);

// cross_entropy(linear(hidden, weight), targets) without ever holding all the logits: hidden
// (N, C), weight (V, C) as HF's lm_head, chunk_rows rows of logits at a time (<= 0: about
// 512 MiB of f32 logits per chunk). Gradients are computed in the forward pass, chunk by chunk.
// The loss and the gradients stay on the device (no host read). Each chunk's weight in the mean
// needs its count of targets on the host: targets_host, the same targets in host memory when the
// caller has them (a batch before its copy to the device), else read from `targets`, which on a
// GPU waits for the device.
// With `weighting`, each token's loss weighted, the weights constants of the gradient: EAFT
// (Axolotl's use_eaft, eaft_k > 0) by H^alpha, H the entropy of the softmax over its row's k
// largest logits (Backend::topk_entropy_weights); DFT (Dynamic Fine-Tuning, Axolotl's use_dft) by
// the probability of its target, exp(-its loss) (Backend::target_prob_weights).
// grad_seed: the seed the caller's backward will give the loss (the trainer's weight of its
// micro-batch). The gradients are formed already scaled by it, and backward scales them by the seed
// it is given over grad_seed, which writes nothing when the two are equal (Backend::scale_by): no
// pass over lm_head's (V, C) gradient, 1 GiB in f32 at Llama 3's vocabulary.
struct TokenWeighting {
  int64_t eaft_k = 0;  // 0: no EAFT
  float eaft_alpha = 1.0f;
  bool dft = false;
  bool any() const { return eaft_k > 0 || dft; }
};
Tensor linear_cross_entropy(const Tensor& hidden, const Tensor& weight, const Tensor& targets,
                            int ignore_index = kIgnoreIndex, int64_t chunk_rows = 0,
                            const Tensor& targets_host = Tensor(), TokenWeighting weighting = {},
                            float grad_seed = 1.0f);
int64_t default_cross_entropy_chunk_rows(int64_t vocab);

// What linear_sequence_logps forms beside the log-likelihoods where asked: each f32
// (num_sequences) without gradient, per sequence a sum over its counted rows of
//   aligned: WPO's (Zhou et al. 2024, TRL's use_weighting) log p(target) - log sum_v p_v^2
//     (logsumexp(2 logits) - 2 logsumexp(logits)), the log-probability aligned to the policy's own
//     sampling;
//   argmax_hits: 1 where the target is the argmax of the row's logits (an accuracy's count);
//   entropy and mean_logit: the entropy of the row's softmax, and its mean logit (TRL's entropy
//     and logits/* metrics).
struct SequenceRowSums {
  Tensor* aligned = nullptr;
  Tensor* argmax_hits = nullptr;
  Tensor* entropy = nullptr;
  Tensor* mean_logit = nullptr;
};

// DPO's log-likelihoods: f32 (num_sequences), entry s the sum of log softmax(hidden W^T)[target]
// over the rows whose target is not kIgnoreIndex and whose sequences[row] is s. hidden (N, C),
// weight (V, C), targets and sequences i32 (N) (a row not counted may name any sequence).
// Chunked as linear_cross_entropy; its backward computes each chunk's logits again. `sums` asks
// for more per sequence (SequenceRowSums).
Tensor linear_sequence_logps(const Tensor& hidden, const Tensor& weight, const Tensor& targets,
                             const Tensor& sequences, int64_t num_sequences, int64_t chunk_rows = 0,
                             const Tensor& targets_host = Tensor(), const SequenceRowSums& sums = {});

// Not differentiable: the reductions and updates the optimizer needs.
double sum_squares(const Tensor& x);
// The sum over xs (one device) of sum_squares, in f64: one host read for all of them.
double sum_squares(const std::vector<Tensor>& xs);
// The f64 an accumulator tensor (Backend::add_sum_squares' and its kin's: two f32 words) holds,
// read by the host (one host read).
double read_f64_accumulator(const Tensor& acc);
// 1 / ||w[r, :]|| for every row of w (R, C), f32 (R): DoRA's weight norm, which PEFT detaches.
Tensor row_inverse_norms(const Tensor& w);
void scale_(Tensor& x, float s);         // in place
// In place, by s / expected with s an f32 scalar on x's device (no host read); nothing is written
// where s equals expected.
void scale_(Tensor& x, const Tensor& s, float expected = 1.0f);

}  // namespace llm
