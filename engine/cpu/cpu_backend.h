// The CPU backend: the reference implementation of every op. Plain loops (OpenMP across rows),
// f32 arithmetic, GEMM through OpenBLAS. One file per op family in engine/cpu/.
#pragma once
#include "engine/backend.h"
#include "engine/check.h"

namespace llm {

class CpuBackend : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  std::string arithmetic() const override;
  CachingAllocator& allocator() override;
  uint64_t available_memory() override;

  void copy_from_host(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy_strided(const Tensor& src, Tensor& dst) override;

  void cast(const Tensor& src, Tensor& dst) override;
  void fill(Tensor& dst, float value) override;
  void axpby(float a, const Tensor& x, float b, const Tensor& y, Tensor& out) override;
  void mul(const Tensor& x, const Tensor& y, Tensor& out) override;
  void multiply_by_mask(Tensor& x, const Tensor& keep) override;
  void scale(Tensor& x, float s) override;
  void scale_by(Tensor& x, const Tensor& s, float expected) override;
  void sum(const Tensor& x, Tensor& out) override;
  void add_sum_squares(const std::vector<Tensor>& xs, Tensor& acc) override;
  void scale_columns(const Tensor& x, const Tensor& s, Tensor& out) override;
  void scale_rows(const Tensor& x, const Tensor& s, Tensor& out) override;
  void column_dot(const Tensor& a, const Tensor& b, Tensor& out) override;
  void row_inverse_norms(const Tensor& w, Tensor& out) override;

  void gemm(const GemmArgs& args) override;
  void adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
             const AdamWArgs& args) override;
  void adopt(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdoptArgs& args) override;
  void add_stable_adamw_ratios(const Tensor& grad, const Tensor& v, const StableRmsArgs& args, Tensor& acc) override;
  void adamw_8bit(Tensor& param, const Tensor& grad, Tensor& m_codes, Tensor& m_absmax,
                  Tensor& v_codes, Tensor& v_absmax, const AdamWArgs& args) override;
  void torch_optim(Tensor& param, const Tensor& grad, const std::array<Tensor*, 3>& state,
                   const TorchOptimArgs& args) override;
  void rmsprop_8bit(Tensor& param, const Tensor& grad, Tensor& codes, Tensor& absmax,
                    const TorchOptimArgs& args) override;
  void torchao_adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& m_scale, Tensor& v, Tensor& v_scale,
                     const TorchaoAdamWArgs& args) override;
  void lion(Tensor& param, const Tensor& grad, Tensor& m, const LionArgs& args) override;
  void schedule_free(Tensor& y, const Tensor& grad, Tensor& z, Tensor* v, const ScheduleFreeArgs& args) override;
  void lerp(Tensor& a, const Tensor& end, float weight) override;
  void lion_8bit(Tensor& param, const Tensor& grad, Tensor& m_codes, Tensor& m_absmax, const LionArgs& args) override;
  void adafactor(Tensor& param, const Tensor& grad, Tensor& row, Tensor& col, const AdafactorArgs& args) override;
  void came(Tensor& param, const Tensor& grad, Tensor& m, FactoredMoment& second, FactoredMoment& instability,
            const CameArgs& args) override;
  void ademamix(Tensor& param, const Tensor& grad, Tensor& m1, Tensor& m2, Tensor& nu, const AdemamixArgs& args) override;
  void ademamix_8bit(Tensor& param, const Tensor& grad, Tensor& m1_codes, Tensor& m1_absmax, Tensor& m2_codes,
                     Tensor& m2_absmax, Tensor& nu_codes, Tensor& nu_absmax, const AdemamixArgs& args) override;
  void nf4_dequantize(const QuantWeight& w, Tensor& out) override;
  void int8_dequantize(const QuantWeight& w, Tensor& out) override;

  void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) override;
  void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) override;
  void set_rows(Tensor& table, const Tensor& index, const Tensor& rows) override;
  void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y,
                       Tensor& rstd) override;
  void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy,
                        Tensor& dx, Tensor& dw) override;
  void add_rmsnorm_forward(const Tensor& x, const Tensor& r, const Tensor& w, float eps, Tensor& h,
                           Tensor& y, Tensor& rstd) override;
  void add_rmsnorm_backward(const Tensor& h, const Tensor& w, const Tensor& rstd, const Tensor& dy,
                            const Tensor& dh_in, Tensor& dh, Tensor& dw) override;
  void rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq, bool inverse,
            Tensor& y) override;
  void ssmax_scale(const Tensor& positions, float s, float b, Tensor& out) override;
  void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) override;
  void dropout(const Tensor& x, float p, uint64_t seed, Tensor& out) override;
  void add_uniform_noise(const Tensor& x, float magnitude, uint64_t seed, Tensor& out) override;
  void fake_quant_int4_forward(const Tensor& w, int64_t group, Tensor& out) override;
  void fake_quant_int4_backward(const Tensor& w, const Tensor& dout, int64_t group, Tensor& dw) override;
  void fake_quant_int8_forward(const Tensor& x, Tensor& out) override;
  void fake_quant_int8_backward(const Tensor& x, const Tensor& dout, Tensor& dx) override;
  void fake_quant_fp8_rows_forward(const Tensor& x, float lower_bound, Tensor& out) override;
  void fake_quant_fp8_rows_backward(const Tensor& x, const Tensor& dout, float lower_bound, Tensor& dx) override;
  void fake_quant_int4_symmetric_forward(const Tensor& w, int64_t group, Tensor& out) override;
  void fake_quant_int4_symmetric_backward(const Tensor& w, const Tensor& dout, int64_t group, Tensor& dw) override;
  void fake_quant_mxfp4(const Tensor& x, Tensor& out) override;
  void fake_quant_ternary(const Tensor& w, bool straight_through, Tensor& out) override;
  void fake_quant_int8_absmax(const Tensor& x, Tensor& out) override;
  void fake_quant_fp8(const Tensor& x, Fp8Format format, Tensor& out) override;
  void swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dout, Tensor& dgate,
                       Tensor& dup) override;
  void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                         Tensor& out, Tensor& probs) override;
  void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                          const Tensor& dout, bool causal, Tensor& dq, Tensor& dk,
                          Tensor& dv) override;
  void flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionMask& mask, Tensor& out, Tensor& lse) override;
  void flash_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& out, const Tensor& lse, const Tensor& dout,
                                const AttentionMask& mask, Tensor& dq, Tensor& dk,
                                Tensor& dv) override;
  void mem_efficient_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const AttentionMask& mask, Tensor& out,
                                       Tensor& lse) override;
  void mem_efficient_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const Tensor& out, const Tensor& lse, const Tensor& dout,
                                        const AttentionMask& mask, Tensor& dq, Tensor& dk,
                                        Tensor& dv, Tensor& dbias) override;
  void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int ignore_index,
                             Tensor& loss, Tensor& lse) override;
  void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                              const Tensor& dloss, int ignore_index, Tensor& dlogits) override;
  void topk_entropy_weights(const Tensor& logits, const Tensor& targets, const Tensor& lse, int64_t k,
                            float alpha, int ignore_index, Tensor& weights, Tensor& loss) override;
  void target_prob_weights(const Tensor& logits, const Tensor& targets, const Tensor& lse, int ignore_index,
                           Tensor& weights, Tensor& loss) override;
  void argmax_hits(const Tensor& logits, const Tensor& targets, int ignore_index, Tensor& hits) override;
  void softmax_stats(const Tensor& logits, const Tensor& lse, Tensor& entropy, Tensor& mean_logit) override;
};

CpuBackend& cpu_backend();

// Elementwise loops over fewer elements than this run on one thread: waking the OpenMP team costs
// more than the loop, and the optimizer calls them once per parameter (a norm weight is 256).
constexpr int64_t kMinParallelElements = int64_t(1) << 14;

// Compute kernels on the CPU work in f32; this names the op and the tensor when they do not.
void require_f32(const char* op, const Tensor& t);

// An optimizer's CPU pass: p[i] = update(p[i], g[i], m[i], v[i]) over an f32 gradient and f32
// param and moments, or bf16 ones (`bfloat16: true`) read into f32 and rounded back once (as
// torch's fused AdamW on a bf16 model). Each element on its own, so any split over threads gives
// the same bits.
template <typename Update>
void update_param_and_moments(const char* op, Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                              Update update) {
  require_f32(op, grad);
  const float* g = grad.data<float>();
  const int64_t n = param.numel();
  if (param.dtype() == DType::bf16) {
    LLM_CHECK(m.dtype() == DType::bf16 && v.dtype() == DType::bf16,
              std::string(op) + ": a bf16 param " + param.str() + " keeps bf16 moments, got " + m.str());
    uint16_t* p = param.data<uint16_t>();
    uint16_t* pm = m.data<uint16_t>();
    uint16_t* pv = v.data<uint16_t>();
#pragma omp parallel for if (n >= kMinParallelElements)
    for (int64_t i = 0; i < n; i++) {
      float m1 = bf16_to_f32(pm[i]), v1 = bf16_to_f32(pv[i]);
      p[i] = f32_to_bf16(update(bf16_to_f32(p[i]), g[i], m1, v1));
      pm[i] = f32_to_bf16(m1);
      pv[i] = f32_to_bf16(v1);
    }
    return;
  }
  require_f32(op, param);
  float* p = param.data<float>();
  float* pm = m.data<float>();
  float* pv = v.data<float>();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) p[i] = update(p[i], g[i], pm[i], pv[i]);
}

}  // namespace llm
