// defines: CudaBackend::rope (HF rotate_half rotation, forward or inverse; its own backward; a
// 16-byte word of pairs of 4 heads a thread where the rows allow), ssmax_scale (SSMax's
// per-query factor from the positions)
#include "cuda/cuda_common.cuh"
#include "cuda/vec.cuh"

namespace llm {

namespace {

// One thread per (token, G heads, W pairs i .. i + W - 1 < D/2): each pair (x[i], x[i + D/2]) turns
// by angle = float(pos) * inv_freq[i], the same f32 product the CPU and HF compute. sinf and cosf
// (not the __sinf intrinsics) keep full range reduction: angles reach pos ~ 1e5 radians. W is a
// 16-byte word of T (8 bf16, 4 f32) when half is a multiple of it and x, y and inv_freq are
// aligned (cuda/vec.cuh), else 1: one element a load, this kernel moved 24% of an H200's HBM
// bandwidth (bench/results/2026-11-30-gpu-run.md); 4 bf16 a load (8 bytes), 40%
// (2026-12-04-gpu-run.md), each thread working out a sine and a cosine for every 4 elements it
// moved. The angles are the token's alone: G = 4 heads (when H % 4 == 0) share them, the
// thread's 2G loads asked for at once before any store. Heads h, h + H/G, ...: a warp's load
// covers neighbouring heads.
template <class T, int W, int G>
__global__ void rope_kernel(const T* x, const int32_t* positions, const float* inv_freq,
                            float sign, T* y, int64_t tokens, int64_t H, int64_t half) {
  const int64_t units = half / W, groups = H / G;  // units of one head's first half
  GRID_STRIDE_LOOP(e, tokens * groups * units) {
    const int64_t u = e % units, first_head = (e / units) % groups, token = e / (groups * units);
    const VecN<float, W> freq = load_vec<W>(inv_freq, u);
    const float pos = static_cast<float>(positions[token]);
    VecN<T, W> a[G], b[G];
    for (int g = 0; g < G; g++) {
      const T* row = x + (token * H + first_head + g * groups) * 2 * half;
      a[g] = load_vec<W>(row, u);
      b[g] = load_vec<W>(row + half, u);
    }
    float c[W], s[W];
    for (int j = 0; j < W; j++) {
      const float angle = pos * freq.v[j];
      c[j] = cosf(angle);
      s[j] = sign * sinf(angle);
    }
    for (int g = 0; g < G; g++) {
      T* out = y + (token * H + first_head + g * groups) * 2 * half;
      VecN<T, W> ya, yb;
      for (int j = 0; j < W; j++) {
        const float x0 = to_f32(a[g].v[j]), x1 = to_f32(b[g].v[j]);
        ya.v[j] = from_f32<T>(x0 * c[j] - x1 * s[j]);
        yb.v[j] = from_f32<T>(x1 * c[j] + x0 * s[j]);
      }
      store_vec<W>(out, u, ya);
      store_vec<W>(out + half, u, yb);
    }
  }
}

// logf (within 1 ulp), not the faster __logf, whose error grows with the argument.
__global__ void ssmax_scale_kernel(const int32_t* positions, float s, float b, float* out, int64_t n) {
  GRID_STRIDE_LOOP(t, n) out[t] = s * logf(fmaxf(static_cast<float>(positions[t]) + 1.0f, 2.0f)) + b;
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
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const float* freq = inv_freq.data<float>();
    const float sign = inverse ? -1.0f : 1.0f;
    // Rows of half a head: x and y from every (token, head) and each half, inv_freq once.
    with_row_width<wide_width<T>()>(D / 2, [&](auto width) {
      auto launch = [&](auto heads) {  // heads a thread: 4 share their angles where H allows
        rope_kernel<T, width(), heads()><<<grid_for(n / (width() * heads())), kThreads, 0, stream_>>>(
            xp, positions.data<int32_t>(), freq, sign, yp, B * S, H, D / 2);
      };
      if (H % 4 == 0) launch(std::integral_constant<int, 4>{});
      else launch(std::integral_constant<int, 1>{});
    }, xp, static_cast<const T*>(yp), freq);
  });
  CUDA_CHECK_OP("rope", x, positions, inv_freq, y);
}

void CudaBackend::ssmax_scale(const Tensor& positions, float s, float b, Tensor& out) {
  LLM_CHECK(positions.dtype() == DType::i32 && out.dtype() == DType::f32 && out.numel() == positions.numel() &&
                positions.device() == out.device(),
            "ssmax_scale: positions " + positions.str() + " must be i32 and out " + out.str() + " f32 of as many, on one device");
  const int64_t n = positions.numel();
  if (n == 0) return;
  activate();
  ssmax_scale_kernel<<<grid_for(n), kThreads, 0, stream_>>>(positions.data<int32_t>(), s, b, out.data<float>(), n);
  CUDA_CHECK_OP("ssmax_scale", positions, out);
}

}  // namespace llm
