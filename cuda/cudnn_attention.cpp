// defines: CudnnAttention (cuda/cudnn_attention.h) and CudaBackend::cudnn_attention_forward/
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
#include "cuda/cudnn_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_backend.h"
#include "engine/check.h"

namespace llm {

namespace {

std::string describe(cudnnStatus_t status) {
  char detail[1024] = {};
  cudnnGetLastErrorString(detail, sizeof(detail));
  return std::string(cudnnGetErrorString(status)) + (detail[0] ? std::string(" (") + detail + ")" : "");
}

void check(cudnnStatus_t status, const std::string& what) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw std::runtime_error("cuDNN attention: " + what + " failed: " + describe(status));
}

// An attribute and its enum name, so a failed set names what it was setting.
#define ATTR(name) name, #name

// One backend descriptor, destroyed with its owner; `what` names it in every error.
class Descriptor {
 public:
  Descriptor(cudnnBackendDescriptorType_t type, std::string what) : what_(std::move(what)) {
    check(cudnnBackendCreateDescriptor(type, &desc_), "creating " + what_);
  }
  ~Descriptor() {
    if (desc_) cudnnBackendDestroyDescriptor(desc_);
  }
  Descriptor(Descriptor&& other) noexcept
      : desc_(std::exchange(other.desc_, nullptr)), what_(std::move(other.what_)) {}
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  Descriptor& operator=(Descriptor&&) = delete;

  cudnnBackendDescriptor_t get() const { return desc_; }
  const std::string& what() const { return what_; }

  Descriptor& set(cudnnBackendAttributeName_t attr, const char* attr_name,
                  cudnnBackendAttributeType_t type, int64_t count, const void* values) {
    check(cudnnBackendSetAttribute(desc_, attr, type, count, values),
          what_ + ": setting " + attr_name);
    return *this;
  }
  Descriptor& set(cudnnBackendAttributeName_t attr, const char* name, int64_t value) {
    return set(attr, name, CUDNN_TYPE_INT64, 1, &value);
  }
  Descriptor& set(cudnnBackendAttributeName_t attr, const char* name,
                  const std::vector<int64_t>& values) {
    return set(attr, name, CUDNN_TYPE_INT64, int64_t(values.size()), values.data());
  }
  Descriptor& set(cudnnBackendAttributeName_t attr, const char* name, bool value) {
    return set(attr, name, CUDNN_TYPE_BOOLEAN, 1, &value);
  }
  Descriptor& set(cudnnBackendAttributeName_t attr, const char* name, cudnnDataType_t value) {
    return set(attr, name, CUDNN_TYPE_DATA_TYPE, 1, &value);
  }
  Descriptor& set(cudnnBackendAttributeName_t attr, const char* name, cudnnPointwiseMode_t value) {
    return set(attr, name, CUDNN_TYPE_POINTWISE_MODE, 1, &value);
  }
  Descriptor& set(cudnnBackendAttributeName_t attr, const char* name, cudnnReduceTensorOp_t value) {
    return set(attr, name, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &value);
  }
  Descriptor& set(cudnnBackendAttributeName_t attr, const char* name, cudnnHandle_t value) {
    return set(attr, name, CUDNN_TYPE_HANDLE, 1, &value);
  }
  Descriptor& set(cudnnBackendAttributeName_t attr, const char* name, const Descriptor& value) {
    cudnnBackendDescriptor_t d = value.get();
    return set(attr, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &d);
  }
  Descriptor& finalize() {
    check(cudnnBackendFinalize(desc_), "finalizing " + what_);
    return *this;
  }

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
  std::string what_;
};

// Tensors the caller binds at execution; virtual tensors (intermediates that live inside the
// fused kernel) are numbered from kFirstVirtual.
enum Uid : int64_t {
  kQ = 1, kK, kV, kO, kStats, kDO, kDQ, kDK, kDV,
  kSoftmaxSum,  // backward: rowsum(dO * O), f32 (B, H, S)
  kDQAccum,     // backward: dQ accumulated in f32 (B, H, S, D), cast to dQ at the end
  kScale, kOne, kNegInf,  // f32 scalars passed by value
  kFirstVirtual = 100
};

struct Layout {
  std::vector<int64_t> dims, strides;
};

Layout packed(std::vector<int64_t> dims) {
  std::vector<int64_t> strides(dims.size(), 1);
  for (size_t i = dims.size() - 1; i > 0; i--) strides[i - 1] = strides[i] * dims[i];
  return {std::move(dims), std::move(strides)};
}

// Our (B, S, heads, D) memory as (b, h, s, d), and with s and d swapped (K^T, V^T).
Layout heads_view(int64_t B, int64_t S, int64_t heads, int64_t D) {
  return {{B, heads, S, D}, {S * heads * D, D, heads * D, 1}};
}
Layout transposed(Layout l) {
  std::swap(l.dims[2], l.dims[3]);
  std::swap(l.strides[2], l.strides[3]);
  return l;
}

struct TensorDesc {
  Descriptor desc;
  Layout layout;
};

}  // namespace

struct CudnnAttention::Plan {
  Descriptor plan;
  int64_t workspace_bytes = 0;
  // Host values of the by-value scalars: the pointers handed to cuDNN must outlive each run.
  float scale = 1.0f, one = 1.0f, neg_inf = -std::numeric_limits<float>::infinity();
};

namespace {

// The tensors and operations of one graph, kept alive until its plan is built.
class Graph {
 public:
  explicit Graph(std::string what) : what_(std::move(what)) {}

  // A tensor the caller binds by uid: device memory, or a host f32 scalar passed by value.
  const TensorDesc& tensor(int64_t uid, const char* name, Layout layout, cudnnDataType_t type,
                           bool by_value = false) {
    return make(uid, name, std::move(layout), type, false, by_value);
  }
  const TensorDesc& scalar(int64_t uid, const char* name) {
    return tensor(uid, name, packed({1, 1, 1, 1}), CUDNN_DATA_FLOAT, true);
  }
  // An intermediate that never leaves the fused kernel.
  const TensorDesc& virtual_tensor(Layout layout, cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    return make(next_virtual_++, "intermediate", std::move(layout), type, true, false);
  }

  void matmul(const TensorDesc& a, const TensorDesc& b, const TensorDesc& c, const char* name) {
    Descriptor& mm = part(CUDNN_BACKEND_MATMUL_DESCRIPTOR, name);
    mm.set(ATTR(CUDNN_ATTR_MATMUL_COMP_TYPE), CUDNN_DATA_FLOAT).finalize();
    op(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, name)
        .set(ATTR(CUDNN_ATTR_OPERATION_MATMUL_ADESC), a.desc)
        .set(ATTR(CUDNN_ATTR_OPERATION_MATMUL_BDESC), b.desc)
        .set(ATTR(CUDNN_ATTR_OPERATION_MATMUL_CDESC), c.desc)
        .set(ATTR(CUDNN_ATTR_OPERATION_MATMUL_DESC), mm)
        .finalize();
  }
  // A matmul into a new f32 intermediate of `layout`.
  const TensorDesc& matmul(const TensorDesc& a, const TensorDesc& b, Layout layout,
                           const char* name) {
    const TensorDesc& c = virtual_tensor(std::move(layout));
    matmul(a, b, c, name);
    return c;
  }

  // y = mode(x, b, t): b is the second operand (broadcast when smaller), t the selector of
  // BINARY_SELECT. GEN_INDEX reads x's shape only and numbers `axis`.
  void pointwise(cudnnPointwiseMode_t mode, const TensorDesc& x, const TensorDesc* b,
                 const TensorDesc& y, const char* name, const TensorDesc* t = nullptr,
                 cudnnDataType_t precision = CUDNN_DATA_FLOAT, int64_t axis = -1) {
    Descriptor& pw = part(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, name);
    pw.set(ATTR(CUDNN_ATTR_POINTWISE_MODE), mode).set(ATTR(CUDNN_ATTR_POINTWISE_MATH_PREC), precision);
    if (axis >= 0) pw.set(ATTR(CUDNN_ATTR_POINTWISE_AXIS), axis);
    pw.finalize();
    Descriptor& o = op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, name);
    o.set(ATTR(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR), pw)
        .set(ATTR(CUDNN_ATTR_OPERATION_POINTWISE_XDESC), x.desc)
        .set(ATTR(CUDNN_ATTR_OPERATION_POINTWISE_YDESC), y.desc);
    if (b) o.set(ATTR(CUDNN_ATTR_OPERATION_POINTWISE_BDESC), b->desc);
    if (t) o.set(ATTR(CUDNN_ATTR_OPERATION_POINTWISE_TDESC), t->desc);
    o.finalize();
  }
  // The same into a new intermediate shaped like x.
  const TensorDesc& pointwise(cudnnPointwiseMode_t mode, const TensorDesc& x,
                              const TensorDesc* b, const char* name,
                              cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    const TensorDesc& y = virtual_tensor(packed(x.layout.dims), type);
    pointwise(mode, x, b, y, name);
    return y;
  }

  // Sums (or maxes) x over the dims where y is smaller.
  void reduction(cudnnReduceTensorOp_t mode, const TensorDesc& x, const TensorDesc& y,
                 const char* name) {
    Descriptor& red = part(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, name);
    red.set(ATTR(CUDNN_ATTR_REDUCTION_OPERATOR), mode)
        .set(ATTR(CUDNN_ATTR_REDUCTION_COMP_TYPE), CUDNN_DATA_FLOAT)
        .finalize();
    op(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, name)
        .set(ATTR(CUDNN_ATTR_OPERATION_REDUCTION_XDESC), x.desc)
        .set(ATTR(CUDNN_ATTR_OPERATION_REDUCTION_YDESC), y.desc)
        .set(ATTR(CUDNN_ATTR_OPERATION_REDUCTION_DESC), red)
        .finalize();
  }
  // x (b, h, s, d) reduced over d into a new f32 intermediate (b, h, s, 1).
  const TensorDesc& row_reduction(cudnnReduceTensorOp_t mode, const TensorDesc& x,
                                  const char* name) {
    std::vector<int64_t> dims = x.layout.dims;
    dims[3] = 1;
    const TensorDesc& y = virtual_tensor(packed(dims));
    reduction(mode, x, y, name);
    return y;
  }

  // The same data seen through another layout (a transpose, for the backward's matmuls).
  const TensorDesc& reshape(const TensorDesc& x, Layout layout, cudnnDataType_t type,
                            const char* name) {
    const TensorDesc& y = virtual_tensor(std::move(layout), type);
    op(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, name)
        .set(ATTR(CUDNN_ATTR_OPERATION_RESHAPE_XDESC), x.desc)
        .set(ATTR(CUDNN_ATTR_OPERATION_RESHAPE_YDESC), y.desc)
        .finalize();
    return y;
  }

  // Causal: keys after the query get -inf (row index >= column index is kept).
  const TensorDesc& causal_mask(const TensorDesc& scores, const TensorDesc& neg_inf) {
    const Layout& l = scores.layout;
    const TensorDesc& row = virtual_tensor(packed(l.dims), CUDNN_DATA_INT32);
    pointwise(CUDNN_POINTWISE_GEN_INDEX, scores, nullptr, row, "causal row index", nullptr,
              CUDNN_DATA_INT32, 2);
    const TensorDesc& col = virtual_tensor(packed(l.dims), CUDNN_DATA_INT32);
    pointwise(CUDNN_POINTWISE_GEN_INDEX, scores, nullptr, col, "causal column index", nullptr,
              CUDNN_DATA_INT32, 3);
    const TensorDesc& keep = virtual_tensor(packed(l.dims), CUDNN_DATA_BOOLEAN);
    pointwise(CUDNN_POINTWISE_CMP_GE, row, &col, keep, "causal row >= column", nullptr,
              CUDNN_DATA_BOOLEAN);
    const TensorDesc& masked = virtual_tensor(packed(l.dims));
    pointwise(CUDNN_POINTWISE_BINARY_SELECT, scores, &neg_inf, masked, "causal select", &keep);
    return masked;
  }

  // Finalizes the graph, asks cuDNN's heuristics (mode A) for engine configs and keeps the first
  // that finalizes as a plan.
  std::unique_ptr<CudnnAttention::Plan> build(cudnnHandle_t handle) {
    std::vector<cudnnBackendDescriptor_t> raw_ops;
    for (const Descriptor& o : ops_) raw_ops.push_back(o.get());
    Descriptor graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, what_ + " graph");
    graph.set(ATTR(CUDNN_ATTR_OPERATIONGRAPH_OPS), CUDNN_TYPE_BACKEND_DESCRIPTOR,
              int64_t(raw_ops.size()), raw_ops.data())
        .set(ATTR(CUDNN_ATTR_OPERATIONGRAPH_HANDLE), handle)
        .finalize();
    Descriptor heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, what_ + " heuristics");
    const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    heuristics.set(ATTR(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH), graph)
        .set(ATTR(CUDNN_ATTR_ENGINEHEUR_MODE), CUDNN_TYPE_HEUR_MODE, 1, &mode)
        .finalize();
    int64_t count = 0;
    check(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr),
          what_ + ": counting engine configs");
    std::vector<Descriptor> configs;
    std::vector<cudnnBackendDescriptor_t> raw_configs;
    for (int64_t i = 0; i < count; i++) {
      configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, what_ + " engine config");
      raw_configs.push_back(configs.back().get());
    }
    if (count > 0)
      check(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &count,
                                     raw_configs.data()),
            what_ + ": reading engine configs");
    std::string last = "heuristics offered no engine config";
    for (int64_t i = 0; i < count; i++) {
      Descriptor plan(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, what_ + " execution plan");
      plan.set(ATTR(CUDNN_ATTR_EXECUTION_PLAN_HANDLE), handle)
          .set(ATTR(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG), configs[i]);
      // A config may not finalize for this shape or device; the next one is tried.
      const cudnnStatus_t status = cudnnBackendFinalize(plan.get());
      if (status != CUDNN_STATUS_SUCCESS) {
        last = describe(status);
        continue;
      }
      auto result = std::unique_ptr<CudnnAttention::Plan>(
          new CudnnAttention::Plan{std::move(plan), 0});
      int64_t n = 0;
      check(cudnnBackendGetAttribute(result->plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                     CUDNN_TYPE_INT64, 1, &n, &result->workspace_bytes),
            what_ + ": reading the workspace size");
      return result;
    }
    throw std::runtime_error("cuDNN attention: no engine runs " + what_ + " on this device (" +
                             std::to_string(count) + " engine configs tried; last: " + last + ")");
  }

 private:
  const TensorDesc& make(int64_t uid, const char* name, Layout layout, cudnnDataType_t type,
                         bool is_virtual, bool by_value) {
    Descriptor d(CUDNN_BACKEND_TENSOR_DESCRIPTOR, what_ + " tensor " + name);
    d.set(ATTR(CUDNN_ATTR_TENSOR_UNIQUE_ID), uid)
        .set(ATTR(CUDNN_ATTR_TENSOR_DATA_TYPE), type)
        .set(ATTR(CUDNN_ATTR_TENSOR_DIMENSIONS), layout.dims)
        .set(ATTR(CUDNN_ATTR_TENSOR_STRIDES), layout.strides)
        .set(ATTR(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT), int64_t(16))
        .set(ATTR(CUDNN_ATTR_TENSOR_IS_VIRTUAL), is_virtual)
        .set(ATTR(CUDNN_ATTR_TENSOR_IS_BY_VALUE), by_value)
        .finalize();
    tensors_.push_back({std::move(d), std::move(layout)});
    return tensors_.back();
  }
  Descriptor& part(cudnnBackendDescriptorType_t type, const char* name) {
    parts_.emplace_back(type, what_ + " " + name + " descriptor");
    return parts_.back();
  }
  Descriptor& op(cudnnBackendDescriptorType_t type, const char* name) {
    ops_.emplace_back(type, what_ + " " + name);
    return ops_.back();
  }

  std::string what_;
  int64_t next_virtual_ = kFirstVirtual;
  std::deque<TensorDesc> tensors_;  // deques: references stay valid as they grow
  std::deque<Descriptor> parts_, ops_;
};

// Forward: O and stats from Q, K, V.
std::unique_ptr<CudnnAttention::Plan> build_forward(cudnnHandle_t handle, int64_t B, int64_t S,
                                                    int64_t H, int64_t Hkv, int64_t D,
                                                    bool causal, cudnnDataType_t io) {
  Graph g("forward (B " + std::to_string(B) + ", S " + std::to_string(S) + ", H " +
          std::to_string(H) + ", Hkv " + std::to_string(Hkv) + ", D " + std::to_string(D) +
          (causal ? ", causal)" : ")"));
  const TensorDesc& q = g.tensor(kQ, "Q", heads_view(B, S, H, D), io);
  const TensorDesc& kt = g.tensor(kK, "K^T", transposed(heads_view(B, S, Hkv, D)), io);
  const TensorDesc& v = g.tensor(kV, "V", heads_view(B, S, Hkv, D), io);
  const TensorDesc& o = g.tensor(kO, "O", heads_view(B, S, H, D), io);
  const TensorDesc& stats = g.tensor(kStats, "stats", packed({B, H, S, 1}), CUDNN_DATA_FLOAT);
  const TensorDesc& scale = g.scalar(kScale, "scale");
  const TensorDesc& neg_inf = g.scalar(kNegInf, "-inf");

  const TensorDesc& scores = g.matmul(q, kt, packed({B, H, S, S}), "Q K^T");
  const TensorDesc* s = &g.pointwise(CUDNN_POINTWISE_MUL, scores, &scale, "scale scores");
  if (causal) s = &g.causal_mask(*s, neg_inf);
  const TensorDesc& max = g.row_reduction(CUDNN_REDUCE_TENSOR_MAX, *s, "row max");
  const TensorDesc& shifted = g.pointwise(CUDNN_POINTWISE_SUB, *s, &max, "scores - max");
  const TensorDesc& e = g.pointwise(CUDNN_POINTWISE_EXP, shifted, nullptr, "exp");
  const TensorDesc& sum = g.row_reduction(CUDNN_REDUCE_TENSOR_ADD, e, "row sum");
  const TensorDesc& log_sum = g.pointwise(CUDNN_POINTWISE_LOG, sum, nullptr, "log sum");
  g.pointwise(CUDNN_POINTWISE_ADD, max, &log_sum, stats, "stats = max + log sum");
  // The probabilities enter the second matmul in the input dtype, as cuDNN's pattern requires.
  const TensorDesc& p = g.pointwise(CUDNN_POINTWISE_DIV, e, &sum, "softmax", io);
  g.matmul(p, v, o, "P V");
  auto plan = g.build(handle);
  plan->scale = 1.0f / std::sqrt(static_cast<float>(D));
  return plan;
}

// Backward: dQ, dK, dV from Q, K, V, O, dO and stats.
std::unique_ptr<CudnnAttention::Plan> build_backward(cudnnHandle_t handle, int64_t B, int64_t S,
                                                     int64_t H, int64_t Hkv, int64_t D,
                                                     bool causal, cudnnDataType_t io) {
  Graph g("backward (B " + std::to_string(B) + ", S " + std::to_string(S) + ", H " +
          std::to_string(H) + ", Hkv " + std::to_string(Hkv) + ", D " + std::to_string(D) +
          (causal ? ", causal)" : ")"));
  const Layout q_layout = heads_view(B, S, H, D), kv_layout = heads_view(B, S, Hkv, D);
  const TensorDesc& q = g.tensor(kQ, "Q", q_layout, io);
  const TensorDesc& kt = g.tensor(kK, "K^T", transposed(kv_layout), io);
  const TensorDesc& vt = g.tensor(kV, "V^T", transposed(kv_layout), io);
  const TensorDesc& o = g.tensor(kO, "O", q_layout, io);
  const TensorDesc& dout = g.tensor(kDO, "dO", q_layout, io);
  const TensorDesc& stats = g.tensor(kStats, "stats", packed({B, H, S, 1}), CUDNN_DATA_FLOAT);
  const TensorDesc& dq = g.tensor(kDQ, "dQ", q_layout, io);
  const TensorDesc& dk = g.tensor(kDK, "dK", kv_layout, io);
  const TensorDesc& dv = g.tensor(kDV, "dV", kv_layout, io);
  const TensorDesc& softmax_sum =
      g.tensor(kSoftmaxSum, "rowsum(dO O)", packed({B, H, S, 1}), CUDNN_DATA_FLOAT);
  const TensorDesc& dq_accum = g.tensor(kDQAccum, "dQ f32", packed({B, H, S, D}), CUDNN_DATA_FLOAT);
  const TensorDesc& scale = g.scalar(kScale, "scale");
  const TensorDesc& one = g.scalar(kOne, "1");
  const TensorDesc& neg_inf = g.scalar(kNegInf, "-inf");

  // rowsum(dO * O): the softmax backward's per-row term. The multiply by 1 stands where the
  // pattern has its dropout scale.
  const TensorDesc& d_o = g.pointwise(CUDNN_POINTWISE_MUL, dout, &o, "dO * O");
  const TensorDesc& rowdot = g.row_reduction(CUDNN_REDUCE_TENSOR_ADD, d_o, "rowsum(dO * O)");
  g.pointwise(CUDNN_POINTWISE_MUL, rowdot, &one, softmax_sum, "rowsum * 1");

  // P recomputed from the stats.
  const TensorDesc& scores = g.matmul(q, kt, packed({B, H, S, S}), "Q K^T");
  const TensorDesc& scaled = g.pointwise(CUDNN_POINTWISE_MUL, scores, &scale, "scale scores");
  const TensorDesc* s = &g.pointwise(CUDNN_POINTWISE_SUB, scaled, &stats, "scores - stats");
  if (causal) s = &g.causal_mask(*s, neg_inf);
  const TensorDesc& p = g.pointwise(CUDNN_POINTWISE_EXP, *s, nullptr, "P");

  // dK or dV = X^T Y per query head; with GQA summed over the heads of each kv group.
  const Layout square_t = transposed(packed({B, H, S, S}));
  auto per_kv_head = [&](const TensorDesc& x, const TensorDesc& y, const TensorDesc& grad,
                         const char* name) {
    const TensorDesc& xt = g.reshape(x, square_t, io, name);
    if (H == Hkv) {
      g.matmul(xt, y, grad, name);
    } else {
      const TensorDesc& full = g.virtual_tensor(packed({B, H, S, D}), io);
      g.matmul(xt, y, full, name);
      g.reduction(CUDNN_REDUCE_TENSOR_ADD, full, grad, "sum over the kv group");
    }
  };
  per_kv_head(p, dout, dv, "P^T dO");

  // dS = scale * P * (dO V^T - rowsum(dO * O)).
  const TensorDesc& dp = g.matmul(dout, vt, packed({B, H, S, S}), "dO V^T");
  const TensorDesc& centered = g.pointwise(CUDNN_POINTWISE_SUB, dp, &softmax_sum, "dP - rowsum");
  const TensorDesc& dsp = g.pointwise(CUDNN_POINTWISE_MUL, centered, &p, "P * (dP - rowsum)");
  const TensorDesc& ds = g.pointwise(CUDNN_POINTWISE_MUL, dsp, &scale, "dS");
  per_kv_head(ds, q, dk, "dS^T Q");

  // dQ = dS K, accumulated in f32, then cast to the input dtype.
  const TensorDesc& k = g.reshape(kt, kv_layout, io, "K");
  g.matmul(ds, k, dq_accum, "dS K");
  g.pointwise(CUDNN_POINTWISE_IDENTITY, dq_accum, nullptr, dq, "dQ cast");
  auto plan = g.build(handle);
  plan->scale = 1.0f / std::sqrt(static_cast<float>(D));
  return plan;
}

void* bind(const Tensor& t) {
  void* p = const_cast<void*>(t.data_ptr());
  LLM_CHECK(reinterpret_cast<uintptr_t>(p) % 16 == 0,
            "cudnn_attention needs 16-byte aligned tensors, got " + t.str());
  return p;
}

}  // namespace

CudnnAttention::CudnnAttention(cudaStream_t stream) {
  check(cudnnCreate(&handle_), "creating the handle");
  check(cudnnSetStream(handle_, stream), "setting the stream");
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
  auto plan = pass == 0 ? build_forward(handle_, B, S, H, Hkv, D, causal, CUDNN_DATA_BFLOAT16)
                        : build_backward(handle_, B, S, H, Hkv, D, causal, CUDNN_DATA_BFLOAT16);
  return *plans_.emplace(key, std::move(plan)).first->second;
}

void CudnnAttention::execute(const Plan& plan, Device device,
                             const std::map<int64_t, void*>& bound) {
  std::vector<int64_t> uids;
  std::vector<void*> pointers;
  for (const auto& [uid, pointer] : bound) uids.push_back(uid), pointers.push_back(pointer);
  // By-value scalars: host pointers, read when the plan runs.
  for (auto [uid, value] : {std::pair{kScale, &plan.scale}, std::pair{kOne, &plan.one},
                            std::pair{kNegInf, &plan.neg_inf}})
    uids.push_back(uid), pointers.push_back(const_cast<float*>(value));
  // Freed when this returns: the caching allocator hands the block out again only to later work
  // on the same stream, so cuDNN's kernels are done with it by then.
  Tensor workspace = Tensor::empty({std::max<int64_t>(1, (plan.workspace_bytes + 3) / 4)},
                                   DType::f32, device);
  void* workspace_ptr = workspace.data_ptr();
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, "variant pack");
  pack.set(ATTR(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS), uids)
      .set(ATTR(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS), CUDNN_TYPE_VOID_PTR,
           int64_t(pointers.size()), pointers.data())
      .set(ATTR(CUDNN_ATTR_VARIANT_PACK_WORKSPACE), CUDNN_TYPE_VOID_PTR, 1, &workspace_ptr)
      .finalize();
  check(cudnnBackendExecute(handle_, plan.plan.get(), pack.get()), "running the " + plan.plan.what());
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
