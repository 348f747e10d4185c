// defines: forced_flash_kernel, flash_tensor_core_forward, flash_tensor_core_backward (see the
// header). The trials variant_choice.h runs per shape class: available = the device runs the
// variant (v4: an sm_90 device and an sm_90a build); validate = on a problem of the class (B 2,
// S 600 so that every stage ring wraps, 4 query heads on 2 kv heads, the call's head_dim and mask
// kind) its output and lse match the CPU's flash attention in f32 on the same bf16 values; time =
// the median of 3 forwards of the call's own shape, after a warm-up.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "cuda/attention/cuda_flash_attention_mma.h"
#include "cuda/attention/flash_attention_v3.h"
#include "cuda/attention/flash_attention_v4.h"
#include "cuda/attention/flash_variants.h"
#include "cuda/attention/variant_choice.h"

namespace llm {

namespace {

using Forward = void (*)(cudaStream_t, const Tensor&, const Tensor&, const Tensor&,
                         const MaskView&, Tensor&, Tensor&);
bool always() { return true; }
struct Variant {
  const char* name;
  Forward forward;
  bool (*available)();
};
// In order of preference on a tie.
const Variant kVariants[] = {{"v4", flash_v4_forward, flash_v4_available},
                             {"v3", flash_v3_forward, always},
                             {"v2", mma_attention_forward, always}};

ShapeClass shape_class(const Tensor& q, const AttentionMask& mask) {
  const MaskKind kind = mask.doc_ids.defined() ? MaskKind::documents
                        : mask.s2_group > 0    ? MaskKind::s2
                                               : MaskKind::plain;
  return {q.size(3), mask.causal, kind};
}
const char* kind_name(MaskKind k) {
  return k == MaskKind::documents ? "documents" : k == MaskKind::s2 ? "S2 groups" : "no mask";
}

// The validation: rms and max of the output's error within 2% of the reference's rms and max (a
// bf16 kernel errs by well under 1%; a wrong layout or mask by the size of the values), lse
// within 0.01, nothing NaN.
bool validate(CudaBackend& be, const Variant& variant, const ShapeClass& c) {
  const int64_t B = 2, S = 600, H = 4, Hkv = 2, D = c.head_dim;
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal;
  auto host = [&](int64_t heads) {
    std::vector<float> x(B * S * heads * D);
    for (float& e : x) e = normal(rng);
    return Tensor::from_floats(x, {B, S, heads, D}).to(DType::bf16).to(DType::f32);
  };
  const Tensor q = host(H), k = host(Hkv), v = host(Hkv);
  AttentionMask cpu_mask;
  cpu_mask.causal = c.causal;
  if (c.kind == MaskKind::s2) cpu_mask.s2_group = S / 4;
  if (c.kind == MaskKind::documents) {
    std::vector<int32_t> ids(B * S);
    for (int64_t i = 0; i < B * S; i++) ids[i] = int32_t(i % S < 230 ? 0 : i % S < 470 ? 1 : 2);
    cpu_mask.doc_ids = Tensor::from_ints(ids, {B, S});
  }
  Tensor ref = Tensor::empty({B, S, H, D}, DType::f32), ref_lse = Tensor::empty({B, H, S}, DType::f32);
  backend(Device::cpu()).flash_attention_forward(q, k, v, cpu_mask, ref, ref_lse);

  const Device dev = Device::cuda(be.device());
  AttentionMask dev_mask = cpu_mask;
  if (cpu_mask.doc_ids.defined()) dev_mask.doc_ids = cpu_mask.doc_ids.to(dev);
  const Tensor qd = q.to(dev).to(DType::bf16), kd = k.to(dev).to(DType::bf16),
               vd = v.to(dev).to(DType::bf16);
  Tensor out = Tensor::zeros({B, S, H, D}, DType::bf16, dev);
  Tensor lse = Tensor::zeros({B, H, S}, DType::f32, dev);
  variant.forward(be.stream(), qd, kd, vd, mask_view(dev_mask, S, H), out, lse);
  CUDA_CHECK(cudaGetLastError());
  be.synchronize();
  const std::vector<float> got = out.to_floats(), want = ref.to_floats();
  const std::vector<float> got_lse = lse.to_floats(), want_lse = ref_lse.to_floats();
  double err2 = 0, ref2 = 0, err_max = 0, ref_max = 0;
  for (size_t i = 0; i < got.size(); i++) {
    if (!std::isfinite(got[i])) return false;
    const double e = std::fabs(double(got[i]) - want[i]);
    err2 += e * e, ref2 += double(want[i]) * want[i];
    err_max = std::max(err_max, e), ref_max = std::max(ref_max, std::fabs(double(want[i])));
  }
  for (size_t i = 0; i < got_lse.size(); i++)
    if (!(got_lse[i] == want_lse[i] || std::fabs(got_lse[i] - want_lse[i]) <= 1e-2f)) return false;
  return err2 <= 4e-4 * ref2 && err_max <= 0.02 * ref_max;
}

double time_ms(CudaBackend& be, const Variant& variant, const Tensor& q, const Tensor& k,
               const Tensor& v, const AttentionMask& mask) {
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  Tensor lse = Tensor::empty({q.size(0), q.size(2), q.size(1)}, DType::f32, q.device());
  const MaskView view = mask_view(mask, q.size(1), q.size(2));
  std::vector<double> ms;
  for (int i = 0; i < 4; i++) {
    auto timer = be.make_timer();
    timer->start();
    variant.forward(be.stream(), q, k, v, view, out, lse);
    const double t = timer->stop_ms();
    if (i > 0) ms.push_back(t);  // the first is the warm-up
  }
  CUDA_CHECK(cudaGetLastError());
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

const Variant& variant_named(const std::string& name) {
  for (const Variant& v : kVariants)
    if (name == v.name) return v;
  throw std::runtime_error("LLM_ATTENTION_KERNEL is '" + name + "'; expected v2, v3 or v4");
}

}  // namespace

std::string forced_flash_kernel() {
  const char* name = std::getenv("LLM_ATTENTION_KERNEL");
  return name ? name : "";
}

bool flash_tensor_core_forward(CudaBackend& be, const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionMask& mask, Tensor& out, Tensor& lse) {
  const std::string forced = forced_flash_kernel();
  std::string name = forced;
  if (forced.empty()) {
    static VariantChoice choice("cuda cores");
    const ShapeClass c = shape_class(q, mask);
    std::vector<VariantTrial> trials;
    for (const Variant& var : kVariants)
      trials.push_back({var.name, var.available, [&be, &var, c] { return validate(be, var, c); },
                        [&] { return time_ms(be, var, q, k, v, mask); }});
    name = choice.choose(c, trials, [&](const std::string& line) {
      fmt::print(stderr, "flash attention, head_dim {}, {}{}: {}\n", c.head_dim,
                 c.causal ? "causal, " : "", kind_name(c.kind), line);
    });
    if (name == "cuda cores") return false;
  }
  const Variant& variant = variant_named(name);
  LLM_CHECK(variant.available(), "LLM_ATTENTION_KERNEL=" + forced +
                                     ": this device or build cannot run it (v4: sm_90 and an "
                                     "sm_90a build)");
  variant.forward(be.stream(), q, k, v, mask_view(mask, q.size(1), q.size(2)), out, lse);
  return true;
}

void flash_tensor_core_backward(cudaStream_t stream, const Tensor& q, const Tensor& k,
                                const Tensor& v, const Tensor& dout, const Tensor& lse,
                                const Tensor& delta, const MaskView& mask, Tensor& dq,
                                Tensor& dk, Tensor& dv) {
  if (forced_flash_kernel() == "v2")
    mma_attention_backward(stream, q, k, v, dout, lse, delta, mask, dq, dk, dv);
  else
    flash_v3_backward(stream, q, k, v, dout, lse, delta, mask, dq, dk, dv);
}

}  // namespace llm
