// defines: rmsnorm (forward saves 1/rms per row; backward gives dx and dweight)
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

Tensor rmsnorm(const Tensor& x_in, const Tensor& weight, float eps) {
  LLM_CHECK(weight.dim() == 1 && x_in.dim() >= 1 && x_in.size(-1) == weight.size(0),
            "rmsnorm: weight " + weight.str() + " for input " + x_in.str());
  Tensor x = x_in.contiguous(), w = weight.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor rstd = Tensor::empty({x.numel() / x.size(-1)}, DType::f32, x.device());
  backend(x.device()).rmsnorm_forward(x, w, eps, y, rstd);
  if (any_requires_grad({x_in, weight})) {
    record_node("rmsnorm", {x_in, weight}, {&y}, [x, w, rstd](const Grads& g) -> Grads {
      Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
      Tensor dw = Tensor::empty(w.shape(), w.dtype(), w.device());
      backend(x.device()).rmsnorm_backward(x, w, rstd, g[0].contiguous(), dx, dw);
      return {dx, dw};
    });
  }
  return y;
}

}  // namespace llm
