// defines: embedding (forward: gather rows; backward: deterministic scatter-add into the table),
// replace_rows (forward: a copy with rows set; backward: gather those rows)
//
// With bf16 rows from an f32 master table (mixed precision), the rows are gathered and rounded in
// one pass and their gradients summed into an f32 table gradient: casting the whole table first
// (Llama 3's is 128256 rows) would read and write every row each step, and its bf16 gradient
// would be widened after, for the few thousand rows a batch touches.
//
// When the table already has a gradient of its dtype (a tied lm_head's, an earlier micro-batch's)
// the rows are added into it (grad_to_add_into): no zeroed table-sized gradient and no pass
// summing it in. Not with padding_idx: its row must get nothing from here but keeps the rest.
//
// A bf16 table (`bfloat16: true`) gives f32 rows on the CPU, which computes in f32.
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

Tensor embedding(const Tensor& ids_in, const Tensor& table, int64_t padding_idx, DType rows_dtype) {
  LLM_CHECK(ids_in.dtype() == DType::i32, "embedding ids must be i32, got " + ids_in.str());
  LLM_CHECK(table.dim() == 2 && table.is_contiguous(), "embedding table must be (V, C): " + table.str());
  LLM_CHECK(ids_in.device() == table.device(), "embedding: ids and table on different devices");
  LLM_CHECK(padding_idx < table.size(0), "embedding: padding_idx " + std::to_string(padding_idx) + " outside " + table.str());
  LLM_CHECK(rows_dtype == table.dtype() || (table.dtype() == DType::f32 && rows_dtype == DType::bf16) ||
                (table.dtype() == DType::bf16 && rows_dtype == DType::f32),
            std::string("embedding: rows in ") + dtype_name(rows_dtype) + " from " + table.str() +
                " (the table's dtype, bf16 from f32, or f32 from bf16)");
  Tensor ids = ids_in.contiguous();
  Shape out_shape = ids.shape();
  out_shape.push_back(table.size(1));
  Tensor out = Tensor::empty(out_shape, rows_dtype, table.device());
  backend(table.device()).embedding_forward(ids, table, out);
  if (any_requires_grad({table})) {
    Shape table_shape = table.shape();
    // A bf16 table whose gradient is kept in f32 (`bfloat16: true`) gets its rows summed in f32.
    const DType table_dtype = table.autograd_meta()->grad_in_f32 ? DType::f32 : table.dtype();
    record_node("embedding", {ids_in, table}, {&out},
                [ids, table_shape, table_dtype, padding_idx, leaf = table.autograd_meta()](const Grads& g) -> Grads {
      Backend& be = backend(g[0].device());
      if (Tensor into = padding_idx < 0 ? grad_to_add_into(leaf.get(), table_dtype) : Tensor(); into.defined()) {
        be.embedding_backward(ids, g[0].contiguous(), into);
        return {Tensor(), Tensor()};
      }
      Tensor dtable = Tensor::zeros(table_shape, table_dtype, g[0].device());
      be.embedding_backward(ids, g[0].contiguous(), dtable);
      if (padding_idx >= 0) {
        Tensor row = dtable.narrow(0, padding_idx, 1);
        be.fill(row, 0.0f);
      }
      return {Tensor(), dtable};
    });
  }
  return out;
}

Tensor replace_rows(const Tensor& table_in, const Tensor& index_in, const Tensor& rows_in) {
  LLM_CHECK(table_in.dim() == 2 && index_in.dtype() == DType::i32 && index_in.dim() == 1 &&
                rows_in.shape() == Shape({index_in.size(0), table_in.size(1)}) && rows_in.dtype() == table_in.dtype() &&
                index_in.device() == table_in.device() && rows_in.device() == table_in.device(),
            "replace_rows: rows " + rows_in.str() + " at index " + index_in.str() + " of " + table_in.str() +
                " (one row of the table's dtype and width per index)");
  Tensor out = table_in.clone();
  const Tensor index = index_in.contiguous();
  Backend& be = backend(out.device());
  be.set_rows(out, index, rows_in.contiguous());
  if (any_requires_grad({table_in, rows_in})) {
    const bool need_table = table_in.requires_grad(), need_rows = rows_in.requires_grad();
    record_node("replace_rows", {table_in, rows_in}, {&out}, [index, need_table, need_rows](const Grads& g) -> Grads {
      Backend& be = backend(g[0].device());
      const Tensor dout = g[0].contiguous();
      Tensor dtable, drows;
      if (need_rows) {
        drows = Tensor::empty({index.size(0), dout.size(1)}, dout.dtype(), dout.device());
        be.embedding_forward(index, dout, drows);
      }
      if (need_table) {
        dtable = dout.clone();
        be.set_rows(dtable, index, Tensor::zeros({index.size(0), dout.size(1)}, dout.dtype(), dout.device()));
      }
      return {dtable, drows};
    });
  }
  return out;
}

}  // namespace llm
