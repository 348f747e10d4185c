// defines: a small builder over the cuDNN backend (graph) API — owned descriptors that name
// themselves in errors, 4-d tensor layouts, and CudnnGraph, which collects matmul, pointwise,
// reduction and reshape operations and turns them into an execution plan. cudnn_attention.cpp
// spells cuDNN's fused attention with it.
#pragma once
#include <cudnn.h>

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace llm {

// Throws "cuDNN attention: <what> failed: <status and cuDNN's last error>" unless success.
void cudnn_check(cudnnStatus_t status, const std::string& what);
std::string cudnn_describe(cudnnStatus_t status);

// An attribute and its enum name, so a failed set names what it was setting.
#define CUDNN_ATTR(name) name, #name

// One backend descriptor, destroyed with its owner; `what` names it in every error.
class CudnnDescriptor {
 public:
  CudnnDescriptor(cudnnBackendDescriptorType_t type, std::string what) : what_(std::move(what)) {
    cudnn_check(cudnnBackendCreateDescriptor(type, &desc_), "creating " + what_);
  }
  ~CudnnDescriptor() {
    if (desc_) cudnnBackendDestroyDescriptor(desc_);
  }
  CudnnDescriptor(CudnnDescriptor&& other) noexcept
      : desc_(std::exchange(other.desc_, nullptr)), what_(std::move(other.what_)) {}
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(CudnnDescriptor&&) = delete;

  cudnnBackendDescriptor_t get() const { return desc_; }
  const std::string& what() const { return what_; }

  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, const char* attr_name,
                       cudnnBackendAttributeType_t type, int64_t count, const void* values) {
    cudnn_check(cudnnBackendSetAttribute(desc_, attr, type, count, values),
                what_ + ": setting " + attr_name);
    return *this;
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, const char* name, int64_t value) {
    return set(attr, name, CUDNN_TYPE_INT64, 1, &value);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, const char* name,
                       const std::vector<int64_t>& values) {
    return set(attr, name, CUDNN_TYPE_INT64, int64_t(values.size()), values.data());
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, const char* name, bool value) {
    return set(attr, name, CUDNN_TYPE_BOOLEAN, 1, &value);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, const char* name, cudnnDataType_t value) {
    return set(attr, name, CUDNN_TYPE_DATA_TYPE, 1, &value);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, const char* name,
                       cudnnPointwiseMode_t value) {
    return set(attr, name, CUDNN_TYPE_POINTWISE_MODE, 1, &value);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, const char* name,
                       cudnnReduceTensorOp_t value) {
    return set(attr, name, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &value);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, const char* name, cudnnHandle_t value) {
    return set(attr, name, CUDNN_TYPE_HANDLE, 1, &value);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, const char* name,
                       const CudnnDescriptor& value) {
    cudnnBackendDescriptor_t d = value.get();
    return set(attr, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &d);
  }
  CudnnDescriptor& finalize() {
    cudnn_check(cudnnBackendFinalize(desc_), "finalizing " + what_);
    return *this;
  }

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
  std::string what_;
};

// A 4-d tensor's dims and strides, in elements.
struct CudnnLayout {
  std::vector<int64_t> dims, strides;
};
CudnnLayout packed(std::vector<int64_t> dims);  // row-major
// Our (B, S, heads, D) memory as (b, h, s, d); transposed swaps s and d (K^T, V^T) in place.
CudnnLayout heads_view(int64_t B, int64_t S, int64_t heads, int64_t D);
CudnnLayout transposed(CudnnLayout l);

struct CudnnTensor {
  CudnnDescriptor desc;
  CudnnLayout layout;
};

// An execution plan and the workspace it needs.
struct CudnnPlan {
  CudnnDescriptor plan;
  int64_t workspace_bytes = 0;
  // The by-value scalars the graph declares: exactly these are bound at execution.
  std::vector<int64_t> by_value_uids;
};

// The tensors and operations of one graph, kept alive until its plan is built. Every operation
// computes in f32; intermediates (virtual tensors, which never leave the fused kernel) are f32
// unless a type is given.
class CudnnGraph {
 public:
  // Virtual tensors get uids from first_virtual_uid on; `what` names the graph in errors.
  CudnnGraph(std::string what, int64_t first_virtual_uid)
      : what_(std::move(what)), next_virtual_(first_virtual_uid) {}

  // A tensor the caller binds by uid: device memory, or a host f32 scalar passed by value.
  const CudnnTensor& tensor(int64_t uid, const char* name, CudnnLayout layout, cudnnDataType_t type,
                            bool by_value = false);
  const CudnnTensor& scalar(int64_t uid, const char* name);
  const CudnnTensor& virtual_tensor(CudnnLayout layout, cudnnDataType_t type = CUDNN_DATA_FLOAT);

  void matmul(const CudnnTensor& a, const CudnnTensor& b, const CudnnTensor& c, const char* name);
  // A matmul into a new f32 intermediate of `layout`.
  const CudnnTensor& matmul(const CudnnTensor& a, const CudnnTensor& b, CudnnLayout layout,
                            const char* name);
  // y = mode(x, b, t): b is the second operand (broadcast when smaller), t the selector of
  // BINARY_SELECT. GEN_INDEX reads x's shape only and numbers `axis`.
  void pointwise(cudnnPointwiseMode_t mode, const CudnnTensor& x, const CudnnTensor* b,
                 const CudnnTensor& y, const char* name, const CudnnTensor* t = nullptr,
                 cudnnDataType_t precision = CUDNN_DATA_FLOAT, int64_t axis = -1);
  // The same into a new intermediate shaped like x.
  const CudnnTensor& pointwise(cudnnPointwiseMode_t mode, const CudnnTensor& x,
                               const CudnnTensor* b, const char* name,
                               cudnnDataType_t type = CUDNN_DATA_FLOAT);
  // Sums (or maxes) x over the dims where y is smaller.
  void reduction(cudnnReduceTensorOp_t mode, const CudnnTensor& x, const CudnnTensor& y,
                 const char* name);
  // x (b, h, s, d) reduced over d into a new f32 intermediate (b, h, s, 1).
  const CudnnTensor& row_reduction(cudnnReduceTensorOp_t mode, const CudnnTensor& x,
                                   const char* name);
  // The same data seen through another layout (a transpose, for the backward's matmuls).
  const CudnnTensor& reshape(const CudnnTensor& x, CudnnLayout layout, cudnnDataType_t type,
                             const char* name);
  // Causal: keys after the query get -inf (row index >= column index is kept).
  const CudnnTensor& causal_mask(const CudnnTensor& scores, const CudnnTensor& neg_inf);

  // Finalizes the graph, asks cuDNN's heuristics (mode A) for engine configs and keeps the first
  // that finalizes as a plan; throws naming the graph when none does.
  CudnnPlan build(cudnnHandle_t handle);

 private:
  const CudnnTensor& make(int64_t uid, const char* name, CudnnLayout layout, cudnnDataType_t type,
                          bool is_virtual, bool by_value);
  CudnnDescriptor& part(cudnnBackendDescriptorType_t type, const char* name);
  CudnnDescriptor& op(cudnnBackendDescriptorType_t type, const char* name);

  std::string what_;
  int64_t next_virtual_;
  std::vector<int64_t> by_value_uids_;
  std::deque<CudnnTensor> tensors_;  // deques: references stay valid as they grow
  std::deque<CudnnDescriptor> parts_, ops_;
};

}  // namespace llm
