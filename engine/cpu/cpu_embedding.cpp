// defines: CPU embedding forward (gather rows) and backward (deterministic scatter-add), set_rows
#include <algorithm>
#include <cstring>

#include "engine/check.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  require_f32("embedding", out);
  LLM_CHECK(table.dtype() == DType::f32 || table.dtype() == DType::bf16,
            "embedding on the CPU reads an f32 or bf16 table, not " + table.str());
  OpTimer timer("embedding");
  const int32_t* id = ids.data<int32_t>();
  const int64_t n = ids.numel(), vocab = table.size(0), C = table.size(1);
  for (int64_t i = 0; i < n; i++)
    LLM_CHECK(id[i] >= 0 && id[i] < vocab, "embedding: token id " + std::to_string(id[i]) +
                                               " outside the vocabulary of " + std::to_string(vocab));
  float* rows = out.data<float>();
  if (table.dtype() == DType::bf16) {  // widened: every bf16 is an f32
    const uint16_t* t = table.data<uint16_t>();
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++)
      for (int64_t c = 0; c < C; c++) rows[i * C + c] = bf16_to_f32(t[id[i] * C + c]);
    return;
  }
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) std::copy_n(table.data<float>() + id[i] * C, C, rows + i * C);
}

// Deterministic: each task owns a slice of the channels and adds tokens in order, walking each
// token's row along the slice (not a column at a time).
void CpuBackend::embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  require_f32("embedding_backward", dout);
  OpTimer timer("embedding_backward");
  const int32_t* id = ids.data<int32_t>();
  const int64_t n = ids.numel(), C = dtable.size(1);
  const float* d = dout.data<float>();
  float* dt = dtable.data<float>();
  constexpr int64_t kSlice = 64;
#pragma omp parallel for
  for (int64_t c0 = 0; c0 < C; c0 += kSlice) {
    const int64_t c1 = std::min(C, c0 + kSlice);
    for (int64_t i = 0; i < n; i++)
      for (int64_t c = c0; c < c1; c++) dt[id[i] * C + c] += d[i * C + c];
  }
}

// Byte copies: any dtype, the table's and the rows' the same (checked by replace_rows).
void CpuBackend::set_rows(Tensor& table, const Tensor& index, const Tensor& rows) {
  OpTimer timer("set_rows");
  const int32_t* id = index.data<int32_t>();
  const int64_t n = index.numel(), vocab = table.size(0);
  const size_t row_bytes = static_cast<size_t>(table.size(1)) * dtype_size(table.dtype());
  auto* out = static_cast<char*>(table.data_ptr());
  const auto* in = static_cast<const char*>(rows.data_ptr());
  for (int64_t i = 0; i < n; i++) {
    LLM_CHECK(id[i] >= 0 && id[i] < vocab, "set_rows: row " + std::to_string(id[i]) + " outside " + table.str());
    std::memcpy(out + id[i] * row_bytes, in + i * row_bytes, row_bytes);
  }
}

}  // namespace llm
