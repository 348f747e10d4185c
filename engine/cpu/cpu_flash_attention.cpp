// defines: CPU tiled attention (FlashAttention-2 tiling and online softmax) behind
// flash_attention, s2_attention and mem_efficient_attention (and, on the CPU, cudnn_attention),
// forward and backward
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/attention_mask.h"
#include "engine/check.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_simd_math.h"
#include "engine/cpu/cpu_tile_gemm.h"
#include "engine/op_timer.h"

namespace llm {

namespace {

// Masks are classified per kM x kN tile, as on a GPU. The CPU's tasks are larger: kRows queries
// a forward task, kKeys keys a backward task, and one tile product serves up to kBatch tiles
// side by side (the forward's key tiles, the backward's query tiles), so the forward's online
// softmax steps over that whole block of keys and one P V product serves it. The operands a task
// reads whole are packed for panel_gemm once: K and V per forward call, Q and dO per backward
// task (a kv head's query heads), and a backward key tile packs its own keys. The tile buffers
// are O(1) in S and inside a core's L2; the packed rows are O(S), like the tensors.
constexpr int64_t kM = kAttnBlockM, kN = kAttnBlockN;
constexpr int64_t kRows = 4 * kM, kKeys = 2 * kN;
constexpr int64_t kBatch = 8;
// A forward task's rows multiply each key block in groups of this many (whole row blocks of the
// kernel), each group only up to the keys its last row sees: on the causal diagonal that skips
// most of the masked half of the block (12% of a causal forward's products at S 2048).
constexpr int64_t kGroup = 4 * kPanelRowMultiple;
constexpr float kInf = std::numeric_limits<float>::infinity();
// Below this many multiply-adds (B H S^2 D, about a millisecond on one core) a call runs on one
// thread: waking a team costs more, and finite-difference tests make thousands of such calls.
constexpr int64_t kMinParallelWork = int64_t(1) << 22;

// Each (batch, head) of a (B, S, Hx, D) tensor packed into panels for panel_gemm
// (engine/cpu/cpu_tile_gemm.h), head (b, hx) at b * Hx + hx: its (S x D) rows, or their
// transpose (D x S). O(S) memory, like the tensor; a BLAS call would pack these rows again for
// every tile they meet.
enum class Layout { panels, transposed };
struct HeadPanels {
  Tensor buf;  // (B * Hx, per_head)
  int64_t per_head;
  PackedPanels first;  // head 0's panels; the others are per_head floats apart

  HeadPanels(const float* x, int64_t B, int64_t S, int64_t Hx, int64_t D, Layout layout,
             bool parallel)
      : per_head(layout == Layout::transposed ? D * panel_cols(S) : S * panel_cols(D)) {
    buf = Tensor::empty({B * Hx, per_head}, DType::f32);
    float* dst = buf.data<float>();
#pragma omp parallel for if (parallel)
    for (int64_t bh = 0; bh < B * Hx; bh++) {
      const float* src = x + ((bh / Hx) * S * Hx + bh % Hx) * D;  // row 0 of head (b, hx)
      float* out = dst + bh * per_head;
      const PackedPanels packed = layout == Layout::transposed
                                      ? pack_panels(src, D, S, 1, Hx * D, out)
                                      : pack_panels(src, S, D, Hx * D, 1, out);
      if (bh == 0) first = packed;  // every head's has the same strides
    }
  }
  PackedPanels head(int64_t b, int64_t hx, int64_t Hx) const {
    return {first.data + (b * Hx + hx) * per_head, first.panel_stride, first.row_stride};
  }
};

// One call's problem: q, out, dout (B, S, H, D); k, v (B, S, Hkv, D); all contiguous f32. A head's
// rows are H*D (or Hkv*D) floats apart; the tile products read them packed (HeadPanels, or a
// task's own copy of its rows), the softmax and output passes in place.
struct Problem {
  int64_t B, S, H, Hkv, D, heads_per_kv;
  float scale;
  const float *q, *k, *v;
  MaskView mask;

  Problem(const Tensor& q_, const Tensor& k_, const Tensor& v_, const AttentionMask& m)
      : B(q_.size(0)), S(q_.size(1)), H(q_.size(2)), Hkv(k_.size(2)), D(q_.size(3)),
        heads_per_kv(H / Hkv), scale(1.0f / std::sqrt(static_cast<float>(D))),
        q(q_.data<float>()), k(k_.data<float>()), v(v_.data<float>()), mask(mask_view(m, S, H)) {}

  bool parallel() const { return B * H * S * S * D >= kMinParallelWork; }
  // The tasks' blocks, no larger than the sequence, so a short one gets small scratch: query rows
  // and keys (the scores' row stride) of a forward task, query rows of one backward product.
  int64_t forward_rows() const { return std::min(kRows, S); }
  int64_t forward_keys() const { return std::min(kBatch * kN, (S + kN - 1) / kN * kN); }
  int64_t backward_rows() const { return std::min(kBatch * kM, (S + kM - 1) / kM * kM); }

  int64_t q_offset(int64_t b, int64_t i, int64_t h) const { return ((b * S + i) * H + h) * D; }
  // s (m x n, row stride lds) = scale * Q K^T of m query rows (contiguous, lda floats apart)
  // and n keys, kt the panels of those keys' K^T (D x n). m and n stop at S, so edge tiles never
  // read past the sequence.
  void scores(const float* q_rows, int64_t lda, int64_t m, PackedPanels kt, int64_t n, float* s,
              int64_t lds) const {
    panel_gemm(m, n, D, scale, q_rows, lda, 1, kt, false, s, lds);
  }
  // Adds the bias to, and puts -inf in the masked entries of, scores s of the tile above. Spans
  // never move left, so the first row has the smallest hi and the last the largest lo: a tile
  // inside both (most tiles) needs no pass, a boundary tile masks each row's two ends as runs.
  void mask_scores(int64_t b, int64_t h, int64_t i0, int64_t m, int64_t j0, int64_t n, float* s,
                   int64_t lds) const {
    const float* bias = mask.head_slice(mask.bias, b, h);
    if (!bias && mask.keys(b, h, i0).hi >= j0 + n && mask.keys(b, h, i0 + m - 1).lo <= j0) return;
    for (int64_t r = 0; r < m; r++) {
      const KeySpan span = mask.keys(b, h, i0 + r);
      float* sr = s + r * lds;
      const int64_t lo = std::clamp<int64_t>(span.lo - j0, 0, n);
      const int64_t hi = std::clamp<int64_t>(span.hi - j0, lo, n);
      if (bias)
        for (int64_t c = lo; c < hi; c++) sr[c] += bias[(i0 + r) * S + j0 + c];
      std::fill(sr, sr + lo, -kInf);
      std::fill(sr + hi, sr + n, -kInf);
    }
  }
};

// Scores or probabilities of a forward task's queries by a block of keys, their output
// accumulator, and their Q rows made contiguous.
int64_t forward_work(const Problem& p) {
  return p.forward_rows() * (p.forward_keys() + p.D + panel_cols(p.D));
}

// Forward of query rows [i0, i0 + m) (m <= kRows) of (b, h), over the key tiles from its first
// row's lo to its last row's hi, up to kBatch key tiles at a time: their scores, masked where a
// tile needs it, then the online softmax keeps each row's running max and sum (f32) and rescales
// the output accumulator once per block, so the probabilities of the whole row never exist at
// once.
// kt, vp: the kv head's K^T and V in panels. work: forward_work(p) floats.
void forward_tile(const Problem& p, int64_t b, int64_t h, int64_t i0, PackedPanels kt,
                  PackedPanels vp, float* work, float* out, float* lse) {
  const int64_t rows = p.forward_rows(), m = std::min(rows, p.S - i0), D = p.D;
  const int64_t lds = p.forward_keys();
  float* s = work;              // (rows, lds) scores, then unnormalised probabilities
  float* acc = s + rows * lds;  // (rows, D) unnormalised output
  // The tile's Q rows, contiguous: read in place (H * D floats apart) they share a few cache sets.
  const PackedPanels qt = pack_rows(p.q + p.q_offset(b, i0, h), m, D, p.H * D, acc + rows * D);
  float row_max[kRows], row_sum[kRows];
  std::fill(acc, acc + m * D, 0.0f);
  std::fill(row_max, row_max + m, -kInf);
  std::fill(row_sum, row_sum + m, 0.0f);
  const int64_t hi = p.mask.keys(b, h, i0 + m - 1).hi;
  const int64_t j_end = std::min(p.S, (hi + kN - 1) / kN * kN);  // the end of the last key tile
  for (int64_t jb = p.mask.keys(b, h, i0).lo / kN * kN; jb < j_end; jb += lds) {
    const int64_t nb = std::min(lds, j_end - jb);
    int64_t group_keys[(kRows + kGroup - 1) / kGroup];  // spans never move left: the last row's
    for (int64_t g0 = 0; g0 < m; g0 += kGroup) {
      const int64_t gm = std::min(kGroup, m - g0);
      const int64_t n = std::clamp<int64_t>(p.mask.keys(b, h, i0 + g0 + gm - 1).hi - jb, 0, nb);
      group_keys[g0 / kGroup] = n;
      p.scores(qt.at(g0, 0).data, qt.row_stride, gm, kt.at(0, jb), n, s + g0 * lds, lds);
    }
    // The mask pass puts -inf in every score a group left out (they lie past its rows' spans).
    for (int64_t r0 = 0; r0 < m; r0 += kM)
      for (int64_t j0 = jb; j0 < jb + nb; j0 += kN)
        p.mask_scores(b, h, i0 + r0, std::min(kM, m - r0), j0, std::min(kN, jb + nb - j0),
                      s + r0 * lds + (j0 - jb), lds);
    for (int64_t r = 0; r < m; r++) {
      float* sr = s + r * lds;
      const float mx = std::max(row_max[r], max_of(sr, nb));
      // A row masked so far keeps max -inf; subtracting 0 instead gives exp(-inf) = 0, not NaN.
      const float base = mx == -kInf ? 0.0f : mx;
      const float rescale = std::exp(row_max[r] - base);
      row_sum[r] = row_sum[r] * rescale + exp_sub_sum(sr, base, sr, nb);
      row_max[r] = mx;
      for (int64_t d = 0; d < D; d++) acc[r * D + d] *= rescale;
    }
    for (int64_t g0 = 0; g0 < m; g0 += kGroup)
      panel_gemm(std::min(kGroup, m - g0), D, group_keys[g0 / kGroup], 1.0f, s + g0 * lds, lds, 1,
                 vp.at(jb, 0), true, acc + g0 * D, D);
  }
  for (int64_t r = 0; r < m; r++) {
    const bool sees_any = row_sum[r] > 0.0f;
    const float inv = sees_any ? 1.0f / row_sum[r] : 0.0f;
    float* o = out + p.q_offset(b, i0 + r, h);
    for (int64_t d = 0; d < D; d++) o[d] = acc[r * D + d] * inv;
    // +inf makes the backward's exp(s - lse) 0 on a row that saw nothing.
    lse[(b * p.H + h) * p.S + i0 + r] = sees_any ? row_max[r] + std::log(row_sum[r]) : kInf;
  }
}

// Parallel over (batch, head, query tile); dynamic, since causal tiles differ in work.
void tiled_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask,
                   Tensor& out, Tensor& lse) {
  require_f32("flash attention", q);
  const Problem p(q, k, v, mask);
  const int64_t tiles = (p.S + kRows - 1) / kRows, per_thread = forward_work(p);
  const HeadPanels kt(p.k, p.B, p.S, p.Hkv, p.D, Layout::transposed, p.parallel());
  const HeadPanels vp(p.v, p.B, p.S, p.Hkv, p.D, Layout::panels, p.parallel());
  // Per-thread tile scratch from the allocator, so its peak shows every buffer the kernel uses.
  Tensor scratch = Tensor::empty({omp_get_max_threads(), per_thread}, DType::f32);
#pragma omp parallel for collapse(3) schedule(dynamic) if (p.parallel())
  for (int64_t b = 0; b < p.B; b++)
    for (int64_t h = 0; h < p.H; h++)
      for (int64_t t = 0; t < tiles; t++)
        forward_tile(p, b, h, t * kRows, kt.head(b, h / p.heads_per_kv, p.Hkv),
                     vp.head(b, h / p.heads_per_kv, p.Hkv),
                     scratch.data<float>() + omp_get_thread_num() * per_thread, out.data<float>(),
                     lse.data<float>());
}

// Where the backward writes: dq (like q), dk and dv (like k), dbias (like the bias, or null);
// what it reads besides the problem: dout (like q), lse and delta = rowsum(dO * O), (B, H, S).
struct BackwardBuffers {
  float *dq, *dk, *dv, *dbias;
  const float *dout, *lse, *delta;
};

// A backward task's own rows for the query heads of its kv head, each head per_head floats after
// the last: Q and dO as zero-padded contiguous rows, which every key tile multiplies as A (scores,
// dP) and as B (dK, dV), and dQ (S, D) summed over the key tiles. In q, dout and dq a head's rows
// are H * D floats apart and share a few cache sets: read in place as A the score products ran
// at two-thirds of the speed, and dQ's rows did not stay in cache between key tiles.
struct GroupRows {
  PackedPanels q, dout;  // the group's first head's
  int64_t per_head;
  float* dq;  // (heads_per_kv, S, D)

  PackedPanels q_of(int64_t i) const {
    return {q.data + i * per_head, q.panel_stride, q.row_stride};
  }
  PackedPanels dout_of(int64_t i) const {
    return {dout.data + i * per_head, dout.panel_stride, dout.row_stride};
  }
};

// P and dS of up to kBatch query tiles, the key tile's dK and dV, and its K^T, V^T and K in
// panels.
int64_t backward_work(const Problem& p) {
  return 2 * p.backward_rows() * kKeys + 4 * kKeys * p.D + kKeys * panel_cols(p.D);
}

// Backward of keys [j0, j0 + n) (n <= kKeys) of kv head kvh in batch b, FlashAttention-2's
// loop: dK and dV of the tile accumulate over every query head of the GQA group and every query
// tile that sees it, in a fixed order; P is recomputed from the saved lse:
//   P = exp(S - lse), dV += P^T dO, dP = dO V^T, dS = P * (dP - delta),
//   dQ += scale dS K, dK += scale dS^T Q, dbias += dS.
// The query tiles that see the key tile are one run (spans never move left), backward_rows() at a
// time per product. dQ rows are accumulated in place: the caller gives all key tiles of (b, kvh) to
// one thread, in order (backward_kv_head). The tile's K^T, V^T and K are packed here, once for
// all its query tiles. work: backward_work(p) floats.
void backward_key_tile(const Problem& p, const BackwardBuffers& g, const GroupRows& group,
                       int64_t b, int64_t kvh, int64_t j0, float* work) {
  const int64_t n = std::min(kKeys, p.S - j0), D = p.D, S = p.S, rows = p.backward_rows();
  float* pt = work;               // (rows, kKeys) P
  float* ds = pt + rows * kKeys;  // (rows, kKeys) dP, then dS
  float* dk = ds + rows * kKeys;  // (kKeys, D)
  float* dv = dk + kKeys * D;     // (kKeys, D)
  std::fill(dk, dk + 2 * kKeys * D, 0.0f);
  float* packs = dv + kKeys * D;
  const int64_t kv0 = ((b * S + j0) * p.Hkv + kvh) * D, ld = p.Hkv * D;
  const PackedPanels kt = pack_panels(p.k + kv0, D, n, 1, ld, packs);
  const PackedPanels vt = pack_panels(p.v + kv0, D, n, 1, ld, packs + D * kKeys);
  const PackedPanels kr = pack_panels(p.k + kv0, n, D, ld, 1, packs + 2 * D * kKeys);
  for (int64_t h = kvh * p.heads_per_kv; h < (kvh + 1) * p.heads_per_kv; h++) {
    const int64_t i = h - kvh * p.heads_per_kv;
    const PackedPanels qr = group.q_of(i), dor = group.dout_of(i);
    float* dq = group.dq + i * S * D;
    const float* lse = g.lse + (b * p.H + h) * S;
    const float* delta = g.delta + (b * p.H + h) * S;
    float* dbias = p.mask.head_slice(g.dbias, b, h);
    int64_t i_begin = S, i_end = 0;
    for (int64_t i0 = 0; i0 < S; i0 += kM) {
      const int64_t m = std::min(kM, S - i0);
      if (!p.mask.tiles_meet(b, h, i0, m, j0, n)) continue;
      i_begin = std::min(i_begin, i0);
      i_end = i0 + m;
    }
    for (int64_t ib = i_begin; ib < i_end; ib += rows) {
      const int64_t m = std::min(rows, i_end - ib);
      p.scores(qr.at(ib, 0).data, qr.row_stride, m, kt, n, pt, kKeys);
      for (int64_t i0 = ib; i0 < ib + m; i0 += kM)
        p.mask_scores(b, h, i0, std::min(kM, ib + m - i0), j0, n, pt + (i0 - ib) * kKeys, kKeys);
      for (int64_t r = 0; r < m; r++) exp_sub(pt + r * kKeys, lse[ib + r], pt + r * kKeys, n);
      panel_gemm(n, D, m, 1.0f, pt, 1, kKeys, dor.at(ib, 0), true, dv, D);  // P^T: a view
      panel_gemm(m, n, D, 1.0f, dor.at(ib, 0).data, dor.row_stride, 1, vt, false, ds, kKeys);
      for (int64_t r = 0; r < m; r++)
        softmax_grad(pt + r * kKeys, delta[ib + r], ds + r * kKeys, n);
      if (dbias)
        for (int64_t r = 0; r < m; r++)
          for (int64_t c = 0; c < n; c++) dbias[(ib + r) * S + j0 + c] += ds[r * kKeys + c];
      panel_gemm(m, D, n, p.scale, ds, kKeys, 1, kr, true, dq + ib * D, D);
      panel_gemm(n, D, m, p.scale, ds, 1, kKeys, qr.at(ib, 0), true, dk, D);
    }
  }
  for (int64_t c = 0; c < n; c++)
    for (int64_t d = 0; d < D; d++) {
      g.dk[kv0 + c * p.Hkv * D + d] = dk[c * D + d];
      g.dv[kv0 + c * p.Hkv * D + d] = dv[c * D + d];
    }
}

// GroupRows' floats: Q and dO padded, dQ, for each query head of a kv head.
int64_t group_work(const Problem& p) { return p.heads_per_kv * p.S * (2 * panel_cols(p.D) + p.D); }

// Kv head kvh of batch b: its query heads' rows packed, every key tile in order, then their dQ
// rows, summed over those tiles, into dq. work: backward_work(p) floats, rows: group_work(p).
void backward_kv_head(const Problem& p, const BackwardBuffers& g, int64_t b, int64_t kvh,
                      float* work, float* rows) {
  const int64_t S = p.S, D = p.D, h0 = kvh * p.heads_per_kv, per_head = S * panel_cols(D);
  float* dq_rows = rows + 2 * p.heads_per_kv * per_head;
  GroupRows group{{}, {}, per_head, dq_rows};
  for (int64_t i = 0; i < p.heads_per_kv; i++) {
    const PackedPanels q = pack_rows(p.q + p.q_offset(b, 0, h0 + i), S, D, p.H * D,
                                     rows + i * per_head);
    const PackedPanels dout = pack_rows(g.dout + p.q_offset(b, 0, h0 + i), S, D, p.H * D,
                                        rows + (p.heads_per_kv + i) * per_head);
    if (i == 0) {  // the heads after it are per_head floats apart
      group.q = q;
      group.dout = dout;
    }
  }
  std::fill(dq_rows, dq_rows + p.heads_per_kv * S * D, 0.0f);
  for (int64_t j0 = 0; j0 < S; j0 += kKeys) backward_key_tile(p, g, group, b, kvh, j0, work);
  for (int64_t i = 0; i < p.heads_per_kv; i++)
    for (int64_t r = 0; r < S; r++) {
      const float* row = dq_rows + (i * S + r) * D;
      std::copy(row, row + D, g.dq + p.q_offset(b, r, h0 + i));
    }
}

// Parallel over (batch, kv head): each task owns its dK, dV and dQ rows, so nothing is summed
// across threads and the result does not depend on the thread count. A bias broadcast over
// batches or heads has its gradient summed over them, so those tasks merge into one. (A GPU runs
// key tiles in parallel too; dQ then needs a deterministic reduction, the per-tile math is this.)
void tiled_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                    const Tensor& lse, const Tensor& dout, const AttentionMask& mask, Tensor& dq,
                    Tensor& dk, Tensor& dv, Tensor* dbias) {
  require_f32("flash attention backward", q);
  const Problem p(q, k, v, mask);
  const int64_t S = p.S, D = p.D, rows = p.B * S * p.H;
  Tensor delta = Tensor::empty({p.B, p.H, S}, DType::f32);  // rowsum(dO * O), the softmax term
#pragma omp parallel for if (p.parallel())
  for (int64_t row = 0; row < rows; row++) {  // row = (b * S + i) * H + h
    const float* o = out.data<float>() + row * D;
    const float* d_o = dout.data<float>() + row * D;
    const int64_t b = row / (S * p.H), i = row / p.H % S, h = row % p.H;
    delta.data<float>()[(b * p.H + h) * S + i] = dot_of(o, d_o, D);
  }
  if (dbias) std::fill(dbias->data<float>(), dbias->data<float>() + dbias->numel(), 0.0f);
  const BackwardBuffers g{dq.data<float>(),   dk.data<float>(),
                          dv.data<float>(),   dbias ? dbias->data<float>() : nullptr,
                          dout.data<float>(), lse.data<float>(),
                          delta.data<float>()};
  const bool merge_b = dbias && dbias->size(0) == 1, merge_h = dbias && dbias->size(1) == 1;
  const int64_t b_tasks = merge_b ? 1 : p.B, h_tasks = merge_h ? 1 : p.Hkv;
  const int64_t per_thread = backward_work(p) + group_work(p);
  Tensor scratch = Tensor::empty({omp_get_max_threads(), per_thread}, DType::f32);
#pragma omp parallel for collapse(2) schedule(dynamic) if (p.parallel())
  for (int64_t bt = 0; bt < b_tasks; bt++)
    for (int64_t ht = 0; ht < h_tasks; ht++) {
      float* work = scratch.data<float>() + omp_get_thread_num() * per_thread;
      for (int64_t b = merge_b ? 0 : bt; b < (merge_b ? p.B : bt + 1); b++)
        for (int64_t kvh = merge_h ? 0 : ht; kvh < (merge_h ? p.Hkv : ht + 1); kvh++)
          backward_kv_head(p, g, b, kvh, work, work + backward_work(p));
    }
}

}  // namespace

void CpuBackend::flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const AttentionMask& mask, Tensor& out, Tensor& lse) {
  OpTimer timer("flash_attention");
  tiled_forward(q, k, v, mask, out, lse);
}

void CpuBackend::flash_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                          const Tensor& out, const Tensor& lse,
                                          const Tensor& dout, const AttentionMask& mask,
                                          Tensor& dq, Tensor& dk, Tensor& dv) {
  OpTimer timer("flash_attention_backward");
  tiled_backward(q, k, v, out, lse, dout, mask, dq, dk, dv, nullptr);
}

// The same tiles as flash attention; the bias and document masks are what this path adds.
void CpuBackend::mem_efficient_attention_forward(const Tensor& q, const Tensor& k,
                                                 const Tensor& v, const AttentionMask& mask,
                                                 Tensor& out, Tensor& lse) {
  OpTimer timer("mem_efficient_attention");
  if (mask.doc_ids.defined()) {  // the key spans rely on documents being contiguous runs
    const int32_t* doc = mask.doc_ids.data<int32_t>();
    for (int64_t t = 1; t < mask.doc_ids.numel(); t++)
      LLM_CHECK(t % q.size(1) == 0 || doc[t] >= doc[t - 1],
                "mem_efficient_attention: doc_ids must not decrease along the sequence (documents "
                "are contiguous runs); row " + std::to_string(t / q.size(1)) + " goes from " +
                    std::to_string(doc[t - 1]) + " to " + std::to_string(doc[t]));
  }
  tiled_forward(q, k, v, mask, out, lse);
}

void CpuBackend::mem_efficient_attention_backward(const Tensor& q, const Tensor& k,
                                                  const Tensor& v, const Tensor& out,
                                                  const Tensor& lse, const Tensor& dout,
                                                  const AttentionMask& mask, Tensor& dq,
                                                  Tensor& dk, Tensor& dv, Tensor& dbias) {
  OpTimer timer("mem_efficient_attention_backward");
  tiled_backward(q, k, v, out, lse, dout, mask, dq, dk, dv, dbias.defined() ? &dbias : nullptr);
}

}  // namespace llm
