// defines: quantized_linear (forward and backward side by side), the frozen base layer of QLoRA (NF4)
// and of LoRA on a load_in_8bit base (int8): dequantise the whole weight into a scratch tensor,
// then one backend GEMM. The dequantisation costs O(out x in), the GEMM O(rows x
// out x in): at a training step's thousands of rows it is noise, and the GEMM stays the
// backend's fastest (OpenBLAS on the CPU, cuBLASLt on CUDA) instead of many tile-sized calls. The
// scratch is one weight in the compute dtype, freed when the call returns.
#include "engine/autograd.h"
#include "engine/check.h"
#include "engine/ops.h"
#include "engine/ops/gemm_call.h"

namespace llm {

Tensor quantized_linear(const Tensor& x_in, const QuantWeight& w) {
  LLM_CHECK(w.defined() && w.shape.size() == 2, "quantized_linear: the weight must be an (out, in) quantised matrix");
  LLM_CHECK(x_in.dim() >= 1 && x_in.size(-1) == w.shape[1],
            "quantized_linear: x " + x_in.str() + " for a weight of " + shape_str(w.shape));
  LLM_CHECK(x_in.device() == w.codes.device(),
            "quantized_linear: x " + x_in.str() + " and the weight are on different devices");
  Tensor x = x_in.contiguous();
  Shape out_shape = x.shape();
  out_shape.back() = w.shape[0];
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  {
    const Tensor weight = dequantize(w, x.dtype());  // (out, in)
    gemm(as_rows(x), false, matrices(weight), true, out, 1, 0.0f);
  }
  if (any_requires_grad({x_in})) {
    record_node("quantized_linear", {x_in}, {&out}, [w, x_shape = x.shape()](const Grads& g) -> Grads {
      const Tensor dout = g[0].contiguous();
      const Tensor weight = dequantize(w, dout.dtype());
      Tensor dx = Tensor::empty(x_shape, dout.dtype(), dout.device());
      gemm(as_rows(dout), false, matrices(weight), false, dx, 1, 0.0f);  // dx = dout W
      return {dx};
    });
  }
  return out;
}

}  // namespace llm
