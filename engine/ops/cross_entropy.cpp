// defines: cross_entropy (mean over non-ignored rows; forward saves each row's logsumexp)
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

Tensor cross_entropy(const Tensor& logits_in, const Tensor& targets_in, int ignore_index) {
  LLM_CHECK(logits_in.dim() == 2, "cross_entropy expects logits (N, V), got " + logits_in.str());
  LLM_CHECK(targets_in.dtype() == DType::i32 && targets_in.dim() == 1 &&
                targets_in.size(0) == logits_in.size(0),
            "cross_entropy targets must be i32 (N) for " + logits_in.str() + ", got " + targets_in.str());
  Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  Tensor loss = Tensor::empty({}, DType::f32, logits.device());
  Tensor lse = Tensor::empty({logits.size(0)}, DType::f32, logits.device());
  backend(logits.device()).cross_entropy_forward(logits, targets, ignore_index, loss, lse);
  if (any_requires_grad({logits_in})) {
    record_node("cross_entropy", {logits_in, targets_in}, {&loss},
                [logits, targets, lse, ignore_index](const Grads& g) -> Grads {
      Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
      backend(logits.device()).cross_entropy_backward(logits, targets, lse, g[0], ignore_index, dlogits);
      return {dlogits, Tensor()};
    });
  }
  return loss;
}

}  // namespace llm
