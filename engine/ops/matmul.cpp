// defines: matmul (forward and backward), on the backend's strided batched GEMM
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"
#include "engine/ops/gemm_call.h"

namespace llm {

namespace {

// When b is one matrix shared by the batch and a is not transposed, the batch folds into rows:
// one large GEMM instead of many small ones.
Matrices fold_rows(const Matrices& m) { return {m.t, 1, m.batch * m.rows, m.cols, 0}; }

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b) {
  LLM_CHECK(a_in.dim() >= 2 && b_in.dim() >= 2, "matmul needs matrices: " + a_in.str() + " @ " + b_in.str());
  LLM_CHECK(a_in.dtype() == b_in.dtype() && a_in.device() == b_in.device(),
            "matmul operands differ: " + a_in.str() + " @ " + b_in.str());
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Matrices ma = matrices(a), mb = matrices(b);
  bool broadcast_b = b.dim() == 2;
  LLM_CHECK(broadcast_b || Shape(a.shape().begin(), a.shape().end() - 2) ==
                               Shape(b.shape().begin(), b.shape().end() - 2),
            "matmul batch dims differ: " + a.str() + " @ " + b.str());
  int64_t m = trans_a ? ma.cols : ma.rows, k = trans_a ? ma.rows : ma.cols;
  int64_t n = trans_b ? mb.rows : mb.cols;
  LLM_CHECK((trans_b ? mb.cols : mb.rows) == k,
            "matmul inner dims differ: " + a.str() + (trans_a ? "^T" : "") + " @ " + b.str() +
                (trans_b ? "^T" : ""));
  Shape out_shape(a.shape().begin(), a.shape().end() - 2);
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  bool fold = broadcast_b && !trans_a;
  if (fold)
    gemm(fold_rows(ma), false, mb, trans_b, out, 1, 0.0f);
  else
    gemm(ma, trans_a, mb, trans_b, out, ma.batch, 0.0f);

  if (any_requires_grad({a_in, b_in})) {
    bool need_a = a_in.requires_grad(), need_b = b_in.requires_grad();
    record_node("matmul", {a_in, b_in}, {&out},
                [a, b, trans_a, trans_b, need_a, need_b, fold,
                 a_meta = need_a ? a_in.autograd_meta() : nullptr](const Grads& g) -> Grads {
      Tensor dout = g[0].contiguous();
      Matrices ma = matrices(a), mb = matrices(b), md = matrices(dout);
      Tensor da, db;
      if (need_a) {  // d op(A) = dC op(B)^T
        // Into A's gradient so far when it has one to add to (an input several linears read,
        // as q, k and v's projections read one normed input): the GEMM sums, not another pass.
        const GradOutput out_a = grad_output(a_meta.get(), a.shape(), a.dtype(), a.device());
        Tensor target = out_a.buffer;
        if (fold)
          gemm(fold_rows(md), false, mb, !trans_b, target, 1, out_a.beta());
        else if (!trans_a)
          gemm(md, false, mb, !trans_b, target, ma.batch, out_a.beta());
        else  // A stored transposed: dA = op(B) dC^T
          gemm(mb, trans_b, md, true, target, ma.batch, out_a.beta());
        da = out_a.returned();
      }
      if (need_b) {  // d op(B) = op(A)^T dC, summed over the batch when B is shared
        db = Tensor::empty(b.shape(), b.dtype(), b.device());
        if (fold) {
          if (!trans_b) gemm(fold_rows(ma), true, fold_rows(md), false, db, 1, 0.0f);
          else gemm(fold_rows(md), true, fold_rows(ma), false, db, 1, 0.0f);
        } else if (b.dim() == 2) {  // shared B with transposed A: accumulate batch by batch
          backend(db.device()).fill(db, 0.0f);
          for (int64_t i = 0; i < ma.batch; i++) {
            Tensor ai = a.reshape({ma.batch, ma.rows, ma.cols}).narrow(0, i, 1).reshape({ma.rows, ma.cols});
            Tensor di = dout.reshape({md.batch, md.rows, md.cols}).narrow(0, i, 1).reshape({md.rows, md.cols});
            if (!trans_b) gemm(matrices(ai), !trans_a, matrices(di), false, db, 1, 1.0f);
            else gemm(matrices(di), true, matrices(ai), trans_a, db, 1, 1.0f);
          }
        } else if (!trans_b) {
          gemm(ma, !trans_a, md, false, db, ma.batch, 0.0f);
        } else {  // B stored transposed: dB = dC^T op(A)
          gemm(md, true, ma, trans_a, db, ma.batch, 0.0f);
        }
      }
      return {da, db};
    });
  }
  return out;
}

}  // namespace llm
