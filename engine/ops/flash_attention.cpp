// defines: flash_attention, s2_attention, mem_efficient_attention, cudnn_attention (the tiled
// attentions and cuDNN's: forward saves the row logsumexp, backward recomputes the probabilities
// from it)
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"
#include "engine/ops/attention_padding.h"

namespace llm {

namespace {

enum class Kernel { flash, mem_efficient, cudnn };  // which backend kernel pair runs the mask

Tensor tiled_attention(const char* op, Kernel kernel, const Tensor& q_in, const Tensor& k_in,
                       const Tensor& v_in, AttentionMask mask, const Tensor& bias_in) {
  const std::string name = op;
  LLM_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && k_in.shape() == v_in.shape(),
            name + " expects q (B, S, H, D), k and v (B, S, Hkv, D); got " + q_in.str() + ", " +
                k_in.str() + ", " + v_in.str());
  const int64_t B = q_in.size(0), S = q_in.size(1), H = q_in.size(2), Hkv = k_in.size(2);
  LLM_CHECK(k_in.size(0) == B && k_in.size(1) == S && k_in.size(3) == q_in.size(3) && Hkv > 0 &&
                H % Hkv == 0 && q_in.dtype() == k_in.dtype() && k_in.dtype() == v_in.dtype(),
            name + ": k/v " + k_in.str() + " do not fit q " + q_in.str() +
                " (same dtype; heads a multiple of kv heads)");
  if (kernel != Kernel::cudnn) {  // cuDNN takes its own head_dims
    const int64_t padded = backend(q_in.device()).tiled_attention_head_dim(q_in.size(3));
    if (padded != q_in.size(3))
      return attend_at_head_dim(
          [&](const Tensor& q, const Tensor& k, const Tensor& v) {
            return tiled_attention(op, kernel, q, k, v, mask, bias_in);
          },
          q_in, k_in, v_in, padded);
  }
  Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  Tensor lse = Tensor::empty({B, H, S}, DType::f32, q.device());
  Backend& be = backend(q.device());
  switch (kernel) {
    case Kernel::flash: be.flash_attention_forward(q, k, v, mask, out, lse); break;
    case Kernel::mem_efficient: be.mem_efficient_attention_forward(q, k, v, mask, out, lse); break;
    case Kernel::cudnn: be.cudnn_attention_forward(q, k, v, mask, out, lse); break;
  }
  if (!any_requires_grad({q_in, k_in, v_in, bias_in})) return out;
  const bool wants_dbias = bias_in.defined() && bias_in.requires_grad();
  record_node(op, {q_in, k_in, v_in, bias_in}, {&out},
              [=](const Grads& g) -> Grads {
                Tensor dout = g[0].contiguous();
                Tensor dq = Tensor::empty(q.shape(), q.dtype(), q.device());
                Tensor dk = Tensor::empty(k.shape(), k.dtype(), k.device());
                Tensor dv = Tensor::empty(v.shape(), v.dtype(), v.device());
                Tensor dbias;
                if (wants_dbias) dbias = Tensor::empty(mask.bias.shape(), DType::f32, q.device());
                Backend& be = backend(q.device());
                switch (kernel) {
                  case Kernel::flash:
                    be.flash_attention_backward(q, k, v, out, lse, dout, mask, dq, dk, dv);
                    break;
                  case Kernel::mem_efficient:
                    be.mem_efficient_attention_backward(q, k, v, out, lse, dout, mask, dq, dk,
                                                        dv, dbias);
                    break;
                  case Kernel::cudnn:
                    be.cudnn_attention_backward(q, k, v, out, lse, dout, mask, dq, dk, dv);
                    break;
                }
                return {dq, dk, dv, dbias};
              });
  return out;
}

}  // namespace

Tensor flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  AttentionMask mask;
  mask.causal = causal;
  return tiled_attention("flash_attention", Kernel::flash, q, k, v, mask, Tensor());
}

Tensor cudnn_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  AttentionMask mask;
  mask.causal = causal;
  return tiled_attention("cudnn_attention", Kernel::cudnn, q, k, v, mask, Tensor());
}

Tensor s2_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t group_size) {
  const int64_t S = q.dim() == 4 ? q.size(1) : 0;
  LLM_CHECK(group_size > 0 && S % group_size == 0,
            "s2_attention: sequence length " + std::to_string(S) +
                " is not a multiple of the S2 group size " + std::to_string(group_size) +
                " (s2_group_size_ratio x the row's length); pick s2_group_size_ratio so that it is");
  AttentionMask mask;
  mask.causal = true;
  mask.s2_group = group_size;
  return tiled_attention("s2_attention", Kernel::flash, q, k, v, mask, Tensor());
}

Tensor mem_efficient_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                               const Tensor& bias, const Tensor& doc_ids) {
  AttentionMask mask;
  mask.causal = causal;
  if (bias.defined()) {
    const bool fits = q.dim() == 4 && bias.dim() == 4 && bias.dtype() == DType::f32 &&
                      (bias.size(0) == 1 || bias.size(0) == q.size(0)) &&
                      (bias.size(1) == 1 || bias.size(1) == q.size(2)) &&
                      bias.size(2) == q.size(1) && bias.size(3) == q.size(1);
    LLM_CHECK(fits, "mem_efficient_attention: bias must be f32 (B or 1, H or 1, S, S) for q " +
                        q.str() + ", got " + bias.str());
    mask.bias = bias.contiguous();
  }
  if (doc_ids.defined()) {
    LLM_CHECK(q.dim() == 4 && doc_ids.dtype() == DType::i32 &&
                  doc_ids.shape() == Shape({q.size(0), q.size(1)}),
              "mem_efficient_attention: doc_ids must be i32 (B, S) for q " + q.str() + ", got " +
                  doc_ids.str());
    mask.doc_ids = doc_ids.contiguous();
  }
  return tiled_attention("mem_efficient_attention", Kernel::mem_efficient, q, k, v, mask, bias);
}

}  // namespace llm
