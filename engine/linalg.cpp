// defines: host_matmul, thin_svd, thin_qr and svd_lowrank (engine/linalg.h): row-major matrices
// copied to LAPACK's column-major layout and back; sizes stay within LAPACK's 32-bit integers.
#include "engine/linalg.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>

#include "engine/check.h"

// LAPACK's Fortran entry points (OpenBLAS exports them); the trailing size_t is the length of the
// character argument that gfortran-built LAPACK takes after the others.
extern "C" {
void sgesdd_(const char* jobz, const int* m, const int* n, float* a, const int* lda, float* s, float* u,
             const int* ldu, float* vt, const int* ldvt, float* work, const int* lwork, int* iwork, int* info,
             size_t jobz_len);
void sgeqrf_(const int* m, const int* n, float* a, const int* lda, float* tau, float* work, const int* lwork,
             int* info);
void sorgqr_(const int* m, const int* n, const int* k, float* a, const int* lda, const float* tau, float* work,
             const int* lwork, int* info);
}

namespace llm {
namespace {

int lapack_int(int64_t n) {
  LLM_CHECK(n >= 1 && n <= INT_MAX, "linalg: dimension " + std::to_string(n) + " outside LAPACK's 32-bit range");
  return static_cast<int>(n);
}

std::vector<float> to_column_major(const HostMatrix& a) {
  std::vector<float> out(a.values.size());
  for (int64_t i = 0; i < a.rows; i++)
    for (int64_t j = 0; j < a.cols; j++) out[j * a.rows + i] = a.at(i, j);
  return out;
}

// The rows x cols matrix held column-major with leading dimension ld.
HostMatrix from_column_major(const float* data, int64_t rows, int64_t cols, int64_t ld) {
  HostMatrix out{rows, cols, std::vector<float>(rows * cols)};
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) out.values[i * cols + j] = data[j * ld + i];
  return out;
}

// A workspace query's answer, which LAPACK returns as a float: rounded up with a margin, since
// above 2^24 a float may fall short of the count it stands for.
int workspace_size(float query) { return static_cast<int>(std::ceil(double(query) * (1 + 1e-6))) + 1; }

void check_info(int info, const char* routine) {
  LLM_CHECK(info == 0, std::string("linalg: LAPACK's ") + routine + " failed (info " + std::to_string(info) + ")");
}

}  // namespace

HostMatrix host_matmul(const HostMatrix& a, const HostMatrix& b, bool transpose_a, bool transpose_b) {
  const int64_t m = transpose_a ? a.cols : a.rows, k = transpose_a ? a.rows : a.cols;
  const int64_t kb = transpose_b ? b.cols : b.rows, n = transpose_b ? b.rows : b.cols;
  LLM_CHECK(k == kb, "host_matmul: inner dimensions " + std::to_string(k) + " and " + std::to_string(kb));
  HostMatrix out{m, n, std::vector<float>(m * n)};
  cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans,
              lapack_int(m), lapack_int(n), lapack_int(k), 1.0f, a.values.data(), lapack_int(a.cols), b.values.data(),
              lapack_int(b.cols), 0.0f, out.values.data(), lapack_int(n));
  return out;
}

ThinSvd thin_svd(const HostMatrix& a) {
  const int m = lapack_int(a.rows), n = lapack_int(a.cols), k = std::min(m, n);
  std::vector<float> col = to_column_major(a), s(k), u(int64_t(m) * k), vt(int64_t(k) * n);
  std::vector<int> iwork(8 * int64_t(k));
  int info = 0, lwork = -1;
  float query = 0;
  sgesdd_("S", &m, &n, col.data(), &m, s.data(), u.data(), &m, vt.data(), &k, &query, &lwork, iwork.data(), &info, 1);
  check_info(info, "sgesdd");
  lwork = workspace_size(query);
  std::vector<float> work(std::max(lwork, 1));
  sgesdd_("S", &m, &n, col.data(), &m, s.data(), u.data(), &m, vt.data(), &k, work.data(), &lwork, iwork.data(),
          &info, 1);
  check_info(info, "sgesdd");
  return {from_column_major(u.data(), m, k, m), from_column_major(vt.data(), k, n, k), s};
}

ThinQr thin_qr(const HostMatrix& a) {
  const int m = lapack_int(a.rows), n = lapack_int(a.cols), k = std::min(m, n);
  std::vector<float> col = to_column_major(a), tau(k);
  int info = 0, lwork = -1;
  float query = 0;
  sgeqrf_(&m, &n, col.data(), &m, tau.data(), &query, &lwork, &info);
  check_info(info, "sgeqrf");
  lwork = workspace_size(query);
  std::vector<float> work(std::max(lwork, 1));
  sgeqrf_(&m, &n, col.data(), &m, tau.data(), work.data(), &lwork, &info);
  check_info(info, "sgeqrf");
  // R: the upper triangle of the first k rows; below it geqrf left the reflectors.
  HostMatrix r = from_column_major(col.data(), k, n, m);
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < std::min<int64_t>(i, n); j++) r.values[i * n + j] = 0.0f;
  lwork = -1;
  sorgqr_(&m, &k, &k, col.data(), &m, tau.data(), &query, &lwork, &info);
  check_info(info, "sorgqr");
  lwork = workspace_size(query);
  work.assign(std::max(lwork, 1), 0.0f);
  sorgqr_(&m, &k, &k, col.data(), &m, tau.data(), work.data(), &lwork, &info);
  check_info(info, "sorgqr");
  return {from_column_major(col.data(), m, k, m), r};
}

namespace {
HostMatrix transposed(const HostMatrix& a) {
  return from_column_major(a.values.data(), a.cols, a.rows, a.cols);  // a's row-major values are a^T's column-major
}

// torch's get_approximate_basis: Q of a R, then niter rounds of Q of a^T Q and Q of a Q.
HostMatrix approximate_basis(const HostMatrix& a, const HostMatrix& gaussian, int niter) {
  HostMatrix q = thin_qr(host_matmul(a, gaussian)).q;
  for (int i = 0; i < niter; i++) {
    q = thin_qr(host_matmul(a, q, true)).q;
    q = thin_qr(host_matmul(a, q)).q;
  }
  return q;
}
}  // namespace

int64_t svd_lowrank_draw_rows(const HostMatrix& a) { return std::min(a.rows, a.cols); }

LowRankSvd svd_lowrank(const HostMatrix& a, int64_t q, int niter, const HostMatrix& gaussian) {
  LLM_CHECK(q >= 1 && q <= std::min(a.rows, a.cols) && niter >= 0, "svd_lowrank: rank " + std::to_string(q));
  LLM_CHECK(gaussian.rows == svd_lowrank_draw_rows(a) && gaussian.cols == q, "svd_lowrank: the draws' shape");
  // torch decomposes a wide matrix's transpose, then swaps the factors back.
  const bool wide = a.rows < a.cols;
  const HostMatrix tall = wide ? transposed(a) : a;
  const HostMatrix basis = approximate_basis(tall, gaussian, niter);  // tall.rows x q
  ThinSvd small = thin_svd(host_matmul(basis, tall, true));          // of Q^T a: q x tall.cols
  HostMatrix u = host_matmul(basis, small.u), v = transposed(small.vt);
  if (wide) std::swap(u, v);
  return {u, v, small.s};
}

}  // namespace llm
