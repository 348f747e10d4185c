// defines: fp8_linear (forward and backward side by side): a linear layer with torchao
// Float8Linear's numerics (engine/fp8_math.h). Forward: x and w cast to e4m3 with a scale each,
// y = x8 w8^T. Backward: dy cast to e5m2, dx = dy8 w8, dw = dy8^T x8, the casts of x and w
// reused (torchao casts its saved high-precision x and w again, to the same values). The GEMMs run
// on the cast values in the compute dtype: fp8's numbers, not fp8 tensor cores' speed.
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"
#include "engine/ops/gemm_call.h"

namespace llm {

namespace {
Tensor cast_fp8(const Tensor& t, Fp8Format format) {
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  backend(t.device()).fake_quant_fp8(t, format, out);
  return out;
}
}  // namespace

Tensor fp8_linear(const Tensor& x_in, const Tensor& w_in) {
  LLM_CHECK(w_in.dim() == 2 && x_in.dim() >= 1 && x_in.size(-1) == w_in.size(1) && x_in.dtype() == w_in.dtype() &&
                x_in.device() == w_in.device(),
            "fp8_linear: x " + x_in.str() + " and weight " + w_in.str() + " do not fit");
  const Tensor x8 = cast_fp8(x_in.contiguous(), Fp8Format::e4m3), w8 = cast_fp8(w_in.contiguous(), Fp8Format::e4m3);
  Shape out_shape = x8.shape();
  out_shape.back() = w8.size(0);
  Tensor out = Tensor::empty(out_shape, x8.dtype(), x8.device());
  gemm(as_rows(x8), false, matrices(w8), true, out, 1, 0.0f);
  if (any_requires_grad({x_in, w_in})) {
    const bool need_x = x_in.requires_grad(), need_w = w_in.requires_grad();
    record_node("fp8_linear", {x_in, w_in}, {&out}, [x8, w8, need_x, need_w](const Grads& g) -> Grads {
      const Tensor dy8 = cast_fp8(g[0].contiguous(), Fp8Format::e5m2);
      Tensor dx, dw;
      if (need_x) {
        dx = Tensor::empty(x8.shape(), x8.dtype(), x8.device());
        gemm(as_rows(dy8), false, matrices(w8), false, dx, 1, 0.0f);  // dy8 w8
      }
      if (need_w) {
        dw = Tensor::empty(w8.shape(), w8.dtype(), w8.device());
        gemm(as_rows(dy8), true, as_rows(x8), false, dw, 1, 0.0f);  // dy8^T x8
      }
      return {dx, dw};
    });
  }
  return out;
}

}  // namespace llm
