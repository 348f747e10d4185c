// defines: sum (forward and backward), sum_squares
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace llm {

Tensor sum(const Tensor& x_in) {
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({}, DType::f32, x.device());
  backend(x.device()).sum(x, out);
  if (any_requires_grad({x_in})) {
    Shape shape = x.shape();
    DType dtype = x.dtype();
    record_node("sum", {x_in}, {&out}, [shape, dtype](const Grads& g) -> Grads {
      return {Tensor::full(shape, g[0].item(), dtype, g[0].device())};
    });
  }
  return out;
}

double sum_squares(const Tensor& x) { return backend(x.device()).sum_squares(x.contiguous()); }

}  // namespace llm
