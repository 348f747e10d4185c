// defines: CudnnAttention (cudnn_attention.h) and CudaBackend::cudnn_attention_forward/
// backward: cuDNN's fused flash attention as graphs of the cuDNN backend API.
//
// Why a graph of small ops: cuDNN 9.19's dedicated SDPA_FWD / SDPA_BWD operation descriptors have
// no causal mask (masks reach them as a score-modifier subgraph from 9.21 on), so both passes are
// spelled out as matmul, pointwise and reduction operations in the pattern that cuDNN's fused
// attention engines recognise, the one the cudnn-frontend lowers its SDPA node to for this cuDNN:
//   forward:  S = scale Q K^T, masked; stats = max + log(sum exp(S - max)); O = softmax(S) V
//   backward: P = exp(scale Q K^T - stats), masked; dV = P^T dO; dP = dO V^T;
//             dS = scale P (dP - rowsum(dO * O)); dK = dS^T Q; dQ = dS K
// Every tensor is a 4-d (b, h, s, d) view with strides, so our (B, S, H, D) layout is read in
// place: dims (B, H, S, D), strides (S*H*D, D, H*D, 1); K^T is the same memory with the last two
// dims swapped. GQA needs nothing: a matmul against fewer kv heads broadcasts them, and the
// backward sums dK and dV over each group with a reduction.
#include "cuda/attention/cudnn_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_backend.h"
#include "cuda/attention/cudnn_graph.h"
#include "cuda/op_split.h"
#include "engine/check.h"

namespace llm {

struct CudnnAttention::Plan {
  CudnnPlan built;
  // Host values of the by-value scalars: the pointers handed to cuDNN must outlive each run.
  float scale = 1.0f, one = 1.0f, neg_inf = -std::numeric_limits<float>::infinity();
};

namespace {

// Tensors the caller binds at execution; virtual tensors (intermediates that live inside the
// fused kernel) are numbered from kFirstVirtual.
enum Uid : int64_t {
  kQ = 1, kK, kV, kO, kStats, kDO, kDQ, kDK, kDV,
  kSoftmaxSum,  // backward: rowsum(dO * O), f32 (B, H, S)
  kDQAccum,     // backward: dQ accumulated in f32 (B, H, S, D), cast to dQ at the end
  kScale, kOne, kNegInf,  // f32 scalars passed by value
  kFirstVirtual = 100
};

std::string graph_name(const char* pass, int64_t B, int64_t S, int64_t H, int64_t Hkv, int64_t D,
                       bool causal) {
  return std::string(pass) + " (B " + std::to_string(B) + ", S " + std::to_string(S) + ", H " +
         std::to_string(H) + ", Hkv " + std::to_string(Hkv) + ", D " + std::to_string(D) +
         (causal ? ", causal)" : ")");
}

// Forward: O and stats from Q, K, V.
CudnnPlan build_forward(cudnnHandle_t handle, int64_t B, int64_t S, int64_t H, int64_t Hkv,
                        int64_t D, bool causal, cudnnDataType_t io) {
  CudnnGraph g(graph_name("forward", B, S, H, Hkv, D, causal), kFirstVirtual);
  const CudnnTensor& q = g.tensor(kQ, "Q", heads_view(B, S, H, D), io);
  const CudnnTensor& kt = g.tensor(kK, "K^T", transposed(heads_view(B, S, Hkv, D)), io);
  const CudnnTensor& v = g.tensor(kV, "V", heads_view(B, S, Hkv, D), io);
  const CudnnTensor& o = g.tensor(kO, "O", heads_view(B, S, H, D), io);
  const CudnnTensor& stats = g.tensor(kStats, "stats", packed({B, H, S, 1}), CUDNN_DATA_FLOAT);
  const CudnnTensor& scale = g.scalar(kScale, "scale");

  const CudnnTensor& scores = g.matmul(q, kt, packed({B, H, S, S}), "Q K^T");
  const CudnnTensor* s = &g.pointwise(CUDNN_POINTWISE_MUL, scores, &scale, "scale scores");
  if (causal) s = &g.causal_mask(*s, g.scalar(kNegInf, "-inf"));
  const CudnnTensor& max = g.row_reduction(CUDNN_REDUCE_TENSOR_MAX, *s, "row max");
  const CudnnTensor& shifted = g.pointwise(CUDNN_POINTWISE_SUB, *s, &max, "scores - max");
  const CudnnTensor& e = g.pointwise(CUDNN_POINTWISE_EXP, shifted, nullptr, "exp");
  const CudnnTensor& sum = g.row_reduction(CUDNN_REDUCE_TENSOR_ADD, e, "row sum");
  const CudnnTensor& log_sum = g.pointwise(CUDNN_POINTWISE_LOG, sum, nullptr, "log sum");
  g.pointwise(CUDNN_POINTWISE_ADD, max, &log_sum, stats, "stats = max + log sum");
  // The probabilities enter the second matmul in the input dtype, as cuDNN's pattern requires.
  const CudnnTensor& p = g.pointwise(CUDNN_POINTWISE_DIV, e, &sum, "softmax", io);
  g.matmul(p, v, o, "P V");
  return g.build(handle);
}

// Backward: dQ, dK, dV from Q, K, V, O, dO and stats.
CudnnPlan build_backward(cudnnHandle_t handle, int64_t B, int64_t S, int64_t H, int64_t Hkv,
                         int64_t D, bool causal, cudnnDataType_t io) {
  CudnnGraph g(graph_name("backward", B, S, H, Hkv, D, causal), kFirstVirtual);
  const CudnnLayout q_layout = heads_view(B, S, H, D), kv_layout = heads_view(B, S, Hkv, D);
  const CudnnTensor& q = g.tensor(kQ, "Q", q_layout, io);
  const CudnnTensor& kt = g.tensor(kK, "K^T", transposed(kv_layout), io);
  const CudnnTensor& vt = g.tensor(kV, "V^T", transposed(kv_layout), io);
  const CudnnTensor& o = g.tensor(kO, "O", q_layout, io);
  const CudnnTensor& dout = g.tensor(kDO, "dO", q_layout, io);
  const CudnnTensor& stats = g.tensor(kStats, "stats", packed({B, H, S, 1}), CUDNN_DATA_FLOAT);
  const CudnnTensor& dq = g.tensor(kDQ, "dQ", q_layout, io);
  const CudnnTensor& dk = g.tensor(kDK, "dK", kv_layout, io);
  const CudnnTensor& dv = g.tensor(kDV, "dV", kv_layout, io);
  const CudnnTensor& softmax_sum =
      g.tensor(kSoftmaxSum, "rowsum(dO O)", packed({B, H, S, 1}), CUDNN_DATA_FLOAT);
  const CudnnTensor& dq_accum = g.tensor(kDQAccum, "dQ f32", packed({B, H, S, D}), CUDNN_DATA_FLOAT);
  const CudnnTensor& scale = g.scalar(kScale, "scale");
  const CudnnTensor& one = g.scalar(kOne, "1");

  // rowsum(dO * O): the softmax backward's per-row term. The multiply by 1 stands where the
  // pattern has its dropout scale.
  const CudnnTensor& d_o = g.pointwise(CUDNN_POINTWISE_MUL, dout, &o, "dO * O");
  const CudnnTensor& rowdot = g.row_reduction(CUDNN_REDUCE_TENSOR_ADD, d_o, "rowsum(dO * O)");
  g.pointwise(CUDNN_POINTWISE_MUL, rowdot, &one, softmax_sum, "rowsum * 1");

  // P recomputed from the stats.
  const CudnnTensor& scores = g.matmul(q, kt, packed({B, H, S, S}), "Q K^T");
  const CudnnTensor& scaled = g.pointwise(CUDNN_POINTWISE_MUL, scores, &scale, "scale scores");
  const CudnnTensor* s = &g.pointwise(CUDNN_POINTWISE_SUB, scaled, &stats, "scores - stats");
  if (causal) s = &g.causal_mask(*s, g.scalar(kNegInf, "-inf"));
  const CudnnTensor& p = g.pointwise(CUDNN_POINTWISE_EXP, *s, nullptr, "P");

  // dK or dV = X^T Y per query head; with GQA summed over the heads of each kv group.
  const CudnnLayout square_t = transposed(packed({B, H, S, S}));
  auto per_kv_head = [&](const CudnnTensor& x, const CudnnTensor& y, const CudnnTensor& grad,
                         const char* name) {
    const CudnnTensor& xt = g.reshape(x, square_t, io, name);
    if (H == Hkv) {
      g.matmul(xt, y, grad, name);
    } else {
      const CudnnTensor& full = g.virtual_tensor(packed({B, H, S, D}), io);
      g.matmul(xt, y, full, name);
      g.reduction(CUDNN_REDUCE_TENSOR_ADD, full, grad, "sum over the kv group");
    }
  };
  per_kv_head(p, dout, dv, "P^T dO");

  // dS = scale * P * (dO V^T - rowsum(dO * O)).
  const CudnnTensor& dp = g.matmul(dout, vt, packed({B, H, S, S}), "dO V^T");
  const CudnnTensor& centered = g.pointwise(CUDNN_POINTWISE_SUB, dp, &softmax_sum, "dP - rowsum");
  const CudnnTensor& dsp = g.pointwise(CUDNN_POINTWISE_MUL, centered, &p, "P * (dP - rowsum)");
  const CudnnTensor& ds = g.pointwise(CUDNN_POINTWISE_MUL, dsp, &scale, "dS");
  per_kv_head(ds, q, dk, "dS^T Q");

  // dQ = dS K, accumulated in f32, then cast to the input dtype.
  const CudnnTensor& k = g.reshape(kt, kv_layout, io, "K");
  g.matmul(ds, k, dq_accum, "dS K");
  g.pointwise(CUDNN_POINTWISE_IDENTITY, dq_accum, nullptr, dq, "dQ cast");
  return g.build(handle);
}

void* bind(const Tensor& t) {
  void* p = const_cast<void*>(t.data_ptr());
  LLM_CHECK(reinterpret_cast<uintptr_t>(p) % 16 == 0,
            "cudnn_attention needs 16-byte aligned tensors, got " + t.str());
  return p;
}

}  // namespace

CudnnAttention::CudnnAttention(cudaStream_t stream) {
  // Before 9.6 the backward engines expect the f32 dQ accumulator zeroed by the caller; we hand
  // them uninitialised memory, so an older runtime is refused rather than giving wrong dQ.
  const size_t version = cudnnGetVersion();
  LLM_CHECK(version >= 90600, "sdp_attention needs cuDNN 9.6 or newer at run time; found " +
                                  std::to_string(version / 10000) + "." +
                                  std::to_string(version / 100 % 100) +
                                  " (set CUDNN_ROOT or LD_LIBRARY_PATH to a newer libcudnn)");
  cudnn_check(cudnnCreate(&handle_), "creating the handle");
  cudnn_check(cudnnSetStream(handle_, stream), "setting the stream");
}

// The plans go first (they were built on the handle); errors are dropped, as in CudaBackend's.
CudnnAttention::~CudnnAttention() {
  plans_.clear();
  if (handle_) cudnnDestroy(handle_);
}

const CudnnAttention::Plan& CudnnAttention::plan_for(const ShapeKey& key) {
  auto found = plans_.find(key);
  if (found != plans_.end()) return *found->second;
  const auto [B, S, H, Hkv, D, causal, dtype, pass] = key;
  (void)dtype;  // bf16 is the one dtype; it is in the key so another one gets its own plans
  CudnnPlan built = pass == 0
                        ? build_forward(handle_, B, S, H, Hkv, D, causal, CUDNN_DATA_BFLOAT16)
                        : build_backward(handle_, B, S, H, Hkv, D, causal, CUDNN_DATA_BFLOAT16);
  auto plan = std::unique_ptr<Plan>(new Plan{std::move(built)});
  plan->scale = 1.0f / std::sqrt(static_cast<float>(D));
  return *plans_.emplace(key, std::move(plan)).first->second;
}

void CudnnAttention::execute(const Plan& plan, Device device,
                             const std::map<int64_t, void*>& bound) {
  std::vector<int64_t> uids;
  std::vector<void*> pointers;
  for (const auto& [uid, pointer] : bound) uids.push_back(uid), pointers.push_back(pointer);
  // By-value scalars: host pointers, read when the plan runs. Only those the graph declares are
  // bound, as the cudnn-frontend does (a forward has no 1, a non-causal graph no -inf).
  for (int64_t uid : plan.built.by_value_uids) {
    LLM_CHECK(uid == kScale || uid == kOne || uid == kNegInf,
              "cudnn_attention: no host value for scalar uid " + std::to_string(uid));
    const float* value = uid == kScale ? &plan.scale : uid == kOne ? &plan.one : &plan.neg_inf;
    uids.push_back(uid), pointers.push_back(const_cast<float*>(value));
  }
  // Freed when this returns: the caching allocator hands the block out again only to later work
  // on the same stream, so cuDNN's kernels are done with it by then.
  Tensor workspace = Tensor::empty({std::max<int64_t>(1, (plan.built.workspace_bytes + 3) / 4)},
                                   DType::f32, device);
  void* workspace_ptr = workspace.data_ptr();
  CudnnDescriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, "variant pack");
  pack.set(CUDNN_ATTR(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS), uids)
      .set(CUDNN_ATTR(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS), CUDNN_TYPE_VOID_PTR,
           int64_t(pointers.size()), pointers.data())
      .set(CUDNN_ATTR(CUDNN_ATTR_VARIANT_PACK_WORKSPACE), CUDNN_TYPE_VOID_PTR, 1, &workspace_ptr)
      .finalize();
  cudnn_check(cudnnBackendExecute(handle_, plan.built.plan.get(), pack.get()),
              "running the " + plan.built.plan.what());
  op_split::mark("cudnn_attention");
}

void CudnnAttention::forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                             Tensor& out, Tensor& lse) {
  const ShapeKey key{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), causal,
                     int64_t(q.dtype()), 0};
  execute(plan_for(key), q.device(),
          {{kQ, bind(q)}, {kK, bind(k)}, {kV, bind(v)}, {kO, bind(out)}, {kStats, bind(lse)}});
}

void CudnnAttention::backward(const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& out, const Tensor& lse, const Tensor& dout,
                              bool causal, Tensor& dq, Tensor& dk, Tensor& dv) {
  const int64_t B = q.size(0), S = q.size(1), H = q.size(2), D = q.size(3);
  // cuDNN's own frontend refuses the bf16 backward on 9.10.0 and 9.10.1 (known bugs), and up to
  // 9.15.0 adds a padding mask of the full length when S is not a multiple of 128 (a backend issue
  // that this graph, without one, would meet): refused here rather than a wrong gradient.
  const size_t version = cudnnGetVersion();
  LLM_CHECK(version != 91000 && version != 91001,
            "sdp_attention's backward: cuDNN 9.10.0 and 9.10.1 have known bf16 backward bugs; use 9.10.2 or "
            "newer, or flash_attention");
  LLM_CHECK(version > 91500 || S % 128 == 0,
            "sdp_attention's backward with cuDNN " + std::to_string(version / 10000) + "." +
                std::to_string(version / 100 % 100) + " needs a sequence length that is a multiple of 128 (got " +
                std::to_string(S) + "; cuDNN 9.16 or newer takes any): set sequence_len to a multiple of 128 with "
                "pad_to_sequence_len, or use flash_attention");
  const ShapeKey key{B, S, H, k.size(2), D, causal, int64_t(q.dtype()), 1};
  const Plan& plan = plan_for(key);
  Tensor softmax_sum = Tensor::empty({B, H, S}, DType::f32, q.device());
  Tensor dq_accum = Tensor::empty({B, H, S, D}, DType::f32, q.device());
  execute(plan, q.device(),
          {{kQ, bind(q)}, {kK, bind(k)}, {kV, bind(v)}, {kO, bind(out)}, {kStats, bind(lse)},
           {kDO, bind(dout)}, {kDQ, bind(dq)}, {kDK, bind(dk)}, {kDV, bind(dv)},
           {kSoftmaxSum, bind(softmax_sum)}, {kDQAccum, bind(dq_accum)}});
}

namespace {
// bf16 on sm_80+ with head_dim a multiple of 8 (cuDNN's 16-byte rows); names what runs the rest.
void check_cudnn_inputs(const char* op, bool sm80, const Tensor& q, const Tensor& k,
                        const Tensor& v) {
  LLM_CHECK(sm80, std::string(op) + ": cuDNN's fused attention needs compute capability 8.0 or "
                                    "newer; flash_attention runs here");
  LLM_CHECK(q.dtype() == DType::bf16 && k.dtype() == DType::bf16 && v.dtype() == DType::bf16,
            std::string(op) + " on CUDA takes bf16 (train with bf16: true or auto); got " +
                q.str() + ": flash_attention runs f32");
  LLM_CHECK(q.dim() == 4 && k.dim() == 4 && q.size(3) % 8 == 0 && k.size(2) > 0 &&
                q.size(2) % k.size(2) == 0,
            std::string(op) + " needs head_dim a multiple of 8 and heads a multiple of kv heads; "
                              "got q " + q.str() + ", k " + k.str());
}
}  // namespace

CudnnAttention& CudaBackend::cudnn() {
  if (!cudnn_) cudnn_ = std::make_unique<CudnnAttention>(stream_);
  return *cudnn_;
}

void CudaBackend::cudnn_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                          const AttentionMask& mask, Tensor& out, Tensor& lse) {
  activate();
  require_cudnn_mask(mask);
  check_cudnn_inputs("cudnn_attention", fast_bf16_, q, k, v);
  if (q.numel() == 0) return;
  cudnn().forward(q, k, v, mask.causal, out, lse);
}

void CudaBackend::cudnn_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const Tensor& out, const Tensor& lse,
                                           const Tensor& dout, const AttentionMask& mask,
                                           Tensor& dq, Tensor& dk, Tensor& dv) {
  activate();
  require_cudnn_mask(mask);
  check_cudnn_inputs("cudnn_attention_backward", fast_bf16_, q, k, v);
  if (q.numel() == 0) return;
  cudnn().backward(q, k, v, out, lse, dout, mask.causal, dq, dk, dv);
}

}  // namespace llm
