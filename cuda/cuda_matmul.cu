// defines: CudaBackend::gemm, the backend call behind matmul (row-major strided batched GEMM on
// cuBLASLt; f32 accumulation)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cuda/cuda_common.cuh"
#include "cuda/op_split.h"

namespace llm {

namespace {

// A cuBLASLt preference, destroyed on the way out (a throw included).
struct Preference {
  cublasLtMatmulPreference_t p = nullptr;
  ~Preference() {
    if (p) cublasLtMatmulPreferenceDestroy(p);
  }
};

// A column-major rows x cols layout with leading dimension ld, batched when batch > 1.
cublasLtMatrixLayout_t layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld,
                              int64_t batch, int64_t stride) {
  cublasLtMatrixLayout_t l;
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, rows, cols, ld));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                  sizeof(count)));
    CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                  &stride, sizeof(stride)));
  }
  return l;
}

// The alignment cuBLASLt may assume for an operand: the largest power of two (up to 256 bytes)
// dividing its address and, when batched, its batch stride. Narrowed views are not 16-byte
// aligned in general, and an algorithm chosen for aligned data would fail on them.
uint32_t alignment(const void* ptr, int64_t stride_bytes) {
  uint64_t bits = reinterpret_cast<uint64_t>(ptr) | static_cast<uint64_t>(stride_bytes) | 256u;
  return static_cast<uint32_t>(bits & (~bits + 1));
}

// C = beta * C when k == 0 (cuBLASLt refuses an empty inner dimension); beta 0 writes zeros.
template <class T>
__global__ void scale_matrix_kernel(T* c, int64_t m, int64_t n, int64_t ldc, int64_t stride,
                                    int64_t batch, float beta) {
  GRID_STRIDE_LOOP(i, batch * m * n) {
    T* p = c + (i / (m * n)) * stride + (i % (m * n)) / n * ldc + i % n;
    *p = from_f32<T>(beta == 0.0f ? 0.0f : beta * to_f32(*p));
  }
}

// LLM_GEMM_CANDIDATES=N (a benchmark's setting): at a GEMM shape's first call, cuBLASLt's first N
// heuristic algorithms are timed, and one line says how far its first choice is from the fastest.
// The first choice is used either way: a choice by timing could differ from run to run, and with
// it the bits of every product (a resume is exact only with the same algorithms).
int gemm_candidates_wanted() {
  static const int n = [] {
    const char* v = std::getenv("LLM_GEMM_CANDIDATES");
    return v ? std::clamp(std::atoi(v), 1, 16) : 1;
  }();
  return n;
}

// Each candidate's time (mean of 3 after one warm-up, CUDA events) on the call's own A and B,
// written to `scratch` (beta 0), so the caller's C is untouched.
void report_gemm_candidates(cublasLtHandle_t lt, const GemmPlan& call, const cublasLtMatmulHeuristicResult_t* results,
                            int found, const GemmArgs& g, void* scratch, void* workspace, size_t workspace_bytes,
                            cudaStream_t stream, const std::string& shapes) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  const float zero = 0.0f;
  float first_ms = 0, best_ms = 0;
  int best = -1;
  for (int i = 0; i < found; i++) {
    auto run = [&] {
      return cublasLtMatmul(lt, call.desc, &g.alpha, g.b, call.a, g.a, call.b, &zero, scratch, call.c, scratch,
                            call.c, &results[i].algo, workspace, workspace_bytes, stream);
    };
    if (run() != CUBLAS_STATUS_SUCCESS) continue;  // a candidate that does not run is no candidate
    CUDA_CHECK(cudaEventRecord(start, stream));
    for (int r = 0; r < 3; r++) run();
    CUDA_CHECK(cudaEventRecord(stop, stream));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    ms /= 3;
    if (i == 0) first_ms = ms;
    if (best < 0 || ms < best_ms) best_ms = ms, best = i;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::fprintf(stderr, "gemm %s: cuBLASLt's first choice %.4f ms; best of %d candidates %.4f ms (#%d), %.1f%% faster\n",
               shapes.c_str(), first_ms, found, best_ms, best + 1, first_ms > 0 ? 100.0 * (first_ms - best_ms) / first_ms : 0.0);
}

}  // namespace

// Row-major C = A B is column-major C^T = B^T A^T: cuBLASLt gets B as its first operand and A as
// its second, each with its own transpose flag, and nothing is copied.
void CudaBackend::gemm(const GemmArgs& g) {
  LLM_CHECK((g.dtype == DType::f32 || g.dtype == DType::bf16) &&
                (g.c_dtype == g.dtype || (g.dtype == DType::bf16 && g.c_dtype == DType::f32)),
            std::string("gemm on CUDA takes f32 or bf16, into the same or (from bf16) f32; got ") +
                dtype_name(g.dtype) + " into " + dtype_name(g.c_dtype));
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
  activate();
  // For messages only: not built on every call.
  auto shapes = [&g] {
    return std::string(dtype_name(g.dtype)) + " into " + dtype_name(g.c_dtype) + ", batch " + std::to_string(g.batch) +
           ", m " + std::to_string(g.m) + ", n " + std::to_string(g.n) + ", k " + std::to_string(g.k) +
           (g.trans_a ? ", A^T" : "") + (g.trans_b ? ", B^T" : "");
  };
  if (g.k == 0) {
    auto launch = [&](auto tag) {
      using T = decltype(tag);
      scale_matrix_kernel<<<grid_for(g.batch * g.m * g.n), kThreads, 0, stream_>>>(
          static_cast<T*>(g.c), g.m, g.n, g.ldc, g.stride_c, g.batch, g.beta);
    };
    if (g.c_dtype == DType::f32) launch(float{});
    else launch(bf16{});
    CUDA_CHECK(cudaGetLastError());
    return;
  }
  const cudaDataType_t type = g.dtype == DType::f32 ? CUDA_R_32F : CUDA_R_16BF;
  const cudaDataType_t c_type = g.c_dtype == DType::f32 ? CUDA_R_32F : CUDA_R_16BF;
  const int64_t elem = static_cast<int64_t>(dtype_size(g.dtype)), c_elem = static_cast<int64_t>(dtype_size(g.c_dtype));
  const uint32_t align_a = alignment(g.b, g.batch > 1 ? g.stride_b * elem : 0);
  const uint32_t align_b = alignment(g.a, g.batch > 1 ? g.stride_a * elem : 0);
  const uint32_t align_c = alignment(g.c, g.batch > 1 ? g.stride_c * c_elem : 0);

  // f32 stays f32 unless `tf32: true`, so CUDA matches the CPU reference to f32 rounding.
  const bool tf32 = tf32_ && g.dtype == DType::f32;
  // The strides count only in a batch (layout() leaves them out of one matrix's layout): equal
  // shapes share a plan whatever strides their callers passed.
  const bool batched = g.batch > 1;
  const std::array<int64_t, 18> key{int64_t(g.dtype), int64_t(g.c_dtype), g.trans_a, g.trans_b, g.m, g.n,
                                    g.k, g.lda, g.ldb, g.ldc, g.batch, batched ? g.stride_a : 0,
                                    batched ? g.stride_b : 0, batched ? g.stride_c : 0, align_a,
                                    align_b, align_c, tf32};
  auto found = gemm_plans_.find(key);
  if (found == gemm_plans_.end()) {
    auto plan = std::make_unique<GemmPlan>();
    CUBLAS_CHECK(cublasLtMatmulDescCreate(
        &plan->desc, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t op_a = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
    // Stored (column-major) shapes: the first operand is row-major B, the second row-major A.
    plan->a = layout(type, g.trans_b ? g.k : g.n, g.trans_b ? g.n : g.k, g.ldb, g.batch, g.stride_b);
    plan->b = layout(type, g.trans_a ? g.m : g.k, g.trans_a ? g.k : g.m, g.lda, g.batch, g.stride_a);
    // bf16 A and B into f32 C and D: a supported cuBLASLt combination (compute and scale f32).
    plan->c = layout(c_type, g.n, g.m, g.ldc, g.batch, g.stride_c);
    Preference pref;  // for the heuristic's question only
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref.p));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &workspace_bytes_, sizeof(workspace_bytes_)));
    const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c}};
    for (const auto& [attr, value] : aligns)
      CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.p, attr, &value, sizeof(value)));
    cublasLtMatmulHeuristicResult_t results[16];
    int found_count = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt_, plan->desc, plan->a, plan->b, plan->c, plan->c, pref.p,
                                                gemm_candidates_wanted(), results, &found_count));
    LLM_CHECK(found_count > 0, "gemm on CUDA: cuBLASLt has no algorithm for " + shapes());
    if (found_count > 1) {
      Tensor out = scratch({std::max<int64_t>(1, g.stride_c * (g.batch - 1) + g.ldc * (g.m - 1) + g.n)}, g.c_dtype);
      report_gemm_candidates(lt_, *plan, results, found_count, g, out.data_ptr(), workspace_, workspace_bytes_, stream_,
                             shapes());
    }
    plan->algo = results[0].algo;
    found = gemm_plans_.emplace(key, std::move(plan)).first;
  }
  const GemmPlan& plan = *found->second;
  const cublasStatus_t status =
      cublasLtMatmul(lt_, plan.desc, &g.alpha, g.b, plan.a, g.a, plan.b, &g.beta, g.c, plan.c,
                     g.c, plan.c, &plan.algo, workspace_, workspace_bytes_, stream_);
  LLM_CHECK(status == CUBLAS_STATUS_SUCCESS,
            std::string("gemm on CUDA (") + shapes() + "): cublasLtMatmul failed: " +
                cublasLtGetStatusName(status));
  op_split::mark("matmul");  // cuBLASLt reports its own errors: no launch check to mark it
}

}  // namespace llm
