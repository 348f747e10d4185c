// defines: KeySpan, MaskView (an AttentionMask as plain sizes and pointers, and
// which keys each query of it sees) and mask_view. Written once for the CPU tiled attention
// (engine/cpu/cpu_flash_attention.cpp) and the CUDA kernels (cuda/attention/), which include it
// too: the CPU tests then check the kernels' own mask arithmetic, not a copy of it.
#pragma once
#include <cstdint>

#include "engine/backend.h"
#include "engine/host_device.h"

namespace llm {

struct KeySpan {  // the keys [lo, hi) one query sees
  int64_t lo, hi;

  LLM_HOST_DEVICE bool contains(int64_t key) const { return key >= lo && key < hi; }
};

// The first index of the sorted a[0, n) whose value is > x (Upper) or >= x (!Upper): std's
// lower_bound and upper_bound, which device code has not got.
template <bool Upper>
LLM_HOST_DEVICE int64_t sorted_bound(const int32_t* a, int64_t n, int32_t x) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (Upper ? a[mid] <= x : a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Every mask here lets a query see one interval of keys whose ends never move left as the query
// moves right, so a query tile needs the key tiles from its first row's lo to its last row's hi:
// those outside are skipped, those straddling an end are masked element by element. A bias can
// mask more (-inf) inside the interval.
struct MaskView {
  int64_t S = 0, H = 0;
  bool causal = false;
  int64_t s2_group = 0;          // 0: none; heads h >= H/2 use groups shifted by s2_group / 2 (rounded down)
  const int32_t* doc = nullptr;  // (B, S) non-decreasing document ids, or null
  const float* bias = nullptr;   // (Bb, Hb, S, S), or null
  int64_t bias_b_stride = 0, bias_h_stride = 0;  // 0 on a broadcast dim

  // The keys query i of (b, h) sees. Rows past the sequence (an edge tile's padding) see none.
  LLM_HOST_DEVICE KeySpan keys(int64_t b, int64_t h, int64_t i) const {
    if (i >= S) return {0, 0};
    KeySpan s{0, causal ? i + 1 : S};
    if (s2_group > 0) {
      // A shifted head's groups start at G/2, rounded down as LongLoRA's group_size // 2:
      // [0, G/2), [G/2, G/2 + G), ...; so a query's group is found G - G/2 further on.
      const int64_t shift = h >= H / 2 ? s2_group - s2_group / 2 : 0;
      const int64_t start = (i + shift) / s2_group * s2_group - shift;  // may start before 0
      s.lo = start > 0 ? start : 0;
      s.hi = s.hi < start + s2_group ? s.hi : start + s2_group;
    }
    if (doc) {
      const int32_t* d = doc + b * S;
      const int64_t first = sorted_bound<false>(d, S, d[i]), end = sorted_bound<true>(d, S, d[i]);
      s.lo = s.lo > first ? s.lo : first;
      s.hi = s.hi < end ? s.hi : end;
    }
    return s;
  }
  // Whether any query of [i0, i0 + m) sees any key of [j0, j0 + n): a backward skips the pair of
  // tiles when not. The first and last rows bound the band, since spans never move left.
  LLM_HOST_DEVICE bool tiles_meet(int64_t b, int64_t h, int64_t i0, int64_t m, int64_t j0,
                                  int64_t n) const {
    return spans_meet(keys(b, h, i0), keys(b, h, i0 + m - 1), j0, n);
  }
  // Whether every query of [i0, i0 + m) sees every key of [j0, j0 + n): such a pair of tiles
  // needs no mask (a bias aside). The last row's lo and the first row's hi bound it.
  LLM_HOST_DEVICE bool tiles_inside(int64_t b, int64_t h, int64_t i0, int64_t m, int64_t j0,
                                    int64_t n) const {
    return spans_cover(keys(b, h, i0), keys(b, h, i0 + m - 1), j0, n);
  }
  // The two from a tile's first and last spans, for kernels that keep them.
  LLM_HOST_DEVICE static bool spans_meet(KeySpan first, KeySpan last, int64_t j0, int64_t n) {
    return first.lo < j0 + n && last.hi > j0;
  }
  LLM_HOST_DEVICE static bool spans_cover(KeySpan first, KeySpan last, int64_t j0, int64_t n) {
    return last.lo <= j0 && first.hi >= j0 + n;
  }
  // The (S, S) slice that (b, h) reads of a bias-shaped tensor (the bias or its gradient).
  template <class P>
  LLM_HOST_DEVICE P* head_slice(P* base, int64_t b, int64_t h) const {
    return base ? base + b * bias_b_stride + h * bias_h_stride : nullptr;
  }
};

// The view of `mask` for queries (B, S, H, D); the tensors it points into must outlive it. The
// bias is contiguous f32 and the doc ids i32, as the ops hand them over.
inline MaskView mask_view(const AttentionMask& mask, int64_t S, int64_t H) {
  MaskView m;
  m.S = S;
  m.H = H;
  m.causal = mask.causal;
  m.s2_group = mask.s2_group;
  if (mask.doc_ids.defined()) m.doc = mask.doc_ids.data<int32_t>();
  if (mask.bias.defined()) {
    m.bias = mask.bias.data<float>();
    m.bias_b_stride = mask.bias.size(0) == 1 ? 0 : mask.bias.size(1) * S * S;
    m.bias_h_stride = mask.bias.size(1) == 1 ? 0 : S * S;
  }
  return m;
}

}  // namespace llm
