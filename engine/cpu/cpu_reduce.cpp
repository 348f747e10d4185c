// defines: CPU sum, add_sum_squares, add_stable_adamw_ratios
#include <algorithm>
#include <vector>

#include "engine/adamw_math.h"
#include "engine/check.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

// Reductions run in f64 in an order fixed by the size alone, so their result does not depend on
// the thread count.
void CpuBackend::sum(const Tensor& x, Tensor& out) {
  require_f32("sum", x);
  OpTimer timer("sum");
  const float* p = x.data<float>();
  double acc = 0.0;
  for (int64_t i = 0; i < x.numel(); i++) acc += p[i];
  out.data<float>()[0] = static_cast<float>(acc);
}

namespace {
// Eight interleaved partial sums, added in a fixed order at the end: independent adds the
// compiler can put in SIMD lanes, where one running sum is a serial chain.
double sum_squares_serial(const float* p, int64_t n) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += static_cast<double>(p[i + j]) * p[i + j];
  for (; i < n; i++) acc[0] += static_cast<double>(p[i]) * p[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
}  // namespace

// Fixed chunks of each tensor, all tensors' chunks summed in one parallel loop; then each
// tensor's partial sums added serially in order, and its total onto acc, tensor by tensor.
void CpuBackend::add_sum_squares(const std::vector<Tensor>& xs, Tensor& acc) {
  require_f64_accumulator("add_sum_squares", acc);
  OpTimer timer("sum_squares");
  constexpr int64_t kChunk = int64_t(1) << 16;
  struct Chunk {
    const float* p;
    int64_t n;
  };
  std::vector<Chunk> chunks;
  std::vector<size_t> first_chunk;  // of each tensor, then the end
  for (const Tensor& x : xs) {
    require_f32("sum_squares", x);
    first_chunk.push_back(chunks.size());
    for (int64_t at = 0; at < x.numel(); at += kChunk)
      chunks.push_back({x.data<float>() + at, std::min(kChunk, x.numel() - at)});
  }
  first_chunk.push_back(chunks.size());
  std::vector<double> partial(chunks.size());
  const int64_t count = static_cast<int64_t>(chunks.size());
#pragma omp parallel for if (count > 1)
  for (int64_t c = 0; c < count; c++) partial[c] = sum_squares_serial(chunks[c].p, chunks[c].n);
  double* sum = static_cast<double*>(acc.data_ptr());
  for (size_t t = 0; t < xs.size(); t++) {
    double total = 0.0;
    for (size_t c = first_chunk[t]; c < first_chunk[t + 1]; c++) total += partial[c];
    *sum += total;
  }
}

// In fixed chunks summed in f64, the chunks added in order: the same total whatever the threads.
void CpuBackend::add_stable_adamw_ratios(const Tensor& grad, const Tensor& v, const StableRmsArgs& args, Tensor& acc) {
  require_f64_accumulator("add_stable_adamw_ratios", acc);
  require_f32("add_stable_adamw_ratios", grad);
  require_f32("add_stable_adamw_ratios", v);
  LLM_CHECK(grad.numel() == v.numel(), "add_stable_adamw_ratios: " + grad.str() + " and " + v.str());
  OpTimer timer("stable_adamw_ratios");
  constexpr int64_t kChunk = int64_t(1) << 16;
  const int64_t n = grad.numel(), count = (n + kChunk - 1) / kChunk;
  const float* g = grad.data<float>();
  const float* second = v.data<float>();
  std::vector<double> partial(count);
#pragma omp parallel for if (count > 1)
  for (int64_t c = 0; c < count; c++) {
    double sum = 0.0;
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); i++) sum += stable_adamw_ratio(g[i], second[i], args);
    partial[c] = sum;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  *static_cast<double*>(acc.data_ptr()) += total;
}

}  // namespace llm
