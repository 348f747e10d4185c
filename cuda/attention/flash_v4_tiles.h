// defines: v4::kConsumers, kRows, kKeys, key_band, warpgroup_last_row, needs_mask,
// dkdv_head_splits, split_heads, QueryTileOrder, persistent_tile: the tile arithmetic of the v4
// attention kernels (flash_attention_v4.cu, flash_attention_v4_dkdv.cuh and the backwards),
// host-and-device so that test/test_wgmma_layout.cpp checks it against MaskView for every mask on
// the CPU.
#pragma once
#include <cstdint>

#include "engine/attention_mask.h"

namespace llm {
namespace v4 {

constexpr int kConsumers = 2;           // consumer warpgroups of 64 query rows
constexpr int kRows = 64 * kConsumers;  // a block's query tile
constexpr int kKeys = 128;              // a key tile: the n of S's wgmma

// The key tiles a query tile meets: n tiles of N keys (kKeys in the forward, 64 in the dQ
// kernel) from j_first (a multiple of N, so that a causal tile's diagonal is one tile), given its
// first and last rows' spans. Spans never move left as the row moves right, so those two bound
// every row's.
struct Band {
  int64_t j_first;
  int n;
};
template <int N>
LLM_HOST_DEVICE Band key_band(KeySpan first, KeySpan last) {
  const int64_t j_first = first.lo / N * N;
  return {j_first, last.hi > j_first ? int((last.hi - j_first + N - 1) / N) : 0};
}

// The last row of the warpgroup whose first row is wg_row, in a query tile of m rows: rows past
// the sequence see no key (MaskView gives them an empty span), so they do not bound the band; a
// warpgroup with no row in the sequence gets wg_row, whose empty span makes every tile masked.
LLM_HOST_DEVICE int warpgroup_last_row(int wg_row, int64_t m) {
  const int64_t last = wg_row + 63 < m - 1 ? wg_row + 63 : m - 1;
  return last > wg_row ? int(last) : wg_row;
}

// Whether the N-key tile from j0 needs the per-score mask for the rows spanning first .. last:
// unless every one of them sees every key of the tile.
template <int N>
LLM_HOST_DEVICE bool needs_mask(KeySpan first, KeySpan last, int64_t j0) {
  return !MaskView::spans_cover(first, last, j0, N);
}

// The dK/dV kernel's blocks each take one 128-key tile of a kv head and walk the query tiles of
// its GQA group's heads. At training shapes that is few blocks of very unequal work (llama3-1b,
// seq 2048: 8 kv heads x 16 key tiles = 128 blocks on 132 SMs, the causal first tile meeting 16
// times the query tiles of the last), so the kernel lasts as long as its heaviest block. Split into
// `splits` blocks per key tile, each over heads_per_kv / splits of the group's heads (their f32
// partial sums added afterwards in a fixed order): the fewest splits, a divisor of heads_per_kv,
// that give at least two blocks per SM, else every head its own block.
inline int dkdv_head_splits(int64_t blocks, int64_t heads_per_kv, int sms) {
  for (int64_t s = 1; s < heads_per_kv; s++)
    if (heads_per_kv % s == 0 && blocks * s >= 2 * int64_t(sms)) return int(s);
  return int(heads_per_kv);
}

// The query heads [begin, end) that split `split` of kv head kvh's group takes.
struct HeadRange {
  int64_t begin, end;
};
LLM_HOST_DEVICE HeadRange split_heads(int64_t kvh, int split, int splits, int64_t heads_per_kv) {
  const int64_t per = heads_per_kv / splits, begin = kvh * heads_per_kv + split * per;
  return {begin, begin + per};
}

// The query tiles of a forward call in one order, longest first: tile u is the query tile
// z = u / (H B) counted from the last, of batch row u / H % B and head u % H, the order in which a
// grid of (H, B, query tiles) starts the blocks of the other kernels (v3::query_block), so under a
// causal mask every head's longest tiles come first.
struct QueryTile {
  int64_t b, h, i0, m;  // rows [i0, i0 + m) of (b, h)
};
struct QueryTileOrder {
  int64_t S, H, B;
  LLM_HOST_DEVICE int64_t per_sequence() const { return (S + kRows - 1) / kRows; }
  LLM_HOST_DEVICE int64_t count() const { return per_sequence() * H * B; }
  LLM_HOST_DEVICE QueryTile at(int64_t u) const {
    const int64_t i0 = (per_sequence() - 1 - u / (H * B)) * kRows;
    return {u / H % B, u % H, i0, S - i0 < kRows ? S - i0 : kRows};
  }
};

// The persistent forward (v7) runs `blocks` blocks, one an SM, each walking its share of the
// `tiles` query tiles above: block c's k-th tile, or -1 past its last. The tiles go out in waves
// of `blocks`, a snake: even waves give block c the c-th tile of the wave, odd waves the c-th from
// its end. Tiles come longest first, so a block that took a long tile in one wave takes a short
// one in the next: under a causal mask the blocks' sums of key tiles come out within about one
// tile of each other, without the atomic tile counter FlashAttention-3 uses (and in a fixed
// order). The index grows with k, so the first -1 ends a block's walk.
LLM_HOST_DEVICE int64_t persistent_tile(int64_t c, int64_t k, int64_t blocks, int64_t tiles) {
  const int64_t u = k * blocks + (k % 2 == 0 ? c : blocks - 1 - c);
  return u < tiles ? u : -1;
}

}  // namespace v4
}  // namespace llm
