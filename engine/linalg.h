// declares: host linear algebra on row-major f32 matrices, through the LAPACK that OpenBLAS
// carries: the thin SVD and QR that PEFT's PiSSA and OLoRA inits take of a weight (once, at
// start-up), the products around them, and torch.svd_lowrank (Halko et al.'s randomised SVD)
#pragma once
#include <cstdint>
#include <vector>

namespace llm {

// A row-major rows x cols matrix on the host.
struct HostMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;
  float at(int64_t i, int64_t j) const { return values[i * cols + j]; }
};

// a x b, with either transposed first (cblas_sgemm).
HostMatrix host_matmul(const HostMatrix& a, const HostMatrix& b, bool transpose_a = false, bool transpose_b = false);

// a = u diag(s) vt with k = min(rows, cols): u (rows x k), s descending, vt (k x cols);
// LAPACK's sgesdd, as torch.linalg.svd(full_matrices=False) computes it on the CPU.
struct ThinSvd {
  HostMatrix u, vt;
  std::vector<float> s;
};
ThinSvd thin_svd(const HostMatrix& a);

// a = q r with k = min(rows, cols): q (rows x k) with orthonormal columns, r (k x cols) upper
// triangular; LAPACK's Householder sgeqrf + sorgqr, as torch.linalg.qr (mode "reduced") on the CPU.
struct ThinQr {
  HostMatrix q, r;
};
ThinQr thin_qr(const HostMatrix& a);

// torch.svd_lowrank(a, q, niter) (torch 2.15): a ~ u diag(s) v^T of rank q, from a basis of the
// range of a (of a^T when a is wide) started at the standard normal draws `gaussian`
// (min(rows, cols) x q, as torch draws them) and refined by niter power iterations, each
// re-orthonormalised by QR.
struct LowRankSvd {
  HostMatrix u, v;  // rows x q, cols x q
  std::vector<float> s;
};
LowRankSvd svd_lowrank(const HostMatrix& a, int64_t q, int niter, const HostMatrix& gaussian);
// The rows of the draws svd_lowrank takes for `a` (q columns).
int64_t svd_lowrank_draw_rows(const HostMatrix& a);

}  // namespace llm
