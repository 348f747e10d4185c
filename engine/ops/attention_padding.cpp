// defines: attend_at_head_dim. The padding and the slicing back are products with constant
// matrices ([c I | 0] and [I; 0]): the matmul's own backward then slices the gradients back, and
// both backends already run it. The cost is a GEMM of width D per tensor, small beside attention,
// and three small matrices built and copied to the device per call: only head_dims no kernel takes
// come here (the small test models' 8), never Llama 3's 64 and 128.
#include "engine/ops/attention_padding.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

namespace {
// (rows, cols) with `value` on the diagonal, zeros elsewhere, in x's dtype on x's device.
Tensor diagonal(int64_t rows, int64_t cols, float value, const Tensor& like) {
  std::vector<float> m(rows * cols, 0.0f);
  for (int64_t i = 0; i < std::min(rows, cols); i++) m[i * cols + i] = value;
  return Tensor::from_floats(m, {rows, cols}).to(like.dtype()).to(like.device());
}

// x (B, S, heads, from) @ m (from, to) -> (B, S, heads, to).
Tensor last_dim_product(const Tensor& x, const Tensor& m) {
  const Shape s = x.shape();
  const Tensor flat = reshape(x.contiguous(), {s[0] * s[1] * s[2], s[3]});
  return reshape(matmul(flat, m), {s[0], s[1], s[2], m.size(1)});
}
}  // namespace

Tensor attend_at_head_dim(const AttendFn& attend, const Tensor& q, const Tensor& k, const Tensor& v,
                          int64_t padded) {
  const int64_t D = q.size(3);
  LLM_CHECK(padded > D, "attend_at_head_dim: head_dim " + std::to_string(D) + " padded to " +
                            std::to_string(padded));
  const float q_scale = std::sqrt(static_cast<float>(padded) / static_cast<float>(D));
  const Tensor widen = diagonal(D, padded, 1.0f, q);
  const Tensor out = attend(last_dim_product(q, diagonal(D, padded, q_scale, q)),
                            last_dim_product(k, widen), last_dim_product(v, widen));
  return last_dim_product(out, diagonal(padded, D, 1.0f, out));
}

}  // namespace llm
