// defines: sum (forward and backward), sum_squares (of one tensor or many, one host read)
#include <cstring>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
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
      Tensor dx = Tensor::full(shape, 1.0f, dtype, g[0].device());
      scale_(dx, g[0]);  // the upstream gradient stays on the device
      return {dx};
    });
  }
  return out;
}

double sum_squares(const Tensor& x) { return sum_squares(std::vector<Tensor>{x}); }

double sum_squares(const std::vector<Tensor>& xs) {
  if (xs.empty()) return 0.0;
  const Device device = xs[0].device();
  Tensor acc = Tensor::zeros({2}, DType::f32, device);  // all-zero words: the f64 0.0
  std::vector<Tensor> dense;
  for (const Tensor& x : xs) {
    LLM_CHECK(x.device() == device, "sum_squares: " + x.str() + " is not on " + device.str());
    dense.push_back(x.contiguous());
  }
  backend(device).add_sum_squares(dense, acc);
  return read_f64_accumulator(acc);
}

double read_f64_accumulator(const Tensor& acc) {
  require_f64_accumulator("read_f64_accumulator", acc);
  const std::vector<float> words = acc.to_floats();  // f32 copied as they are: the f64's bits
  double total = 0.0;
  std::memcpy(&total, words.data(), sizeof(total));
  return total;
}

}  // namespace llm
