// The CUDA backend: one per device. Every kernel runs on the backend's compute stream in order, so
// a block the caching allocator hands out again is never still in use by an earlier kernel. Its
// kernels live one op family per file in cuda/; they take f32 or bf16 tensors and do all
// accumulation, softmax and norm statistics in f32.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>

#include "cuda/device_allocator.h"
#include "engine/backend.h"

namespace llm {

// One GEMM shape's cuBLASLt call: its descriptors and the algorithm cuBLASLt's heuristic chose,
// made at the shape's first call (cuda_matmul.cu) and reused by every later one, so that a call
// costs the host one cublasLtMatmul rather than a dozen descriptor calls besides.
struct GemmPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  GemmPlan() = default;
  GemmPlan(const GemmPlan&) = delete;
  GemmPlan& operator=(const GemmPlan&) = delete;
  ~GemmPlan() {
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

class CudnnAttention;  // cuda/attention/cudnn_attention.h: cuDNN stays out of this header

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(int device);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda:" + std::to_string(device_); }
  CachingAllocator& allocator() override { return allocator_; }
  bool fast_bf16() const override { return fast_bf16_; }  // sm_80 and newer
  void set_tf32(bool on) override { tf32_ = on; }  // f32 GEMMs on TF32 tensor cores
  uint64_t available_memory() override;
  DevicePeaks peaks() const override;
  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  // Reserved for NCCL: collectives overlap compute on a stream of their own.
  cudaStream_t comm_stream() const { return comm_stream_; }

  void copy_from_host(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy_strided(const Tensor& src, Tensor& dst) override;
  void synchronize() override;
  std::unique_ptr<DeviceTimer> make_timer() override;  // CUDA events (cuda/cuda_timer.cu)
  void flush_caches() override;
  void set_op_split(bool on) override;  // cuda/op_split.h

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
  int64_t tiled_attention_head_dim(int64_t D) const override;
  void flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionMask& mask, Tensor& out, Tensor& lse) override;
  void flash_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& out, const Tensor& lse, const Tensor& dout,
                                const AttentionMask& mask, Tensor& dq, Tensor& dk,
                                Tensor& dv) override;
  void cudnn_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionMask& mask, Tensor& out, Tensor& lse) override;
  void cudnn_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
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

 private:
  void activate() const;  // cudaSetDevice(device_): every entry point runs on its own device
  // scale_columns / scale_rows: out = x * s, s indexed by each element's row (per_row) or column.
  void scale_lines(const char* op, const Tensor& x, const Tensor& s, Tensor& out, bool per_row);
  // A scratch buffer on this device, from the caching allocator (its peak shows scratch too).
  Tensor scratch(const Shape& shape, DType dtype) const;
  // The eager attention's f32 core; the public entry points cast bf16 around it.
  void attention_forward_f32(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                             Tensor& out, Tensor& probs);
  void attention_backward_f32(const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& probs, const Tensor& dout, Tensor& dq, Tensor& dk,
                              Tensor& dv);
  // rmsnorm_backward, plus dx_in into dx when defined (add_rmsnorm_backward).
  void norm_backward(const char* op, const Tensor& x, const Tensor& w, const Tensor& rstd,
                     const Tensor& dy, const Tensor& dx_in, Tensor& dx, Tensor& dw);
  // Integer ids (embedding tokens, cross-entropy targets) checked on the device (cuda_ids.cu):
  // info[0] = how many are not `ignore` (kNoIgnore: none is); the first outside [0, limit) is
  // recorded in input_errors_ as a token id, or a target when `targets` is set. Nothing waits.
  static constexpr int64_t kNoIgnore = INT64_MIN;
  void check_ids(const Tensor& ids, int64_t limit, int64_t ignore, bool targets, Tensor& info);
  // A mean loss over the rows of logits (N, V) (cuda_cross_entropy.cu): the targets checked on
  // the device, launch_rows(T{}, row_loss) launches the kernel that writes each row's loss (when
  // N > 0), then their mean over the counted rows goes into `loss`.
  template <class LaunchRows>
  void mean_row_loss(const char* op, const Tensor& logits, const Tensor& targets, int ignore_index,
                     Tensor& loss, LaunchRows&& launch_rows);
  void check_doc_ids(const Tensor& doc_ids, int64_t seq);  // non-decreasing along each row
  // Throws the error a check recorded, if any (and clears it). Called whenever the host has
  // waited for the stream anyway: a read of device data or synchronize().
  void raise_input_errors();
  CudnnAttention& cudnn();  // created on first use: a run without sdp_attention never loads cuDNN

  int device_;
  bool fast_bf16_ = false;
  bool tf32_ = false;
  cudaStream_t stream_ = nullptr;
  cudaStream_t comm_stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;  // cuBLASLt's, allocated once with the backend
  size_t workspace_bytes_ = 0;
  // Per GEMM shape: cuBLASLt's heuristic asked once, its descriptors made once.
  std::map<std::array<int64_t, 18>, std::unique_ptr<GemmPlan>> gemm_plans_;
  int32_t* input_errors_ = nullptr;  // device: {kind, a, b, c} of the first bad input, or zeros
  // flush_caches' buffer: cudaMalloc'd on first use (outside the caching allocator, so the
  // benchmarks' peak memory does not count it), freed with the backend.
  void* l2_flush_ = nullptr;
  size_t l2_flush_bytes_ = 0;
  std::unique_ptr<CudnnAttention> cudnn_;  // its handle runs on stream_
  CudaDeviceAllocator allocator_;
};

}  // namespace llm
