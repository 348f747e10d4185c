// defines: swiglu = silu(gate) * up (the Llama MLP's gate), forward and backward
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

Tensor swiglu(const Tensor& gate_in, const Tensor& up_in) {
  LLM_CHECK(gate_in.shape() == up_in.shape() && gate_in.dtype() == up_in.dtype(),
            "swiglu: gate " + gate_in.str() + " and up " + up_in.str() + " differ");
  Tensor gate = gate_in.contiguous(), up = up_in.contiguous();
  Tensor out = Tensor::empty(gate.shape(), gate.dtype(), gate.device());
  backend(gate.device()).swiglu_forward(gate, up, out);
  if (any_requires_grad({gate_in, up_in})) {
    record_node("swiglu", {gate_in, up_in}, {&out}, [gate, up](const Grads& g) -> Grads {
      Tensor dgate = Tensor::empty(gate.shape(), gate.dtype(), gate.device());
      Tensor dup = Tensor::empty(up.shape(), up.dtype(), up.device());
      backend(gate.device()).swiglu_backward(gate, up, g[0].contiguous(), dgate, dup);
      return {dgate, dup};
    });
  }
  return out;
}

}  // namespace llm
