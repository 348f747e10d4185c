// Every differentiable op, by name. Each lives in engine/ops/<name>.cpp with its backward beside
// its forward, dispatches to the backend of its inputs' device, and records one autograd node.
// Shapes: B batch, S sequence, H query heads, Hkv key/value heads, D head_dim, C channels,
// V vocabulary, N rows (tokens).
#pragma once
#include "engine/tensor.h"

namespace llm {

// Views and conversions.
Tensor reshape(const Tensor& x, const Shape& shape);  // differentiable view
Tensor cast(const Tensor& x, DType dtype);

// Elementwise (same shapes) and reductions.
Tensor add(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor sum(const Tensor& x);  // f32 scalar (shape [])

// matmul: a (..., M, K) @ b (K, N) -> (..., M, N), or batched b (..., K, N) with the same
// leading dims as a. trans_a / trans_b take the last two dims of a / b transposed (no copy).
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// x (..., in) @ w^T with w (out, in), the layout of HF's nn.Linear weights.
inline Tensor linear(const Tensor& x, const Tensor& w) { return matmul(x, w, false, true); }

// embedding: ids i32 (...) into table (V, C) -> (..., C).
Tensor embedding(const Tensor& ids, const Tensor& table);

// rmsnorm over the last dim: x (..., C), weight (C): x / sqrt(mean(x^2) + eps) * weight.
Tensor rmsnorm(const Tensor& x, const Tensor& weight, float eps);

// RoPE as HF's Llama (rotate_half: dims i and i + D/2 form a pair), with Llama 3 frequency
// scaling when factor > 0.
struct RopeConfig {
  float theta = 500000.0f;
  float factor = 0.0f;  // 0: no scaling
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_max_position_embeddings = 8192;
};
std::vector<float> rope_inv_freq(const RopeConfig& config, int head_dim);  // D/2 frequencies
// x (B, S, Hx, D), positions i32 (B, S) -> rotated x.
Tensor rope(const Tensor& x, const Tensor& positions, const RopeConfig& config);

// swiglu: silu(gate) * up, same shapes.
Tensor swiglu(const Tensor& gate, const Tensor& up);

// Eager attention (materialised scores, the reference for every other attention):
// q (B, S, H, D), k and v (B, S, Hkv, D) with H % Hkv == 0 (GQA) -> (B, S, H, D).
// softmax(q k^T / sqrt(D)) v, causal masks keys after the query.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal);

// Cross-entropy: logits (N, V), targets i32 (N) -> f32 scalar: mean of -log softmax(logits)[target]
// over rows whose target is not ignore_index.
constexpr int kIgnoreIndex = -100;
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int ignore_index = kIgnoreIndex);

// Not differentiable: the reductions and updates the optimizer needs.
double sum_squares(const Tensor& x);
void scale_(Tensor& x, float s);  // in place

}  // namespace llm
