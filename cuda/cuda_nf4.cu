// defines: CudaBackend::nf4_dequantize (NF4 codes to f32 or bf16, the CPU's arithmetic; the NF4
// linear layer then runs cuBLASLt on the result, engine/ops/quantized_linear.cpp)
#include <array>

#include "cuda/cuda_common.cuh"
#include "cuda/vec.cuh"
#include "engine/nf4.h"
#include "engine/quant_map.h"

namespace llm {

namespace {

// The NF4 code values and the absmax's dynamic map travel as a kernel argument (1 KiB).
struct Nf4Maps {
  float nf4[16], dynamic[256];
};

// 8 elements a thread where aligned (cuda/vec.cuh): their 4 code bytes in one load, their 8
// values in one store, one absmax (a block holds 64); element by element otherwise and for the
// last n % 8. A block's absmax is recomputed by each of its words: two table loads and two flops,
// cheaper than a second pass. The tables sit in shared memory: indexed by each lane's own code,
// the kernel argument's copy would serialise a warp's 16 distinct addresses in the constant cache.
template <class T, int W>
__global__ void nf4_dequantize_kernel(const uint8_t* codes, const uint8_t* absmax_codes,
                                      const float* absmax_f32, const float* absmax_scale,
                                      float offset, T* out, int64_t n, Nf4Maps maps) {
  __shared__ float nf4[16], dynamic[256];
  for (int k = threadIdx.x; k < 256; k += blockDim.x) {
    dynamic[k] = maps.dynamic[k];
    if (k < 16) nf4[k] = maps.nf4[k];
  }
  __syncthreads();
  auto absmax_of = [&](int64_t b) {
    return absmax_scale ? nf4_absmax_value(dynamic[absmax_codes[b]], absmax_scale[b / kNf4AbsmaxBlock], offset)
                        : absmax_f32[b];
  };
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    if constexpr (K == 1) {
      out[unit] = from_f32<T>(nf4_value(codes, unit, absmax_of(unit / kNf4Block), nf4));
    } else {
      static_assert(K == 8 && kNf4Block % K == 0, "a word's 8 elements share their block's absmax");
      const float absmax = absmax_of(unit * K / kNf4Block);
      const VecN<uint8_t, K / 2> bytes = load_vec<K / 2>(codes, unit);  // element 2j high, 2j + 1 low
      VecN<T, K> o;
#pragma unroll
      for (int j = 0; j < K; j++) {
        const uint8_t byte = bytes.v[j / 2];
        o.v[j] = from_f32<T>(nf4[j % 2 == 0 ? byte >> 4 : byte & 0xF] * absmax);
      }
      store_vec<K>(out, unit, o);
    }
  });
}

}  // namespace

void CudaBackend::nf4_dequantize(const QuantWeight& w, Tensor& out) {
  require_nf4_weight(w);
  LLM_CHECK(out.shape() == w.shape, "nf4_dequantize: out " + out.str() + " for a weight of " + shape_str(w.shape));
  static const Nf4Maps maps = [] {
    Nf4Maps m;
    const std::array<float, 256> dynamic = dynamic_quant_map(true);
    std::copy(kNf4Code, kNf4Code + 16, m.nf4);
    std::copy(dynamic.begin(), dynamic.end(), m.dynamic);
    return m;
  }();
  const int64_t n = w.numel();
  if (n == 0) return;
  activate();
  const bool dq = w.double_quant();
  dispatch_float("nf4_dequantize", out, [&](auto tag) {
    using T = decltype(tag);
    const uint8_t* codes = w.codes.data<uint8_t>();
    T* op = out.data<T>();
    launch_vec(n, [&](auto width, unsigned blocks) {
      nf4_dequantize_kernel<T, width()><<<blocks, kThreads, 0, stream_>>>(
          codes, dq ? w.absmax.data<uint8_t>() : nullptr, dq ? nullptr : w.absmax.data<float>(),
          dq ? w.absmax_scale.data<float>() : nullptr, w.absmax_offset, op, n, maps);
    }, codes, op);
  });
  CUDA_CHECK_OP("nf4_dequantize", w.codes, w.absmax, out);
}

}  // namespace llm
