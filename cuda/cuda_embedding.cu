// defines: CudaBackend::embedding_forward (gather rows), embedding_backward (deterministic: token
// positions sorted by id, each id's rows summed in token order in f32; no atomics). The table may
// be an f32 master while the rows are bf16: gathered rows are rounded to bf16, and the gradient
// rows (bf16) are summed into the f32 table gradient (engine/ops/embedding.cpp). Also set_rows
// (PEFT's trainable token rows written into a copy of their table).
#include <cub/device/device_radix_sort.cuh>

#include "cuda/vec.cuh"

namespace llm {

namespace {

// out[i, c] = table[ids[i], c]; one block per token row, W elements a load (rows of whole words).
// An id outside [0, V) (which check_ids reports) gives a row of zeros rather than a read out of
// bounds. Element by element it read 25% of an H200's HBM bandwidth (2026-12-04-gpu-run.md).
template <int W, class Table, class Out>
__global__ void embedding_forward_kernel(const int32_t* ids, const Table* table, Out* out, int64_t V,
                                         int64_t C) {
  const int64_t i = blockIdx.x;
  const int32_t id = ids[i];
  const bool valid = id >= 0 && id < V;
  const Table* row = table + (valid ? static_cast<int64_t>(id) : 0) * C;
  for (int64_t u = threadIdx.x; u < C / W; u += blockDim.x) {
    const VecN<Table, W> v = load_vec<W>(row, u);
    VecN<Out, W> y;
#pragma unroll
    for (int j = 0; j < W; j++) y.v[j] = from_f32<Out>(valid ? to_f32(v.v[j]) : 0.0f);
    store_vec<W>(out + i * C, u, y);
  }
}

// table[index[i], c] = rows[i, c]; one block per row, bits copied (Word: the dtype's width). A row
// outside [0, V) (which check_ids reports) is skipped.
template <class Word>
__global__ void set_rows_kernel(Word* table, const int32_t* index, const Word* rows, int64_t V, int64_t C) {
  const int64_t i = blockIdx.x;
  const int32_t row = index[i];
  if (row < 0 || row >= V) return;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) table[static_cast<int64_t>(row) * C + c] = rows[i * C + c];
}

__global__ void iota_kernel(int32_t* x, int64_t n) {
  GRID_STRIDE_LOOP(i, n) x[i] = static_cast<int32_t>(i);
}

// After a stable sort, the positions of one id form a run, in token order. The block at the
// first position of a run (grid.x: sorted positions, grid.y: channel chunks) walks the run and
// adds its rows in f32, then adds the total to the table's row once. Every other block exits.
template <class Out, class Table>
__global__ void embedding_backward_kernel(const int32_t* sorted_ids, const int32_t* sorted_pos,
                                          const Out* dout, Table* dtable, int64_t n, int64_t V,
                                          int64_t C) {
  const int64_t p = blockIdx.x;
  const int32_t id = sorted_ids[p];
  if (id < 0 || id >= V) return;  // reported by the forward's check_ids
  if (p > 0 && sorted_ids[p - 1] == id) return;
  const int64_t c = blockIdx.y * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  float acc = 0.0f;
  for (int64_t r = p; r < n && sorted_ids[r] == id; r++) acc += to_f32(dout[sorted_pos[r] * C + c]);
  Table* slot = dtable + static_cast<int64_t>(id) * C + c;
  *slot = from_f32<Table>(to_f32(*slot) + acc);
}

// f(Table{}, Out{}) for a table and rows of the same float dtype, an f32 table and bf16 rows (an
// f32 master's lookup computing in bf16), or a bf16 table and f32 rows (sampling in f32 from the
// bf16 weights of `bfloat16: true`, or from an adapter run's bf16 frozen embedding).
template <class F>
void dispatch_table_rows(const char* op, const Tensor& table, const Tensor& rows, F&& f) {
  if (table.dtype() == DType::f32 && rows.dtype() == DType::bf16) return f(float{}, bf16{});
  if (table.dtype() == DType::bf16 && rows.dtype() == DType::f32) return f(bf16{}, float{});
  require_same_dtype(op, table, rows);
  dispatch_float(op, table, [&](auto tag) { f(tag, tag); });
}

}  // namespace

void CudaBackend::embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  const int64_t n = ids.numel(), V = table.size(0), C = table.size(1);
  if (n == 0) return;
  activate();
  // A bad id is a data error the user must see: reported at the next wait for the device.
  Tensor info = scratch({1}, DType::i32);
  check_ids(ids, V, kNoIgnore, /*targets=*/false, info);
  dispatch_table_rows("embedding", table, out, [&](auto table_tag, auto out_tag) {
    using Table = decltype(table_tag);
    using Out = decltype(out_tag);
    const Table* tp = table.data<Table>();
    Out* yp = out.data<Out>();
    with_row_width<wide_width<Table, Out>()>(C, [&](auto width) {
      embedding_forward_kernel<width()><<<n, kThreads, 0, stream_>>>(ids.data<int32_t>(), tp, yp, V, C);
    }, tp, static_cast<const Out*>(yp));
  });
  CUDA_CHECK_OP("embedding", ids, table, out);
}

// dtable += scatter of dout by ids (dtable: zeros, or the table's gradient so far). Ids were checked by the
// forward. The radix sort is stable, so equal ids keep token order and the sums never depend on
// scheduling: the same ids and gradients give the same bits every run.
void CudaBackend::embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  const int64_t n = ids.numel(), V = dtable.size(0), C = dtable.size(1);
  if (n == 0) return;
  LLM_CHECK(n < INT32_MAX, "embedding_backward on CUDA: too many tokens: " + ids.str());
  activate();
  Tensor positions = scratch({n}, DType::i32);
  Tensor sorted_ids = scratch({n}, DType::i32), sorted_pos = scratch({n}, DType::i32);
  iota_kernel<<<grid_for(n), kThreads, 0, stream_>>>(positions.data<int32_t>(), n);
  // Sorted on all 32 bits, not only those of ids below V: a bad id (reported by the forward's
  // check, later) then sorts outside every valid id's run instead of splitting one into two blocks
  // that would both add into its row. One radix pass more, on a few thousand keys.
  const int bits = 32;
  size_t temp_bytes = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      nullptr, temp_bytes, ids.data<int32_t>(), sorted_ids.data<int32_t>(),
      positions.data<int32_t>(), sorted_pos.data<int32_t>(), static_cast<int>(n), 0, bits,
      stream_));
  Tensor temp = scratch({static_cast<int64_t>(temp_bytes / 4 + 1)}, DType::i32);
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      temp.data_ptr(), temp_bytes, ids.data<int32_t>(), sorted_ids.data<int32_t>(),
      positions.data<int32_t>(), sorted_pos.data<int32_t>(), static_cast<int>(n), 0, bits,
      stream_));
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>((C + kThreads - 1) / kThreads));
  dispatch_table_rows("embedding_backward", dtable, dout, [&](auto table_tag, auto out_tag) {
    using Table = decltype(table_tag);
    using Out = decltype(out_tag);
    embedding_backward_kernel<<<grid, kThreads, 0, stream_>>>(
        sorted_ids.data<int32_t>(), sorted_pos.data<int32_t>(), dout.data<Out>(), dtable.data<Table>(),
        n, V, C);
  });
  CUDA_CHECK_OP("embedding_backward", ids, dout, dtable);
}

void CudaBackend::set_rows(Tensor& table, const Tensor& index, const Tensor& rows) {
  const int64_t n = index.numel(), V = table.size(0), C = table.size(1);
  require_same_dtype("set_rows", table, rows);
  LLM_CHECK(rows.is_contiguous() && table.is_contiguous() && rows.numel() == n * C,
            "set_rows on CUDA: rows " + rows.str() + " for " + std::to_string(n) + " rows of " + table.str());
  if (n == 0) return;
  activate();
  Tensor info = scratch({1}, DType::i32);
  check_ids(index, V, kNoIgnore, /*targets=*/false, info);
  const auto copy = [&](auto word) {
    using Word = decltype(word);
    set_rows_kernel<<<n, kThreads, 0, stream_>>>(static_cast<Word*>(table.data_ptr()), index.data<int32_t>(),
                                                 static_cast<const Word*>(rows.data_ptr()), V, C);
  };
  LLM_CHECK(dtype_size(table.dtype()) == 4 || dtype_size(table.dtype()) == 2, "set_rows on CUDA: " + table.str());
  if (dtype_size(table.dtype()) == 4)
    copy(uint32_t{});
  else
    copy(uint16_t{});
  CUDA_CHECK_OP("set_rows", index, rows, table);
}

}  // namespace llm
