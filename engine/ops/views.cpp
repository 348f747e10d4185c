// defines: reshape, cast (differentiable views and conversions)
#include "engine/autograd.h"
#include "engine/ops.h"

namespace llm {

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor y = x.reshape(shape);
  if (any_requires_grad({x})) {
    Shape x_shape = x.shape();
    record_node("reshape", {x}, {&y}, [x_shape](const Grads& g) -> Grads {
      return {g[0].contiguous().reshape(x_shape)};
    });
  }
  return y;
}

Tensor cast(const Tensor& x, DType dtype) {
  Tensor y = x.to(dtype);
  if (any_requires_grad({x})) {
    DType x_dtype = x.dtype();
    record_node("cast", {x}, {&y}, [x_dtype](const Grads& g) -> Grads { return {g[0].to(x_dtype)}; });
  }
  return y;
}

}  // namespace llm
