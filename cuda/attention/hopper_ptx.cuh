// defines: LLM_SM90A and, under it, the Hopper (sm_90a) instructions of the v4 attention kernel
// as inline PTX: mbarriers, TMA tile loads, wgmma (operands from shared memory or A from
// registers), its fence / commit / wait, and setmaxnreg. Written out here rather than taken from
// CUTLASS, as the project builds on no framework; each wrapper is one instruction and says why it
// is shaped as it is. Only the sm_90a device pass sees them (wgmma and setmaxnreg exist on sm_90a
// alone), so the sm_80 pass and the host pass compile the kernel without its body.
#pragma once
#include <cstdint>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LLM_SM90A 1
#endif

#ifdef LLM_SM90A
namespace llm {
namespace ptx {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// --- mbarrier: a shared-memory barrier whose phase completes once `count` arrivals and the
// transaction bytes announced by expect_tx (the TMA copies landing) are both in.
__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count));
}
// Makes the initialised barriers visible to the async proxy (the TMA unit) before any copy uses
// them; a block is a cluster of one.
__device__ __forceinline__ void fence_barrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// One arrival that also announces `bytes` to land before the phase can complete.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)),
               "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
// Waits until the phase of parity `parity` has completed. try_wait may return before that (it
// suspends for a while at most), hence the loop; a fresh barrier counts its phase "before 0"
// (parity 1) as complete, which lets a producer's first wait on an empty slot pass. No timeout:
// one (a clock or a counter and a trap) made ptxas spill the consumers' accumulators.
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  uint32_t done;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        " selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(smem_addr(bar)), "r"(parity)
        : "memory");
  } while (!done);
}

// --- TMA: one box of a 4-d tensor map (coordinates innermost first) into shared memory, its
// bytes counted against `bar`. Out-of-range rows arrive as zeros and still count.
__device__ __forceinline__ void tma_load_4d(void* dst, const void* tensor_map, uint64_t* bar,
                                            int c0, int c1, int c2, int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(tensor_map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3),
      "r"(smem_addr(bar))
      : "memory");
}

// --- setmaxnreg: the producer warpgroup gives registers back and the consumers take them (every
// warp of a warpgroup executes the same one).
template <uint32_t N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <uint32_t N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}

// --- wgmma. fence: orders this thread's earlier register writes (accumulators, A fragments)
// before the wgmma that reads them; commit: closes a group of issued wgmmas; wait<N>: until at
// most N groups are pending.
__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Orders this thread's shared-memory stores (generic proxy) before later reads of them by wgmma
// (the async proxy): each writer fences, then a barrier lets the readers on.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Named barrier `id` (1-15; 0 is __syncthreads') of Threads threads (whole warps) of the block:
// sync waits for them all, arrive counts this warp in and goes on (a producer of a turn).
template <int Threads>
__device__ __forceinline__ void named_barrier_sync(int id) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "n"(Threads) : "memory");
}
template <int Threads>
__device__ __forceinline__ void named_barrier_arrive(int id) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "n"(Threads) : "memory");
}

// Pins registers an in-flight wgmma reads or writes: an empty asm that "changes" them, placed
// after a wait, keeps the compiler from reading them before the wait or from reusing an A
// fragment's registers while the tensor cores still read them.
template <int N>
__device__ __forceinline__ void fence_regs(float (&r)[N][4]) {
#pragma unroll
  for (int t = 0; t < N; t++)
#pragma unroll
    for (int e = 0; e < 4; e++) asm volatile("" : "+f"(r[t][e])::"memory");
}
template <int N>
__device__ __forceinline__ void fence_regs(uint32_t (&r)[N][4]) {
#pragma unroll
  for (int t = 0; t < N; t++)
#pragma unroll
    for (int e = 0; e < 4; e++) asm volatile("" : "+r"(r[t][e])::"memory");
}

#define LLM_F4(d, t) "+f"(d[t][0]), "+f"(d[t][1]), "+f"(d[t][2]), "+f"(d[t][3])
#define LLM_F16(d, t) LLM_F4(d, t), LLM_F4(d, t + 1), LLM_F4(d, t + 2), LLM_F4(d, t + 3)
#define LLM_D32                                                                                 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define LLM_D64                                                                                 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, "  \
  "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, "  \
  "%56, %57, %58, %59, %60, %61, %62, %63}"

// d (64 x 128, f32) = A B (+ d if accumulate), both operands K-major in shared memory (S = Q K^T):
// scale-d is a predicate, set from `accumulate`; A and B unscaled, untransposed.
__device__ __forceinline__ void wgmma_ss_n128(float (&d)[16][4], uint64_t a, uint64_t b,
                                              int accumulate) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %66, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " LLM_D64
      ", %64, %65, p, 1, 1, 0, 0;\n}\n"
      : LLM_F16(d, 0), LLM_F16(d, 4), LLM_F16(d, 8), LLM_F16(d, 12)
      : "l"(a), "l"(b), "r"(accumulate));
}

// The same with N = 64 (the backward's 64-wide score tiles), and the one of d's shape. TransA /
// TransB 1: that operand is MN-major (the atomic-dQ backward's dQ = dS K reads dS^T and K so).
template <int TransA = 0, int TransB = 0>
__device__ __forceinline__ void wgmma_ss_n64(float (&d)[8][4], uint64_t a, uint64_t b,
                                             int accumulate) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %34, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " LLM_D32
      ", %32, %33, p, 1, 1, %35, %36;\n}\n"
      : LLM_F16(d, 0), LLM_F16(d, 4)
      : "l"(a), "l"(b), "r"(accumulate), "n"(TransA), "n"(TransB));
}
template <int NT>
__device__ __forceinline__ void wgmma_ss(float (&d)[NT][4], uint64_t a, uint64_t b, int acc) {
  if constexpr (NT == 16)
    wgmma_ss_n128(d, a, b, acc);
  else
    wgmma_ss_n64(d, a, b, acc);
}

// d (64 x N, f32) += A B with A (64 x 16 bf16) in registers (P, as mma::c_to_a builds it) and B
// MN-major in shared memory (V: imm-trans-b 1). scale-d is a predicate operand, which PTX gives
// no literal for: set true from an immediate.
__device__ __forceinline__ void wgmma_rs(float (&d)[16][4], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %69, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " LLM_D64
      ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : LLM_F16(d, 0), LLM_F16(d, 4), LLM_F16(d, 8), LLM_F16(d, 12)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "n"(1));
}
__device__ __forceinline__ void wgmma_rs(float (&d)[8][4], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %37, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " LLM_D32
      ", {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
      : LLM_F16(d, 0), LLM_F16(d, 4)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "n"(1));
}

#undef LLM_F4
#undef LLM_F16
#undef LLM_D32
#undef LLM_D64

}  // namespace ptx
}  // namespace llm
#endif  // LLM_SM90A
