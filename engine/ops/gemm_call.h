// Matrices and gemm: the one place engine ops turn tensors into a backend GEMM call (matmul,
// linear_cross_entropy, quantized_linear and fp8_linear use it).
#pragma once
#include <algorithm>

#include "engine/backend.h"
#include "engine/check.h"

namespace llm {

// A stack of row-major matrices inside a contiguous tensor: `batch` matrices of rows x cols,
// `stride` elements apart (0: one matrix shared by every batch entry).
struct Matrices {
  const Tensor* t;
  int64_t batch, rows, cols, stride;
};

inline Matrices matrices(const Tensor& t) {
  int64_t rows = t.size(-2), cols = t.size(-1);
  int64_t batch = t.numel() / std::max<int64_t>(rows * cols, 1);
  return {&t, batch, rows, cols, t.dim() == 2 ? 0 : rows * cols};
}

// t (..., cols) as one matrix of rows x cols: a linear layer's input, output or gradient.
inline Matrices as_rows(const Tensor& t) { return {&t, 1, t.numel() / t.size(-1), t.size(-1), 0}; }

// out (batch, m, n) = alpha * op(x) @ op(y) + beta * out.
inline void gemm(const Matrices& x, bool tx, const Matrices& y, bool ty, Tensor& out,
                 int64_t batch, float beta, float alpha = 1.0f) {
  GemmArgs g;
  g.a = x.t->data_ptr();
  g.b = y.t->data_ptr();
  g.c = out.data_ptr();
  LLM_CHECK(x.t->dtype() == y.t->dtype(), "matmul: operands " + x.t->str() + " and " + y.t->str() + " differ in dtype");
  g.dtype = x.t->dtype();
  g.c_dtype = out.dtype();
  g.batch = batch;
  g.m = tx ? x.cols : x.rows;
  g.k = tx ? x.rows : x.cols;
  g.n = ty ? y.rows : y.cols;
  LLM_CHECK((ty ? y.cols : y.rows) == g.k, "matmul: inner dimensions differ");
  g.trans_a = tx;
  g.trans_b = ty;
  g.lda = x.cols;
  g.ldb = y.cols;
  g.ldc = g.n;
  g.stride_a = x.stride;
  g.stride_b = y.stride;
  g.stride_c = g.m * g.n;
  g.alpha = alpha;
  g.beta = beta;
  backend(out.device()).gemm(g);
}

}  // namespace llm
