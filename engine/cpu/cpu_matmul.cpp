// defines: CPU gemm, the backend call behind matmul (strided batched, through OpenBLAS sgemm)
#include <cblas.h>

#include <climits>
#include <string>
#include <utility>

#include "engine/check.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::gemm(const GemmArgs& g) {
  LLM_CHECK(g.dtype == DType::f32 && g.c_dtype == DType::f32,
            "gemm on the CPU computes in f32; got " + std::string(dtype_name(g.dtype)) + " into " + dtype_name(g.c_dtype));
  // cblas takes int dimensions: a larger one would be narrowed into a wrong (even negative) size.
  for (const auto& [name, value] : {std::pair<const char*, int64_t>{"m", g.m}, {"n", g.n}, {"k", g.k},
                                    {"lda", g.lda}, {"ldb", g.ldb}, {"ldc", g.ldc}})
    LLM_CHECK(value >= 0 && value <= INT_MAX, std::string("gemm on the CPU: ") + name + " = " +
                                                  std::to_string(value) + " does not fit OpenBLAS's int");
  OpTimer timer("matmul");
  const float* a = static_cast<const float*>(g.a);
  const float* b = static_cast<const float*>(g.b);
  float* c = static_cast<float*>(g.c);
  // OpenBLAS threads each call itself, so batches run one after another.
  for (int64_t i = 0; i < g.batch; i++) {
    cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans,
                g.trans_b ? CblasTrans : CblasNoTrans, g.m, g.n, g.k, g.alpha,
                a + i * g.stride_a, g.lda, b + i * g.stride_b, g.ldb, g.beta,
                c + i * g.stride_c, g.ldc);
  }
}

}  // namespace llm
