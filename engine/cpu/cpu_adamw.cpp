// defines: CPU AdamW update (one pass over param, grad, m, v)
#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                       const AdamWArgs& args) {
  OpTimer timer("adamw");
  update_param_and_moments("adamw", param, grad, m, v,
                           [&args](float p, float g, float& m1, float& v1) { return adamw_element(p, g, m1, v1, args); });
}

}  // namespace llm
