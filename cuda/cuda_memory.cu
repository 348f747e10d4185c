// defines: CudaBackend::copy_strided (gather of a strided view into a contiguous tensor), cast
// (f32, bf16 and i32 in any direction; 4 or 8 elements a thread where aligned) and fill
#include <cstring>

#include "cuda/cuda_common.cuh"
#include "cuda/vec.cuh"

namespace llm {

namespace {

constexpr int kMaxDims = 8;

// A strided source after merging dims that are contiguous with each other.
struct StridedLayout {
  int dims = 0;
  int64_t shape[kMaxDims];
  int64_t stride[kMaxDims];
};

// Walks the destination in order; each element finds its source offset from its multi-index.
// W is a word of the element's size, so one kernel serves every dtype.
template <class W>
__global__ void strided_copy_kernel(const W* src, W* dst, StridedLayout l, int64_t n) {
  GRID_STRIDE_LOOP(i, n) {
    int64_t rest = i, offset = 0;
    for (int d = l.dims - 1; d >= 0; d--) {
      offset += (rest % l.shape[d]) * l.stride[d];
      rest /= l.shape[d];
    }
    dst[i] = src[offset];
  }
}

template <class Src, class Dst>
__device__ __forceinline__ Dst cast_element(Src x) {
  return from_f32<Dst>(to_f32(x));
}

// W = wide_width<Src, Dst>: both pointers on their W-element words (cuda/vec.cuh); W = 1 element-wise.
template <class Src, class Dst, int W>
__global__ void cast_kernel(const Src* src, Dst* dst, int64_t n) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    const VecN<Src, K> s = load_vec<K>(src, unit);
    VecN<Dst, K> d;
    for (int j = 0; j < K; j++) d.v[j] = cast_element<Src, Dst>(s.v[j]);
    store_vec<K>(dst, unit, d);
  });
}

template <class W>
__global__ void fill_kernel(W* dst, W value, int64_t n) {
  GRID_STRIDE_LOOP(i, n) dst[i] = value;
}

// Calls f(T{}) for the storage type of any dtype (i32 and u8 included).
template <class F>
void dispatch_any(DType t, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); break;
    case DType::bf16: f(bf16{}); break;
    case DType::i32: f(int32_t{}); break;
    case DType::u8: f(uint8_t{}); break;
  }
}

}  // namespace

void CudaBackend::copy_strided(const Tensor& src, Tensor& dst) {
  LLM_CHECK(src.shape() == dst.shape() && src.dtype() == dst.dtype() && dst.is_contiguous(),
            "copy_strided " + src.str() + " into " + dst.str());
  const int64_t n = src.numel();
  if (n == 0) return;
  activate();
  if (src.is_contiguous()) {
    CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), dst.nbytes(),
                               cudaMemcpyDeviceToDevice, stream_));
    return;
  }
  // Size-1 dims carry no offset; a dim whose stride equals the next dim's extent times its
  // stride folds into it. A transpose of a (B, S, H, D) view keeps at most 4 dims.
  StridedLayout l;
  for (int d = 0; d < src.dim(); d++) {
    const int64_t size = src.shape()[d], stride = src.strides()[d];
    if (size == 1) continue;
    if (l.dims > 0 && l.stride[l.dims - 1] == stride * size) {
      l.shape[l.dims - 1] *= size;
      l.stride[l.dims - 1] = stride;
      continue;
    }
    LLM_CHECK(l.dims < kMaxDims, "copy_strided on CUDA: " + src.str() + " has more than " +
                                     std::to_string(kMaxDims) + " non-mergeable dims");
    l.shape[l.dims] = size;
    l.stride[l.dims] = stride;
    l.dims++;
  }
  // Copied as words of the element's size (u8 codes, bf16, f32 and i32): the bits, whatever they mean.
  dispatch_any(src.dtype(), [&](auto element) {
    using T = decltype(element);
    strided_copy_kernel<<<grid_for(n), kThreads, 0, stream_>>>(static_cast<const T*>(src.data_ptr()),
                                                              static_cast<T*>(dst.data_ptr()), l, n);
  });
  CUDA_CHECK_OP("copy_strided", src, dst);
}

void CudaBackend::cast(const Tensor& src, Tensor& dst) {
  LLM_CHECK(src.shape() == dst.shape() && src.is_contiguous() && dst.is_contiguous(),
            "cast " + src.str() + " to " + dst.str());
  const int64_t n = src.numel();
  if (n == 0) return;
  activate();
  dispatch_any(src.dtype(), [&](auto s) {
    dispatch_any(dst.dtype(), [&](auto d) {
      using S = decltype(s);
      using D = decltype(d);
      const S* from = static_cast<const S*>(src.data_ptr());
      D* to = static_cast<D*>(dst.data_ptr());
      launch_vec(n, [&](auto width, unsigned blocks) {
        cast_kernel<S, D, width()><<<blocks, kThreads, 0, stream_>>>(from, to, n);
      }, from, static_cast<const D*>(to));
    });
  });
  CUDA_CHECK_OP("cast", src, dst);
}

// The value is converted on the host exactly as the CPU backend converts it, then written as a
// raw word of the element's size.
void CudaBackend::fill(Tensor& dst, float value) {
  LLM_CHECK(dst.is_contiguous(), "fill of a non-contiguous " + dst.str());
  const int64_t n = dst.numel();
  if (n == 0) return;
  activate();
  if (dst.dtype() == DType::bf16) {
    fill_kernel<<<grid_for(n), kThreads, 0, stream_>>>(static_cast<uint16_t*>(dst.data_ptr()),
                                                       f32_to_bf16(value), n);
  } else if (dst.dtype() == DType::u8) {
    fill_kernel<<<grid_for(n), kThreads, 0, stream_>>>(static_cast<uint8_t*>(dst.data_ptr()),
                                                       static_cast<uint8_t>(value), n);
  } else {
    uint32_t word;
    if (dst.dtype() == DType::f32) {
      std::memcpy(&word, &value, 4);
    } else {
      const int32_t i = static_cast<int32_t>(value);
      std::memcpy(&word, &i, 4);
    }
    fill_kernel<<<grid_for(n), kThreads, 0, stream_>>>(static_cast<uint32_t*>(dst.data_ptr()),
                                                       word, n);
  }
  CUDA_CHECK_OP("fill", dst);
}

}  // namespace llm
