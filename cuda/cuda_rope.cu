// defines: CudaBackend::rope (HF rotate_half rotation, forward or inverse; its own backward)
#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

// One thread per (token, head, pair i < D/2): the pair (x[i], x[i + D/2]) turns by
// angle = float(pos) * inv_freq[i], the same f32 product the CPU and HF compute. sinf and cosf
// (not the __sinf intrinsics) keep full range reduction: angles reach pos ~ 1e5 radians.
template <class T>
__global__ void rope_kernel(const T* x, const int32_t* positions, const float* inv_freq,
                            float sign, T* y, int64_t tokens, int64_t H, int64_t half) {
  GRID_STRIDE_LOOP(e, tokens * H * half) {
    const int64_t i = e % half, token = e / (H * half);
    const int64_t base = (e / half) * 2 * half;  // (token * H + h) * D
    const float angle = static_cast<float>(positions[token]) * inv_freq[i];
    const float c = cosf(angle), s = sign * sinf(angle);
    const float x0 = to_f32(x[base + i]), x1 = to_f32(x[base + i + half]);
    y[base + i] = from_f32<T>(x0 * c - x1 * s);
    y[base + i + half] = from_f32<T>(x1 * c + x0 * s);
  }
}

}  // namespace

void CudaBackend::rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                       bool inverse, Tensor& y) {
  require_same_dtype("rope", x, y);
  LLM_CHECK(positions.dtype() == DType::i32 && inv_freq.dtype() == DType::f32 &&
                positions.device() == x.device() && inv_freq.device() == x.device(),
            "rope: positions " + positions.str() + " must be i32 and inv_freq " + inv_freq.str() +
                " f32, both on the device of " + x.str());
  const int64_t B = x.size(0), S = x.size(1), H = x.size(2), D = x.size(3);
  const int64_t n = B * S * H * (D / 2);
  if (n == 0) return;
  activate();
  dispatch_float("rope", x, [&](auto tag) {
    using T = decltype(tag);
    rope_kernel<<<grid_for(n), kThreads, 0, stream_>>>(
        x.data<T>(), positions.data<int32_t>(), inv_freq.data<float>(), inverse ? -1.0f : 1.0f,
        y.data<T>(), B * S, H, D / 2);
  });
  CUDA_CHECK_OP("rope", x, positions, inv_freq, y);
}

}  // namespace llm
