// defines: attention (eager: materialised probabilities, GQA, optional causal mask)
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

Tensor attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, bool causal) {
  LLM_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && k_in.shape() == v_in.shape(),
            "attention expects q (B, S, H, D), k and v (B, S, Hkv, D); got " + q_in.str() + ", " +
                k_in.str() + ", " + v_in.str());
  int64_t B = q_in.size(0), S = q_in.size(1), H = q_in.size(2), D = q_in.size(3);
  int64_t Hkv = k_in.size(2);
  LLM_CHECK(k_in.size(0) == B && k_in.size(1) == S && k_in.size(3) == D && Hkv > 0 && H % Hkv == 0,
            "attention: k/v " + k_in.str() + " do not fit q " + q_in.str() +
                " (heads must be a multiple of kv heads)");
  Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  Tensor probs = Tensor::empty({B, H, S, S}, DType::f32, q.device());
  backend(q.device()).attention_forward(q, k, v, causal, out, probs);
  if (any_requires_grad({q_in, k_in, v_in})) {
    record_node("attention", {q_in, k_in, v_in}, {&out}, [q, k, v, probs, causal](const Grads& g) -> Grads {
      Tensor dq = Tensor::empty(q.shape(), q.dtype(), q.device());
      Tensor dk = Tensor::empty(k.shape(), k.dtype(), k.device());
      Tensor dv = Tensor::empty(v.shape(), v.dtype(), v.device());
      backend(q.device()).attention_backward(q, k, v, probs, g[0].contiguous(), causal, dq, dk, dv);
      return {dq, dk, dv};
    });
  }
  return out;
}

}  // namespace llm
