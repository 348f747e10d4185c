// defines: fake_quantize_int4 (weights per group) and fake_quantize_int8_rows (activations per
// token), quantisation-aware training's ops, forward and backward
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

Tensor fake_quantize_int4(const Tensor& w_in, int64_t group) {
  LLM_CHECK(w_in.dim() == 2 && group > 0 && w_in.size(1) % group == 0,
            "fake_quantize_int4: w " + w_in.str() + " must be (R, C) with C a multiple of the group size " +
                std::to_string(group));
  Tensor w = w_in.contiguous();
  Tensor out = Tensor::empty(w.shape(), w.dtype(), w.device());
  backend(w.device()).fake_quant_int4_forward(w, group, out);
  if (any_requires_grad({w_in})) {
    // Backward recomputes each group's min, max and levels from w: nothing else is kept.
    record_node("fake_quantize_int4", {w_in}, {&out}, [w, group](const Grads& g) -> Grads {
      Tensor dout = g[0].contiguous();
      Tensor dw = Tensor::empty(w.shape(), w.dtype(), w.device());
      backend(w.device()).fake_quant_int4_backward(w, dout, group, dw);
      return {dw};
    });
  }
  return out;
}

Tensor fake_quantize_int8_rows(const Tensor& x_in) {
  LLM_CHECK(x_in.dim() == 2, "fake_quantize_int8_rows: x " + x_in.str() + " must be (N, C)");
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).fake_quant_int8_forward(x, out);
  if (any_requires_grad({x_in})) {
    record_node("fake_quantize_int8_rows", {x_in}, {&out}, [x](const Grads& g) -> Grads {
      Tensor dout = g[0].contiguous();
      Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
      backend(x.device()).fake_quant_int8_backward(x, dout, dx);
      return {dx};
    });
  }
  return out;
}

}  // namespace llm
