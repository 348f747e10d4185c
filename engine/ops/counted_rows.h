// CountedRows: the rows of an lm_head input whose target counts, gathered into one block. A row
// whose target is ignored (a prompt under train_on_inputs: false, padding) adds nothing to a loss
// or to any gradient, so the fused lm_head ops (linear_cross_entropy, linear_sequence_logps) run
// only these rows through the (rows, V) logits: for SFT and DPO batches most of that work.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/backend.h"
#include "engine/tensor.h"

namespace llm {

struct CountedRows {
  Tensor hidden;   // (total, C): the counted rows, in order (`hidden` itself when all count)
  Tensor targets;  // i32 (total), on hidden's device
  Tensor index;    // i32 (total): each one's row in the whole block; undefined when all count
  std::vector<int64_t> rows;  // the same indices in host memory (every row when all count)
  std::vector<int32_t> host_targets;  // `targets` in host memory
  int64_t total = 0;
};

inline CountedRows counted_rows(const Tensor& hidden, const Tensor& targets, const std::vector<int32_t>& host_targets,
                                int ignore_index) {
  CountedRows out;
  for (int64_t i = 0; i < static_cast<int64_t>(host_targets.size()); i++)
    if (host_targets[i] != ignore_index) {
      out.rows.push_back(i);
      out.host_targets.push_back(host_targets[i]);
    }
  out.total = static_cast<int64_t>(out.rows.size());
  if (out.total == hidden.size(0)) {
    out.hidden = hidden;
    out.targets = targets;
    return out;
  }
  const std::vector<int32_t> index(out.rows.begin(), out.rows.end());
  out.index = Tensor::from_ints(index, {out.total}, hidden.device());
  out.hidden = Tensor::empty({out.total, hidden.size(1)}, hidden.dtype(), hidden.device());
  if (out.total > 0) backend(hidden.device()).embedding_forward(out.index, hidden, out.hidden);  // a gather of rows
  out.targets = Tensor::from_ints(out.host_targets, {out.total}, hidden.device());
  return out;
}

// d (total, C), the gradient of the counted rows, back to every row of an (N, C) block: zeros
// where the target is ignored.
inline Tensor scatter_counted_rows(const CountedRows& counted, const Tensor& d, int64_t N) {
  if (!counted.index.defined()) return d;
  Tensor whole = Tensor::zeros({N, d.size(1)}, d.dtype(), d.device());
  if (counted.total > 0) backend(d.device()).embedding_backward(counted.index, d, whole);  // a scatter of rows
  return whole;
}

// The targets in host memory: targets_host when the caller has them (a batch before its copy to
// the device), else read from `targets` (on a GPU that waits for the device).
inline std::vector<int32_t> host_targets(const Tensor& targets, const Tensor& targets_host) {
  if (!targets_host.defined()) return targets.to_ints();
  const Tensor th = targets_host.contiguous();
  return {th.data<int32_t>(), th.data<int32_t>() + th.numel()};
}

}  // namespace llm
