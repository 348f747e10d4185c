// defines: CudnnAttention — cuDNN's fused flash attention (sdp_attention) for one CudaBackend:
// its cuDNN handle on the backend's compute stream, and one execution plan per problem shape and
// pass, built on first use through the cuDNN graph (backend) API and reused for every later call.
#pragma once
#include <cuda_runtime.h>
#include <cudnn.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>

#include "engine/tensor.h"

namespace llm {

class CudnnAttention {
 public:
  // On the current CUDA device; every plan runs on `stream`.
  explicit CudnnAttention(cudaStream_t stream);
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // bf16 q (B, S, H, D), k and v (B, S, Hkv, D), contiguous, as the flash entry points of the
  // backend; out like q and lse f32 (B, H, S). cuDNN's softmax stats (row max + log of the row
  // sum of exp of the scaled, masked scores) is exactly our lse, so either backward reads it.
  void forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, Tensor& out,
               Tensor& lse);
  void backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                const Tensor& lse, const Tensor& dout, bool causal, Tensor& dq, Tensor& dk,
                Tensor& dv);

  struct Plan;  // an execution plan with its workspace size and by-value scalars

 private:
  // B, S, H, Hkv, D, causal, dtype, pass (0 forward, 1 backward).
  using ShapeKey = std::array<int64_t, 8>;
  const Plan& plan_for(const ShapeKey& key);
  // Runs a plan on the tensors bound to their uids; the workspace comes from the caching allocator.
  void execute(const Plan& plan, Device device, const std::map<int64_t, void*>& bound);

  cudnnHandle_t handle_ = nullptr;
  std::map<ShapeKey, std::unique_ptr<Plan>> plans_;  // destroyed before the handle
};

}  // namespace llm
