// defines: scale_columns (forward and backward side by side), row_inverse_norms (not
// differentiable): the two pieces of DoRA's per-output-feature scaling (model/lora.h);
// scale_rows by constant factors (SSMax's per-query scale)
#include <algorithm>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

Tensor scale_columns(const Tensor& x_in, const Tensor& s_in) {
  LLM_CHECK(x_in.dim() >= 1 && s_in.dim() == 1 && s_in.size(0) == x_in.size(-1) &&
                s_in.dtype() == DType::f32 && s_in.device() == x_in.device(),
            "scale_columns: factors " + s_in.str() + " (f32, one per column) for " + x_in.str());
  Tensor x = x_in.contiguous(), s = s_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).scale_columns(x, s, out);
  if (any_requires_grad({x_in, s_in})) {
    const bool need_x = x_in.requires_grad(), need_s = s_in.requires_grad();
    record_node("scale_columns", {x_in, s_in}, {&out}, [x, s, need_x, need_s](const Grads& g) -> Grads {
      Backend& be = backend(x.device());
      const Tensor dy = g[0].contiguous();
      Tensor dx, ds;
      if (need_x) {  // d(x * s)/dx = s, column by column
        dx = Tensor::empty(x.shape(), x.dtype(), x.device());
        be.scale_columns(dy, s, dx);
      }
      if (need_s) {  // d/ds[c] = sum over rows of dy * x
        ds = Tensor::empty(s.shape(), DType::f32, s.device());
        be.column_dot(dy, x, ds);
      }
      return {dx, ds};
    });
  }
  return out;
}

Tensor scale_rows(const Tensor& x_in, const Tensor& s_in) {
  LLM_CHECK(x_in.dim() >= 1 && s_in.dim() == 1 && s_in.size(0) == x_in.size(0) &&
                s_in.dtype() == DType::f32 && s_in.device() == x_in.device(),
            "scale_rows: factors " + s_in.str() + " (f32, one per row) for " + x_in.str());
  Tensor x = x_in.contiguous(), s = s_in.contiguous();
  const Tensor rows = x.reshape({x.size(0), x.numel() / std::max<int64_t>(x.size(0), 1)});
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor out_rows = out.reshape(rows.shape());
  backend(x.device()).scale_rows(rows, s, out_rows);
  if (any_requires_grad({x_in})) {
    record_node("scale_rows", {x_in}, {&out}, [s](const Grads& g) -> Grads {
      const Tensor dy = g[0].contiguous();  // d(x * s)/dx = s, row by row
      const Tensor dy_rows = dy.reshape({dy.size(0), dy.numel() / std::max<int64_t>(dy.size(0), 1)});
      Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
      Tensor dx_rows = dx.reshape(dy_rows.shape());
      backend(dy.device()).scale_rows(dy_rows, s, dx_rows);
      return {dx};
    });
  }
  return out;
}

Tensor row_inverse_norms(const Tensor& w_in) {
  LLM_CHECK(w_in.dim() >= 1 && w_in.numel() > 0, "row_inverse_norms of " + w_in.str());
  const Tensor w = w_in.contiguous();
  Tensor out = Tensor::empty({w.numel() / w.size(-1)}, DType::f32, w.device());
  backend(w.device()).row_inverse_norms(w, out);
  return out;
}

}  // namespace llm
