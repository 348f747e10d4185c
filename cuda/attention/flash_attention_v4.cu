// defines: flash_v4_available, flash_v4_forward, flash_v5_forward, flash_v7_forward: attention
// forward v4, FlashAttention-3's design on Hopper (sm_90a) for bf16 at head_dim 64 and 128 with
// every key-span mask (causal, S2 groups, document ids) and GQA. What it changes against v3
// (flash_attention_v3.cu):
//   - the products are wgmma.mma_async m64nNk16 (a warpgroup of 4 warps, 64 query rows, issues
//     one and the tensor cores run it while the warps go on): S = Q K^T with Q and K read by the
//     tensor cores straight from shared memory, O += P V with P from registers (the register-A
//     form; P never touches shared memory) and V from shared memory;
//   - tiles arrive by TMA (cp.async.bulk.tensor with a tensor map), 128-byte swizzled as wgmma
//     reads them, into a ring of 2 (head_dim 128) or 3 (64) stages whose full / empty state is
//     kept by mbarriers;
//   - warp specialisation: a producer warpgroup (one thread issues every copy; setmaxnreg gives
//     its registers away) and two consumer warpgroups of 64 query rows each (setmaxnreg 232);
//   - the softmax of key tile t runs while the tensor cores compute P V of tile t - 1 (issued just
//     before it), as FlashAttention-3's intra-warpgroup pipelining does; the rescale of O waits
//     for that product.
// v5's forward (flash_v5_forward) adds FlashAttention-3's ping-pong of the consumer warpgroups
// (consume's kPingPong); on an H200 (bench/results/2026-11-30-gpu-run.md) it gave v4's bits 4% faster.
// v7's (flash_v7_forward) is v5's made persistent, as FlashAttention-3's is: one block an SM walks
// its share of the query tiles (v4::persistent_tile) with Q in two slots, so that the start and end
// of each tile overlap the work of the tiles beside it. The 2026-11-30 sweep puts that fixed cost at
// about four key tiles' time a block (v5 at seq 4096 against 8192, not causal: 58.2% against
// 61.9% of the peak), a fifth of a causal tile's time at seq 4096. Not run on a device yet.
// Shared with v3: the query tile order (longest causal tiles first), the key spans of each row
// and masks only on boundary tiles, the online softmax and the output / lse layout
// (online_softmax.cuh), so v3's backward consumes v4's lse. Not done as FlashAttention-3 does:
// the output store through shared memory and TMA (rows are stored from registers, as in v3).
// The layouts (wgmma_layout.h) are checked on the CPU by test_wgmma_layout; v4 passed validation on
// an H200 (bench/results/2026-11-29-gpu-bringup.md), and flash attention uses a variant only where
// validation on the device passed.
#include <cudaTypedefs.h>

#include <algorithm>

#include "cuda/attention/flash_attention_v3.cuh"
#include "cuda/attention/flash_attention_v4.cuh"
#include "cuda/attention/flash_attention_v4.h"
#include "cuda/attention/online_softmax.cuh"

namespace llm {

namespace {

using namespace tiles;
using namespace v4;

static_assert(kRows == v3::kRows, "v3::query_block orders v4's query tiles too");
static_assert(kRows == kKeys, "one TMA box shape (64 columns x 128 rows) serves Q, K and V");

// Dynamic shared memory, in bytes from a 1024-aligned base: kQSlots query tiles (v7 loads a
// block's next tile while its consumers work on this one), then the K ring, then the V ring.
template <int D, int kQSlots = 1>
struct Layout {
  static constexpr int kStages = D == 64 ? 3 : 2;
  static constexpr uint32_t kTile = kKeys * D * 2, kQ = kRows * D * 2;
  static constexpr uint32_t kK = kQSlots * kQ, kV = kK + kStages * kTile;
  static constexpr uint32_t kEnd = kV + kStages * kTile;
};
template <int D, int kQSlots = 1>
constexpr size_t smem_bytes() {
  return Layout<D, kQSlots>::kEnd + kSmemSlack;
}

struct Barriers {
  uint64_t q_full[2], q_empty[2], k_full[3], v_full[3], k_empty[3], v_empty[3];
};

#ifdef LLM_SM90A
template <int D, int kQSlots>
__device__ void init_ring_barriers(Barriers& bar) {
  for (int s = 0; s < Layout<D, kQSlots>::kStages; s++) {
    ptx::mbar_init(&bar.k_full[s], 1);  // the producer's arrive; the bytes complete it
    ptx::mbar_init(&bar.v_full[s], 1);
    ptx::mbar_init(&bar.k_empty[s], 128 * kConsumers);  // every consumer thread
    ptx::mbar_init(&bar.v_empty[s], 128 * kConsumers);
  }
}

// The K and V tiles of one query tile's band into the stage ring, each into a slot once the
// consumers have released it (the first pass finds them free). `ring`: the key tiles the ring
// took before (v7's earlier query tiles), so that slots and phases run on across tiles.
template <int D, int kQSlots>
__device__ void produce_band(const CUtensorMap* k_map, const CUtensorMap* v_map,
                             unsigned char* smem, Barriers& bar, int64_t b, int64_t kvh,
                             Band band, int ring) {
  using L = Layout<D, kQSlots>;
  for (int t = 0; t < band.n; t++) {
    const int s = (ring + t) % L::kStages;
    const uint32_t parity = ((ring + t) / L::kStages) & 1;
    const int64_t j0 = band.j_first + int64_t(t) * kKeys;
    ptx::mbar_wait(&bar.k_empty[s], parity ^ 1);
    load_tile<kKeys, D>(smem + L::kK + s * L::kTile, k_map, &bar.k_full[s], kvh, j0, b);
    ptx::mbar_wait(&bar.v_empty[s], parity ^ 1);
    load_tile<kKeys, D>(smem + L::kV + s * L::kTile, v_map, &bar.v_full[s], kvh, j0, b);
  }
}

// A consumer warpgroup: its 64 query rows of the tile in Q slot `slot` against the band's key
// tiles, which the ring holds from its key tile number `ring`. Per tile t: issue S_t = Q K_t^T,
// then O += P_{t-1} V_{t-1}; once S_t is in, mask it if a boundary tile and run the softmax (P_t
// and how far O must shrink) while P V runs; once that is in, rescale O and turn P_t into A
// fragments. The caller has waited for Q and the rows' spans.
// kPingPong (v5, v7): FlashAttention-3's ping-pong. The two warpgroups take turns to issue their
// products (named barriers 1 and 2), so that the tensor cores serve one while the other runs its
// softmax. Each warpgroup has n + 1 turns a query tile (the first S, n - 1 of S and P V, the last
// P V); turn k of warpgroup 0 waits for warpgroup 1's k - 1 turns (and a start arrival), turn k of
// warpgroup 1 for warpgroup 0's k, so the turns alternate from warpgroup 0 (PingPong). One tile
// a block (v5): the start arrival is this call's and warpgroup 1's last turn releases nothing, so
// that no arrival is left over. kPersistent (v7): the turns run on across the block's tiles (so
// one warpgroup's output store overlaps the other's last product), started and finished by the
// caller; the Q slot is released once the products are in.
template <int D, bool kPingPong, bool kPersistent = false>
__device__ void consume(const Problem<bf16>& p, const QueryRows<kRows>& rows, unsigned char* smem,
                        Barriers& bar, const v3::QueryBlock& blk, Band band, int ring, int slot,
                        bf16* out, float* lse) {
  using L = Layout<D, kPersistent ? 2 : 1>;
  const int n = band.n;
  const int wg_row = 64 * (threadIdx.x / 128 - 1);  // the warpgroup's first row of the tile
  const int r0 = wg_row + 16 * (threadIdx.x / 32 % 4);
  const KeySpan span[2] = {rows.span[r0 + c_row(0)], rows.span[r0 + c_row(2)]};
  // The band of the warpgroup's rows: a tile it sees whole needs no mask. Rows past the sequence
  // see nothing, so a warpgroup with none in it masks every score and adds zeros.
  const KeySpan first = rows.span[wg_row], last = rows.span[warpgroup_last_row(wg_row, blk.m)];
  const uint32_t base = ptx::smem_addr(smem), q_tile = base + slot * L::kQ;
  float o[D / 8][4] = {}, s[kKeys / 8][4] = {}, rescale[2];
  uint32_t pa[kKeys / 16][4];
  RowState st;
  const float scale_log2 = p.scale * kLog2e;

  // Key tile t of the band sits in ring slot stage(t), filled for the phase of parity(t).
  auto stage = [&](int t) { return (ring + t) % L::kStages; };
  auto parity = [&](int t) { return uint32_t((ring + t) / L::kStages) & 1; };
  auto issue_scores = [&](int t) {
    ptx::mbar_wait(&bar.k_full[stage(t)], parity(t));
    ptx::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
      ptx::wgmma_ss(s, kmajor_desc<kRows>(q_tile, wg_row, kk),
                    kmajor_desc<kKeys>(base + L::kK + stage(t) * L::kTile, 0, kk), kk);
    ptx::wgmma_commit();
  };
  auto issue_pv = [&](int t) {
    ptx::mbar_wait(&bar.v_full[stage(t)], parity(t));
    ptx::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; kk++)
      ptx::wgmma_rs(o, pa[kk], mnmajor_desc<kKeys>(base + L::kV + stage(t) * L::kTile, kk));
    ptx::wgmma_commit();
  };
  auto softmax = [&](int t) {  // S_t has landed: its K slot is free
    ptx::fence_regs(s);
    ptx::mbar_arrive(&bar.k_empty[stage(t)]);
    const int64_t j0 = band.j_first + int64_t(t) * kKeys;
    if (needs_mask<kKeys>(first, last, j0)) mask_tile(s, span, j0);
    softmax_update(s, st, scale_log2, rescale);
  };
  auto pv_done = [&](int t) {  // P_t V_t has landed: its V slot and P's registers are free
    ptx::fence_regs(o);
    ptx::fence_regs(pa);
    ptx::mbar_arrive(&bar.v_empty[stage(t)]);
  };
  auto to_a = [&] {
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; kk++) mma::c_to_a(s, kk, pa[kk]);
  };
  const PingPong<kPingPong> turns;
  auto turn_begin = [&] { turns.begin(); };
  auto turn_end = [&](bool last) {
    if (kPersistent || !(last && turns.wg == 1)) turns.end();
  };

  if (n > 0) {
    if (!kPersistent) turns.start();
    turn_begin();
    issue_scores(0);
    turn_end(false);
    ptx::wgmma_wait<0>();
    softmax(0);  // O is still 0: nothing to rescale
    to_a();
    for (int t = 1; t < n; t++) {
      turn_begin();
      issue_scores(t);
      issue_pv(t - 1);
      turn_end(false);
      ptx::wgmma_wait<1>();  // S_t (the older group)
      softmax(t);
      ptx::wgmma_wait<0>();  // P_{t-1} V_{t-1}
      pv_done(t - 1);
      rescale_rows(o, rescale);
      to_a();
    }
    turn_begin();
    issue_pv(n - 1);
    turn_end(true);
    ptx::wgmma_wait<0>();
    pv_done(n - 1);
  }
  if constexpr (kPersistent) ptx::mbar_arrive(&bar.q_empty[slot]);
  store_rows<D>(p, o, st, out, lse, blk.b, blk.h, blk.i0, blk.m, r0);
}

// Calls f(tile, k) for the block's query tiles, k counting them (v7's walk).
template <class F>
__device__ void walk_tiles(const QueryTileOrder& order, F&& f) {
  for (int k = 0;; k++) {
    const int64_t u = persistent_tile(blockIdx.x, k, gridDim.x, order.count());
    if (u < 0) return;
    f(order.at(u), k);
  }
}

// v7's producer warpgroup: for each of the block's query tiles, once the consumers have released
// its Q slot k % 2 (two slots: the next tile's loads while the consumers work on this one), every
// thread writes its row's key span, and thread 0 loads Q and then the band's K and V into the ring.
template <int D>
__device__ void produce_persistent(const CUtensorMap* q_map, const CUtensorMap* k_map,
                                   const CUtensorMap* v_map, const Problem<bf16>& p,
                                   const QueryTileOrder& order, unsigned char* smem,
                                   QueryRows<kRows> (&rows)[2], Barriers& bar) {
  int ring = 0;
  walk_tiles(order, [&](const QueryTile& t, int k) {
    const int slot = k % 2;
    ptx::mbar_wait(&bar.q_empty[slot], ((k / 2) & 1) ^ 1);
    load_query_rows(p, rows[slot], nullptr, nullptr, t.b, t.h, t.i0, t.m);
    if (threadIdx.x != 0) {
      ptx::mbar_arrive(&bar.q_full[slot]);
      return;
    }
    // The band from the mask itself: the other threads' spans may not have landed yet.
    const Band band =
        key_band<kKeys>(p.mask.keys(t.b, t.h, t.i0), p.mask.keys(t.b, t.h, t.i0 + t.m - 1));
    load_tile<kRows, D>(smem + slot * Layout<D, 2>::kQ, q_map, &bar.q_full[slot], t.h, t.i0, t.b);
    produce_band<D, 2>(k_map, v_map, smem, bar, t.b, t.h / p.heads_per_kv, band, ring);
    ring += band.n;
  });
}

// v7's consumer warpgroups: the block's query tiles in turn, the ping-pong running on across them.
template <int D>
__device__ void consume_persistent(const Problem<bf16>& p, const QueryTileOrder& order,
                                   unsigned char* smem, const QueryRows<kRows> (&rows)[2],
                                   Barriers& bar, bf16* out, float* lse) {
  const PingPong<true> turns;
  turns.start();
  int ring = 0;
  walk_tiles(order, [&](const QueryTile& t, int k) {
    const int slot = k % 2;
    ptx::mbar_wait(&bar.q_full[slot], (k / 2) & 1);
    const Band band = key_band<kKeys>(rows[slot].span[0], rows[slot].span[t.m - 1]);
    consume<D, true, true>(p, rows[slot], smem, bar, {t.b, t.h, t.i0, t.m}, band, ring, slot, out,
                           lse);
    ring += band.n;
  });
  turns.finish();
}
#endif  // LLM_SM90A

// Forward of one 128-row query tile of (b, h) (grid: H, B, query tiles; the last first);
// kPingPong: v5's.
template <int D, bool kPingPong>
__global__ void __launch_bounds__(kBlockThreads, 1)
    forward_v4_kernel(const __grid_constant__ CUtensorMap q_map,
                      const __grid_constant__ CUtensorMap k_map,
                      const __grid_constant__ CUtensorMap v_map, Problem<bf16> p, bf16* out,
                      float* lse) {
#ifdef LLM_SM90A
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = align_smem(smem_raw);
  __shared__ QueryRows<kRows> rows;
  __shared__ Barriers bar;
  const v3::QueryBlock blk = v3::query_block(p);
  load_query_rows(p, rows, nullptr, nullptr, blk.b, blk.h, blk.i0, blk.m);
  if (threadIdx.x == 0) {
    ptx::mbar_init(&bar.q_full[0], 1);
    init_ring_barriers<D, 1>(bar);
    ptx::fence_barrier_init();
  }
  __syncthreads();
  const Band band = key_band<kKeys>(rows.span[0], rows.span[blk.m - 1]);
  if (threadIdx.x < 128) {  // the producer warpgroup: one thread issues every copy
    ptx::setmaxnreg_dec<kProducerRegs>();
    if (threadIdx.x != 0) return;
    load_tile<kRows, D>(smem, &q_map, &bar.q_full[0], blk.h, blk.i0, blk.b);
    produce_band<D, 1>(&k_map, &v_map, smem, bar, blk.b, blk.h / p.heads_per_kv, band, 0);
  } else {
    ptx::setmaxnreg_inc<kConsumerRegs>();
    ptx::mbar_wait(&bar.q_full[0], 0);
    consume<D, kPingPong>(p, rows, smem, bar, blk, band, 0, 0, out, lse);
  }
#endif
}

// v7: v5's forward in one block an SM, each walking its query tiles (persistent_tile's snake,
// longest first) with Q and the rows' spans in two slots, so that a tile's start (its Q, its first
// K and V) and its end (the last product, the output store) overlap the neighbouring tiles' work
// instead of each block's start and end standing alone (grid: at most one block an SM).
template <int D>
__global__ void __launch_bounds__(kBlockThreads, 1)
    forward_v7_kernel(const __grid_constant__ CUtensorMap q_map,
                      const __grid_constant__ CUtensorMap k_map,
                      const __grid_constant__ CUtensorMap v_map, Problem<bf16> p,
                      QueryTileOrder order, bf16* out, float* lse) {
#ifdef LLM_SM90A
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = align_smem(smem_raw);
  __shared__ QueryRows<kRows> rows[2];
  __shared__ Barriers bar;
  if (threadIdx.x == 0) {
    for (int s = 0; s < 2; s++) {
      ptx::mbar_init(&bar.q_full[s], 128);  // every producer thread; thread 0's with Q's bytes
      ptx::mbar_init(&bar.q_empty[s], 128 * kConsumers);
    }
    init_ring_barriers<D, 2>(bar);
    ptx::fence_barrier_init();
  }
  __syncthreads();
  if (threadIdx.x < 128) {
    ptx::setmaxnreg_dec<kProducerRegs>();
    produce_persistent<D>(&q_map, &k_map, &v_map, p, order, smem, rows, bar);
  } else {
    ptx::setmaxnreg_inc<kConsumerRegs>();
    consume_persistent<D>(p, order, smem, rows, bar, out, lse);
  }
#endif
}

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static const auto fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000,
                                                cudaEnableDefault, &found));
    LLM_CHECK(found == cudaDriverEntryPointSuccess && f,
              "flash attention v4: the driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

}  // namespace

CUtensorMap v4::head_map(const Tensor& t, int rows) {
  const cuuint64_t D = t.size(3), heads = t.size(2), S = t.size(1), B = t.size(0);
  const cuuint64_t dims[4] = {D, heads, S, B};
  const cuuint64_t strides[3] = {D * 2, heads * D * 2, S * heads * D * 2};  // bytes, dims 1..3
  const cuuint32_t box[4] = {wgmma::kBoxCols, 1, cuuint32_t(rows), 1}, unit[4] = {1, 1, 1, 1};
  CUtensorMap map;
  const CUresult r = encode_tiled()(
      &map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, const_cast<void*>(t.data_ptr()), dims, strides,
      box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  LLM_CHECK(r == CUDA_SUCCESS, "flash attention v4: cuTensorMapEncodeTiled failed (" +
                                   std::to_string(int(r)) + ") for " + t.str());
  return map;
}

bool flash_v4_available() {
  static const bool available = [] {
    int device = 0, major = 0, minor = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    cudaFuncAttributes attr{};
    // The SASS the device would run: sm_90 code only if the build had 90a (an sm_80 build runs
    // its own, empty, kernel there).
    CUDA_CHECK(cudaFuncGetAttributes(&attr, forward_v4_kernel<128, false>));
    return major == 9 && minor == 0 && attr.binaryVersion == 90;
  }();
  return available;
}

namespace {

struct ForwardMaps {
  CUtensorMap q, k, v;
  ForwardMaps(const Tensor& q_, const Tensor& k_, const Tensor& v_)
      : q(head_map(q_, kRows)), k(head_map(k_, kKeys)), v(head_map(v_, kKeys)) {}
};

template <bool kPingPong>
void launch_forward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                    const MaskView& mask, Tensor& out, Tensor& lse) {
  const Problem<bf16> p = make_problem<bf16>(q, k, v, mask);
  const ForwardMaps maps(q, k, v);
  const dim3 grid(static_cast<unsigned>(p.H), static_cast<unsigned>(q.size(0)),
                  static_cast<unsigned>((p.S + kRows - 1) / kRows));
  dispatch_head_dim(q.size(3), [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    allow_smem(forward_v4_kernel<D, kPingPong>, smem_bytes<D>());
    forward_v4_kernel<D, kPingPong><<<grid, kBlockThreads, smem_bytes<D>(), stream>>>(
        maps.q, maps.k, maps.v, p, out.data<bf16>(), lse.data<float>());
  });
}

}  // namespace

void flash_v4_forward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                      const MaskView& mask, Tensor& out, Tensor& lse) {
  launch_forward<false>(stream, q, k, v, mask, out, lse);
}

void flash_v5_forward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                      const MaskView& mask, Tensor& out, Tensor& lse) {
  launch_forward<true>(stream, q, k, v, mask, out, lse);
}

void flash_v7_forward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                      const MaskView& mask, Tensor& out, Tensor& lse) {
  const Problem<bf16> p = make_problem<bf16>(q, k, v, mask);
  const QueryTileOrder order{p.S, p.H, q.size(0)};
  if (order.count() == 0) return;
  const ForwardMaps maps(q, k, v);
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(order.count(), device_sms()));
  dispatch_head_dim(q.size(3), [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    allow_smem(forward_v7_kernel<D>, smem_bytes<D, 2>());
    forward_v7_kernel<D><<<blocks, kBlockThreads, smem_bytes<D, 2>(), stream>>>(
        maps.q, maps.k, maps.v, p, order, out.data<bf16>(), lse.data<float>());
  });
}

}  // namespace llm
