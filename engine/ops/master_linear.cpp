// defines: master_linear (forward and backward side by side): linear(x, cast(master, x's dtype))
// with the weight's gradient written in f32 by its own GEMM (an f32 master, or a bf16 weight whose
// gradient is kept in f32).
//
// Mixed precision keeps f32 master weights and computes in bf16. Through cast and linear, the
// weight gradient is a bf16 GEMM output that the cast's backward then widens to f32: per
// parameter per step a 2-byte write, a 2-byte read and a 4-byte write, besides the rounding of
// every gradient element to bf16 on the way. Here the dW GEMM reads the same bf16 operands and
// writes f32 (cuBLASLt's bf16 x bf16 -> f32), once; into the weight's gradient itself (beta 1)
// when it already has one (gradient accumulation's later micro-batches), which saves a fresh f32
// gradient and accumulate_grad's pass over it. The forward and d(x) are the same bits as the
// unfused pair's.
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"
#include "engine/ops/gemm_call.h"

namespace llm {

Tensor master_linear(const Tensor& x_in, const Tensor& master) {
  // A weight kept in bf16 whose gradient is f32 (AutogradMeta::grad_in_f32: `bfloat16: true`, ZeRO's
  // compute copies) takes this path too: its f32 gradient comes from the GEMM, not a widening pass.
  const bool f32_grad = master.requires_grad() && master.autograd_meta()->grad_in_f32;
  if (master.dtype() == x_in.dtype() && (master.dtype() == DType::f32 || !f32_grad)) return linear(x_in, master);
  LLM_CHECK((master.dtype() == DType::f32 || master.dtype() == DType::bf16) && master.dim() == 2 &&
                x_in.dim() >= 1 && x_in.size(-1) == master.size(1) && x_in.device() == master.device(),
            "master_linear: x " + x_in.str() + " and master weight " + master.str() + " do not fit");
  const Tensor x = x_in.contiguous();
  const Tensor w = master.to(x.dtype());  // the compute copy: not recorded, the node below is
  Shape out_shape = x.shape();
  out_shape.back() = w.size(0);
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  gemm(as_rows(x), false, matrices(w), true, out, 1, 0.0f);
  if (any_requires_grad({x_in, master})) {
    const bool need_x = x_in.requires_grad(), need_w = master.requires_grad();
    // Each gradient keeps only what it reads: d(x) the weight's copy, d(w) the input.
    record_node("master_linear", {x_in, master}, {&out},
                [x = need_w ? x : Tensor(), w = need_x ? w : Tensor(), x_shape = x.shape(), need_x, need_w,
                 leaf = master.autograd_meta(), x_meta = need_x ? x_in.autograd_meta() : nullptr](const Grads& g) -> Grads {
      const Tensor dy = g[0].contiguous();
      Tensor dx, dw;
      if (need_x) {  // dy w, into x's gradient so far when it has one (q, k and v read one input)
        const GradOutput out_x = grad_output(x_meta.get(), x_shape, dy.dtype(), dy.device());
        Tensor target = out_x.buffer;
        gemm(as_rows(dy), false, matrices(w), false, target, 1, out_x.beta());
        dx = out_x.returned();
      }
      if (need_w) {  // dy^T x in f32, into the weight's gradient when it has one
        const GradOutput out_w = grad_output(leaf.get(), {dy.size(-1), x.size(-1)}, DType::f32, dy.device());
        Tensor target = out_w.buffer;
        gemm(as_rows(dy), true, as_rows(x), false, target, 1, out_w.beta());
        dw = out_w.returned();
      }
      return {dx, dw};  // either undefined when added in place
    });
  }
  return out;
}

}  // namespace llm
