// defines: embedding (forward: gather rows; backward: deterministic scatter-add into the table)
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

Tensor embedding(const Tensor& ids_in, const Tensor& table) {
  LLM_CHECK(ids_in.dtype() == DType::i32, "embedding ids must be i32, got " + ids_in.str());
  LLM_CHECK(table.dim() == 2 && table.is_contiguous(), "embedding table must be (V, C): " + table.str());
  LLM_CHECK(ids_in.device() == table.device(), "embedding: ids and table on different devices");
  Tensor ids = ids_in.contiguous();
  Shape out_shape = ids.shape();
  out_shape.push_back(table.size(1));
  Tensor out = Tensor::empty(out_shape, table.dtype(), table.device());
  backend(table.device()).embedding_forward(ids, table, out);
  if (any_requires_grad({table})) {
    Shape table_shape = table.shape();
    record_node("embedding", {ids_in, table}, {&out}, [ids, table_shape](const Grads& g) -> Grads {
      Tensor dtable = Tensor::zeros(table_shape, g[0].dtype(), g[0].device());
      backend(dtable.device()).embedding_backward(ids, g[0].contiguous(), dtable);
      return {Tensor(), dtable};
    });
  }
  return out;
}

}  // namespace llm
