// defines: add_rmsnorm (a residual add fused with the rmsnorm after it: forward writes the sum
// and the normed rows in one pass; backward adds the norm's d(sum) to the sum's own gradient)
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

AddNorm add_rmsnorm(const Tensor& x_in, const Tensor& r_in, const Tensor& weight, float eps) {
  LLM_CHECK(x_in.shape() == r_in.shape() && x_in.dtype() == r_in.dtype() &&
                x_in.device() == r_in.device(),
            "add_rmsnorm: operands " + x_in.str() + " and " + r_in.str() + " differ");
  LLM_CHECK(weight.dim() == 1 && x_in.dim() >= 1 && x_in.size(-1) == weight.size(0),
            "add_rmsnorm: weight " + weight.str() + " for input " + x_in.str());
  Tensor x = x_in.contiguous(), r = r_in.contiguous(), w = weight.contiguous();
  AddNorm out{Tensor::empty(x.shape(), x.dtype(), x.device()),
              Tensor::empty(x.shape(), x.dtype(), x.device())};
  Tensor rstd = Tensor::empty({x.numel() / x.size(-1)}, DType::f32, x.device());
  backend(x.device()).add_rmsnorm_forward(x, r, w, eps, out.sum, out.normed, rstd);
  if (any_requires_grad({x_in, r_in, weight})) {
    const Tensor h = out.sum;  // saved before the recording gives it autograd's meta
    record_node("add_rmsnorm", {x_in, r_in, weight}, {&out.sum, &out.normed},
                [h, w, rstd](const Grads& g) -> Grads {
      // g[0]: the sum's gradient from its other uses (zeros if none), g[1]: the norm's.
      Tensor dh = Tensor::empty(h.shape(), h.dtype(), h.device());
      Tensor dw = Tensor::empty(w.shape(), w.dtype(), w.device());
      backend(h.device()).add_rmsnorm_backward(h, w, rstd, g[1].contiguous(), g[0].contiguous(),
                                               dh, dw);
      return {dh, dh, dw};
    });
  }
  return out;
}

}  // namespace llm
