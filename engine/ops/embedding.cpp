// defines: embedding (forward: gather rows; backward: deterministic scatter-add into the table)
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

Tensor embedding(const Tensor& ids_in, const Tensor& table, int64_t padding_idx) {
  LLM_CHECK(ids_in.dtype() == DType::i32, "embedding ids must be i32, got " + ids_in.str());
  LLM_CHECK(table.dim() == 2 && table.is_contiguous(), "embedding table must be (V, C): " + table.str());
  LLM_CHECK(ids_in.device() == table.device(), "embedding: ids and table on different devices");
  LLM_CHECK(padding_idx < table.size(0), "embedding: padding_idx " + std::to_string(padding_idx) + " outside " + table.str());
  Tensor ids = ids_in.contiguous();
  Shape out_shape = ids.shape();
  out_shape.push_back(table.size(1));
  Tensor out = Tensor::empty(out_shape, table.dtype(), table.device());
  backend(table.device()).embedding_forward(ids, table, out);
  if (any_requires_grad({table})) {
    Shape table_shape = table.shape();
    record_node("embedding", {ids_in, table}, {&out}, [ids, table_shape, padding_idx](const Grads& g) -> Grads {
      Tensor dtable = Tensor::zeros(table_shape, g[0].dtype(), g[0].device());
      Backend& be = backend(dtable.device());
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

}  // namespace llm
