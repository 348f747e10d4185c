// defines: linear_cross_entropy (lm_head GEMM fused with cross-entropy, chunk by chunk of rows)
//
// The [tokens x vocab] logits are the largest activation of a Llama step (2048 x 128256 f32 is
// 1 GiB, and its gradient another). Here they exist one chunk of rows at a time: each chunk's
// logits give its loss and, at once, its gradient, which is folded into d(hidden) and d(weight)
// before the next chunk (as Liger's fused linear cross-entropy), scaled by the seed the caller
// said backward would give (grad_seed). Backward only scales the two stored gradients by the
// incoming one over that seed, which writes nothing when they are equal. Nothing here waits for
// the device: the loss is summed where it is computed, and the incoming gradient is applied there
// too.
// The weight may be an f32 master of a loss computed in bf16: its gradient is then formed in f32
// (engine/ops/head_weight.h).
// EAFT and DFT (Axolotl's use_eaft, use_dft) weigh each row from its chunk's logits, before they
// are overwritten: the chunk's loss becomes the weighted one and its gradient rows are scaled by
// the weights.
#include <algorithm>
#include <cmath>
#include <utility>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"
#include "engine/ops/counted_rows.h"
#include "engine/ops/gemm_call.h"
#include "engine/ops/head_weight.h"

namespace llm {

int64_t default_cross_entropy_chunk_rows(int64_t vocab) {
  // About 128 Mi logits (512 MiB in f32) per chunk, in whole 256-row tiles of the chunk's GEMMs
  // when there are that many: Llama 3's 128256 columns would give 1046 rows, a logits GEMM whose
  // last tile of 128 rows is 22 rows full. Each chunk after the first reads and writes lm_head's
  // whole f32 gradient once more as its dW GEMM adds into it (2 GiB at llama3-1b, 4 at 8b): on
  // an H200 the llama3-1b step at 2048 tokens took 1.76 ms less in one chunk than in 4 of 512
  // rows (2026-12-04-gpu-run.md), for 0.75 GiB more. 1024 rows: 2 chunks there, 256 MiB more.
  const int64_t rows = std::max<int64_t>(1, (int64_t{1} << 27) / std::max<int64_t>(1, vocab));
  return rows >= 256 ? rows - rows % 256 : rows;
}

Tensor linear_cross_entropy(const Tensor& hidden_in, const Tensor& weight_in, const Tensor& targets_in,
                            int ignore_index, int64_t chunk_rows, const Tensor& targets_host,
                            TokenWeighting weighting, float grad_seed) {
  LLM_CHECK(hidden_in.dim() == 2 && weight_in.dim() == 2 && hidden_in.size(1) == weight_in.size(1),
            "linear_cross_entropy: hidden (N, C) and weight (V, C) expected, got " + hidden_in.str() +
                " and " + weight_in.str());
  LLM_CHECK(targets_in.dtype() == DType::i32 && targets_in.dim() == 1 && targets_in.size(0) == hidden_in.size(0),
            "linear_cross_entropy targets must be i32 (N), got " + targets_in.str());
  Tensor hidden = hidden_in.contiguous(), targets = targets_in.contiguous();
  // A seed of 0 (a micro-batch with no targets anywhere) cannot be divided out again: formed
  // unscaled, its gradients are scaled by the incoming 0 as any other.
  if (!(grad_seed != 0.0f && std::isfinite(grad_seed))) grad_seed = 1.0f;
  const HeadWeight head = head_weight_for(weight_in, hidden.dtype());
  const Tensor& weight = head.compute;
  const int64_t N = hidden.size(0), V = weight.size(0);
  if (chunk_rows <= 0) chunk_rows = default_cross_entropy_chunk_rows(V);
  chunk_rows = std::min(chunk_rows, std::max<int64_t>(N, 1));
  Backend& be = backend(hidden.device());

  LLM_CHECK(!targets_host.defined() || (targets_host.device().is_cpu() &&
                                         targets_host.dtype() == DType::i32 &&
                                         targets_host.shape() == targets_in.shape()),
            "linear_cross_entropy: targets_host must be the targets " + targets_in.str() +
                " in host memory, got " + targets_host.str());
  // The mean is over every counted row of all chunks, so each chunk's mean is re-weighted.
  const CountedRows counted = counted_rows(hidden, targets, host_targets(targets, targets_host), ignore_index);
  const int64_t total = counted.total;
  hidden = counted.hidden;
  targets = counted.targets;
  chunk_rows = std::min(chunk_rows, std::max<int64_t>(total, 1));
  const bool need_grad = any_requires_grad({hidden_in, weight_in});
  Tensor dhidden, dweight;
  if (need_grad) {
    dhidden = Tensor::empty(hidden.shape(), hidden.dtype(), hidden.device());
    // A frozen lm_head (an adapter run's) gets no gradient: no (V, C) buffer for one. The first
    // chunk's GEMM writes it (beta 0), so it is zeroed only when no row counts.
    if (weight_in.requires_grad())
      dweight = total > 0 ? Tensor::empty(weight.shape(), head.grad_dtype, weight.device())
                          : Tensor::zeros(weight.shape(), head.grad_dtype, weight.device());
  }
  // sum over chunks of chunk mean x rows / total, accumulated on the device in f32.
  Tensor loss = Tensor::zeros({}, DType::f32, hidden.device());
  Tensor logits = Tensor::empty({chunk_rows, V}, hidden.dtype(), hidden.device());
  Tensor dlogits = need_grad ? Tensor::empty({chunk_rows, V}, hidden.dtype(), hidden.device()) : Tensor();
  Tensor chunk_loss = Tensor::empty({}, DType::f32, hidden.device());
  Tensor lse = Tensor::empty({chunk_rows}, DType::f32, hidden.device());
  Tensor token_weights = weighting.any() ? Tensor::empty({chunk_rows}, DType::f32, hidden.device()) : Tensor();
  for (int64_t row = 0; row < total; row += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, total - row);
    Tensor h = hidden.narrow(0, row, rows), tc = targets.narrow(0, row, rows);
    Tensor lg = logits.narrow(0, 0, rows), ls = lse.narrow(0, 0, rows);
    gemm(matrices(h), false, matrices(weight), true, lg, 1, 0.0f);
    be.cross_entropy_forward(lg, tc, ignore_index, chunk_loss, ls);
    Tensor tw = weighting.any() ? token_weights.narrow(0, 0, rows) : Tensor();
    if (weighting.eaft_k > 0)
      be.topk_entropy_weights(lg, tc, ls, weighting.eaft_k, weighting.eaft_alpha, ignore_index, tw, chunk_loss);
    else if (weighting.dft)
      be.target_prob_weights(lg, tc, ls, ignore_index, tw, chunk_loss);
    const float share = static_cast<float>(rows) / static_cast<float>(total);  // every row counts
    be.axpby(1.0f, loss, share, chunk_loss, loss);
    if (!need_grad) continue;
    Tensor dh = dhidden.narrow(0, row, rows);
    // d(chunk mean) scaled to d(global mean), rows / total, times the seed backward will give.
    Tensor scale = Tensor::full({}, share * grad_seed, DType::f32, hidden.device());
    Tensor dl = dlogits.narrow(0, 0, rows);
    be.cross_entropy_backward(lg, tc, ls, scale, ignore_index, dl);
    if (tw.defined()) be.scale_rows(dl, tw, dl);  // the weights are constants
    gemm(matrices(dl), false, matrices(weight), false, dh, 1, 0.0f);  // d(hidden) = dlogits @ W
    if (dweight.defined()) gemm(matrices(dl), true, matrices(h), false, dweight, 1, row == 0 ? 0.0f : 1.0f);  // d(W) += dlogits^T h
  }
  if (need_grad) dhidden = scatter_counted_rows(counted, dhidden, N);
  if (need_grad) {
    record_node("linear_cross_entropy", {hidden_in, weight_in, targets_in}, {&loss},
                [dhidden, dweight, grad_seed](const Grads& g) mutable -> Grads {
      // The node runs once (the tape is consumed), so the stored gradients are scaled in place,
      // by the upstream gradient (over the seed they were formed with) where it lives, and handed
      // over: kept here too, a leaf's (an f32 lm_head's) would look shared to accumulate_grad and
      // be copied.
      Tensor dh = std::move(dhidden), dw = std::move(dweight);
      scale_(dh, g[0], grad_seed);
      if (dw.defined()) scale_(dw, g[0], grad_seed);
      return {dh, dw, Tensor()};
    });
  }
  return loss;
}

}  // namespace llm
