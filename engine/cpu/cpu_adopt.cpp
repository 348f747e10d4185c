// defines: CPU ADOPT update (one pass over param, grad, m, v)
#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::adopt(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdoptArgs& args) {
  OpTimer timer("adopt");
  update_param_and_moments("adopt", param, grad, m, v,
                           [&args](float p, float g, float& m1, float& v1) { return adopt_element(p, g, m1, v1, args); });
}

}  // namespace llm
