// defines: CPU 8-bit blockwise AdamW (bitsandbytes' algorithm; the reference for the CUDA kernel)
#include <cmath>

#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"
#include "engine/quant_map.h"

namespace llm {

void CpuBackend::adamw_8bit(Tensor& param, const Tensor& grad, Tensor& m_codes, Tensor& m_absmax,
                            Tensor& v_codes, Tensor& v_absmax, const AdamWArgs& args) {
  require_f32("adamw_8bit", param);
  require_f32("adamw_8bit", grad);
  require_adamw_8bit_state(param, m_codes, m_absmax, v_codes, v_absmax);
  OpTimer timer("adamw_8bit");
  static const std::array<float, 256> qm = dynamic_quant_map(true), qv = dynamic_quant_map(false);
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  uint8_t* mc = m_codes.data<uint8_t>();
  uint8_t* vc = v_codes.data<uint8_t>();
  float* ma = m_absmax.data<float>();
  float* va = v_absmax.data<float>();
  const int64_t n = param.numel(), blocks = m_absmax.numel();
#pragma omp parallel for
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t lo = b * kQuantBlock, len = std::min(kQuantBlock, n - lo);
    // The block's moments in f32 while it is updated: dequantise, update, find the new absmax.
    float m[kQuantBlock], v[kQuantBlock];
    float m_max = 0.0f, v_max = 0.0f;
    for (int64_t j = 0; j < len; j++) {
      m[j] = qm[mc[lo + j]] * ma[b];
      v[j] = qv[vc[lo + j]] * va[b];
      p[lo + j] = adamw_element(p[lo + j], g[lo + j], m[j], v[j], args);
      m_max = std::max(m_max, std::fabs(m[j]));
      v_max = std::max(v_max, v[j]);
    }
    // A block of zeros keeps absmax 0: every code then dequantises to 0.
    const float m_inv = m_max > 0.0f ? 1.0f / m_max : 0.0f, v_inv = v_max > 0.0f ? 1.0f / v_max : 0.0f;
    for (int64_t j = 0; j < len; j++) {
      mc[lo + j] = quantize_nearest(qm.data(), m[j] * m_inv);
      vc[lo + j] = quantize_nearest(qv.data(), v[j] * v_inv);
    }
    ma[b] = m_max;
    va[b] = v_max;
  }
}

}  // namespace llm
