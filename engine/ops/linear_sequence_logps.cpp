// defines: linear_sequence_logps (lm_head GEMM fused with each sequence's summed log-likelihood)
//
// DPO's policy term: log p(completion | prompt) of every sequence of a batch, the sum over its
// counted rows of log softmax(h W^T)[target]. As linear_cross_entropy, the (rows, V) logits exist
// one chunk of rows at a time. Unlike it, the gradient cannot be formed in the forward pass: each
// row's weight is the upstream gradient of its sequence, known only once the loss over whole
// pairs of sequences is. So the backward computes every chunk's logits again (one more lm_head
// GEMM per chunk), forms softmax - onehot, scales each row by minus its sequence's gradient, and
// folds that into d(hidden) and d(weight) (in f32 for an f32 master: engine/ops/head_weight.h).
#include <algorithm>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"
#include "engine/ops/counted_rows.h"
#include "engine/ops/gemm_call.h"
#include "engine/ops/head_weight.h"

namespace llm {

namespace {

// out (rows) f32 = logits[i, targets[i]] - lse[i]: the log-probability of each row's target.
// The gather reads the logits as a (rows * V, 1) table with ids i * V + target.
void row_target_logps(const Tensor& logits, const std::vector<int32_t>& targets, int64_t first, const Tensor& lse,
                      Tensor& out) {
  const int64_t rows = logits.size(0), V = logits.size(1);
  std::vector<int32_t> flat(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; i++) flat[i] = static_cast<int32_t>(i * V + targets[first + i]);
  Backend& be = backend(logits.device());
  const Tensor ids = Tensor::from_ints(flat, {rows}, logits.device());
  Tensor picked = Tensor::empty({rows, 1}, logits.dtype(), logits.device());
  be.embedding_forward(ids, logits.reshape({rows * V, 1}), picked);
  Tensor picked_f32 = picked;
  if (picked.dtype() != DType::f32) {
    picked_f32 = Tensor::empty({rows, 1}, DType::f32, logits.device());
    be.cast(picked, picked_f32);
  }
  be.axpby(1.0f, picked_f32.reshape({rows}), -1.0f, lse, out);
}

}  // namespace

Tensor linear_sequence_logps(const Tensor& hidden_in, const Tensor& weight_in, const Tensor& targets_in,
                             const Tensor& sequences_in, int64_t num_sequences, int64_t chunk_rows,
                             const Tensor& targets_host, const SequenceRowSums& sums) {
  LLM_CHECK(hidden_in.dim() == 2 && weight_in.dim() == 2 && hidden_in.size(1) == weight_in.size(1),
            "linear_sequence_logps: hidden (N, C) and weight (V, C) expected, got " + hidden_in.str() + " and " +
                weight_in.str());
  const int64_t N = hidden_in.size(0), V = weight_in.size(0);
  for (const Tensor* t : {&targets_in, &sequences_in})
    LLM_CHECK(t->dtype() == DType::i32 && t->dim() == 1 && t->size(0) == N,
              "linear_sequence_logps: targets and sequences must be i32 (" + std::to_string(N) + "), got " + t->str());
  LLM_CHECK(num_sequences >= 1, "linear_sequence_logps: num_sequences must be >= 1");
  Tensor hidden = hidden_in.contiguous();
  const HeadWeight head = head_weight_for(weight_in, hidden.dtype());
  const Tensor weight = head.compute;
  Backend& be = backend(hidden.device());
  const std::vector<int32_t> all_targets = host_targets(targets_in, targets_host);
  const CountedRows counted = counted_rows(hidden, targets_in.contiguous(), all_targets, kIgnoreIndex);
  const std::vector<int32_t> all_sequences = sequences_in.to_ints();  // a CPU tensor: no wait
  const std::vector<int32_t>& targets = counted.host_targets;
  std::vector<int32_t> sequences;  // of the counted rows, in host memory
  for (int64_t row : counted.rows) {
    LLM_CHECK(all_sequences[row] >= 0 && all_sequences[row] < num_sequences,
              "linear_sequence_logps: row " + std::to_string(row) + " names sequence " +
                  std::to_string(all_sequences[row]) + " of " + std::to_string(num_sequences));
    LLM_CHECK(all_targets[row] >= 0 && all_targets[row] < V,
              "linear_sequence_logps: target " + std::to_string(all_targets[row]) + " outside the vocabulary of " +
                  std::to_string(V));
    sequences.push_back(all_sequences[row]);
  }
  const int64_t total = counted.total;
  if (chunk_rows <= 0) chunk_rows = default_cross_entropy_chunk_rows(V);
  chunk_rows = std::min(chunk_rows, std::max<int64_t>(total, 1));
  const Tensor kept = counted.hidden, kept_targets = counted.targets;
  const Tensor kept_sequences = Tensor::from_ints(sequences, {total}, hidden.device());

  Tensor logps = Tensor::zeros({num_sequences}, DType::f32, hidden.device());
  Tensor lse = Tensor::empty({std::max<int64_t>(total, 1)}, DType::f32, hidden.device());  // kept for backward
  for (Tensor* out : {sums.aligned, sums.argmax_hits, sums.entropy, sums.mean_logit})
    if (out) *out = Tensor::zeros({num_sequences}, DType::f32, hidden.device());
  const bool stats = sums.entropy || sums.mean_logit;
  {
    Tensor logits = Tensor::empty({chunk_rows, V}, hidden.dtype(), hidden.device());
    Tensor chunk_loss = Tensor::empty({}, DType::f32, hidden.device());
    // Per-row values of a chunk, summed per sequence: the log-probabilities, then those asked for.
    const auto rows_f32 = [&](bool wanted) { return wanted ? Tensor::empty({chunk_rows}, DType::f32, hidden.device()) : Tensor(); };
    Tensor row_logps = rows_f32(true), row_hits = rows_f32(sums.argmax_hits), row_entropy = rows_f32(stats),
           row_mean = rows_f32(stats), doubled_lse = rows_f32(sums.aligned), aligned = rows_f32(sums.aligned);
    for (int64_t row = 0; row < total; row += chunk_rows) {
      const int64_t rows = std::min(chunk_rows, total - row);
      Tensor lg = logits.narrow(0, 0, rows), ls = lse.narrow(0, row, rows), rl = row_logps.narrow(0, 0, rows);
      const Tensor chunk_targets = kept_targets.narrow(0, row, rows), chunk_sequences = kept_sequences.narrow(0, row, rows);
      // The sum per sequence: a scatter-add of rows, in row order on every backend.
      const auto add_per_sequence = [&](const Tensor& values, Tensor& out) {
        Tensor table = out.reshape({num_sequences, 1});
        be.embedding_backward(chunk_sequences, values.reshape({rows, 1}), table);
      };
      gemm(matrices(kept.narrow(0, row, rows)), false, matrices(weight), true, lg, 1, 0.0f);
      be.cross_entropy_forward(lg, chunk_targets, kIgnoreIndex, chunk_loss, ls);
      row_target_logps(lg, targets, row, ls, rl);
      add_per_sequence(rl, logps);
      // The rest read the logits before WPO's doubling below rewrites them.
      if (sums.argmax_hits) {
        Tensor rh = row_hits.narrow(0, 0, rows);
        be.argmax_hits(lg, chunk_targets, kIgnoreIndex, rh);
        add_per_sequence(rh, *sums.argmax_hits);
      }
      if (stats) {
        Tensor re = row_entropy.narrow(0, 0, rows), rm = row_mean.narrow(0, 0, rows);
        be.softmax_stats(lg, ls, re, rm);
        if (sums.entropy) add_per_sequence(re, *sums.entropy);
        if (sums.mean_logit) add_per_sequence(rm, *sums.mean_logit);
      }
      if (sums.aligned) {  // log p - (logsumexp(2 logits) - 2 logsumexp(logits)), summed the same way
        Tensor dl = doubled_lse.narrow(0, 0, rows), al = aligned.narrow(0, 0, rows);
        be.scale(lg, 2.0f);  // the chunk's logits are not read again (backward computes them afresh)
        be.cross_entropy_forward(lg, chunk_targets, kIgnoreIndex, chunk_loss, dl);
        be.axpby(1.0f, dl, -2.0f, ls, al);
        be.axpby(1.0f, rl, -1.0f, al, al);
        add_per_sequence(al, *sums.aligned);
      }
    }
  }
  if (any_requires_grad({hidden_in, weight_in})) {
    const bool weight_grad = weight_in.requires_grad();
    record_node("linear_sequence_logps", {hidden_in, weight_in, targets_in, sequences_in}, {&logps},
                [counted, kept, weight, kept_targets, kept_sequences, lse, total, chunk_rows, N, V, num_sequences,
                 weight_grad, grad_dtype = head.grad_dtype](const Grads& g) -> Grads {
      Backend& be = backend(kept.device());
      // Each counted row's factor: minus its sequence's upstream gradient (d log p / d logits is
      // onehot - softmax, the negative of what cross_entropy_backward forms).
      Tensor factors = Tensor::empty({std::max<int64_t>(total, 1), 1}, DType::f32, kept.device());
      if (total > 0) be.embedding_forward(kept_sequences, g[0].contiguous().reshape({num_sequences, 1}), factors);
      be.scale(factors, -1.0f);
      Tensor dkept = Tensor::empty(kept.shape(), kept.dtype(), kept.device());
      // Written by the first chunk's GEMM (beta 0): zeroed only when no row counts.
      Tensor dweight = !weight_grad ? Tensor()
                       : total > 0  ? Tensor::empty(weight.shape(), grad_dtype, weight.device())
                                    : Tensor::zeros(weight.shape(), grad_dtype, weight.device());
      Tensor logits = Tensor::empty({chunk_rows, V}, kept.dtype(), kept.device());
      Tensor dlogits = Tensor::empty({chunk_rows, V}, kept.dtype(), kept.device());
      for (int64_t row = 0; row < total; row += chunk_rows) {
        const int64_t rows = std::min(chunk_rows, total - row);
        Tensor h = kept.narrow(0, row, rows), lg = logits.narrow(0, 0, rows), dl = dlogits.narrow(0, 0, rows);
        Tensor dh = dkept.narrow(0, row, rows);
        gemm(matrices(h), false, matrices(weight), true, lg, 1, 0.0f);
        // dloss = rows: cross_entropy_backward divides by the count of rows, leaving softmax - onehot.
        const Tensor unit = Tensor::full({}, static_cast<float>(rows), DType::f32, kept.device());
        be.cross_entropy_backward(lg, kept_targets.narrow(0, row, rows), lse.narrow(0, row, rows), unit, kIgnoreIndex,
                                  dl);
        be.scale_rows(dl, factors.narrow(0, row, rows).reshape({rows}), dl);
        gemm(matrices(dl), false, matrices(weight), false, dh, 1, 0.0f);                   // d(hidden) = dlogits @ W
        if (dweight.defined()) gemm(matrices(dl), true, matrices(h), false, dweight, 1, row == 0 ? 0.0f : 1.0f);  // d(W) += dlogits^T h
      }
      return {scatter_counted_rows(counted, dkept, N), dweight, Tensor(), Tensor()};
    });
  }
  return logps;
}

}  // namespace llm
