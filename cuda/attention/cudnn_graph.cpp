// defines: CudnnGraph and the layout helpers of cuda/attention/cudnn_graph.h
#include "cuda/attention/cudnn_graph.h"

#include <stdexcept>

namespace llm {

std::string cudnn_describe(cudnnStatus_t status) {
  char detail[1024] = {};
  cudnnGetLastErrorString(detail, sizeof(detail));
  return std::string(cudnnGetErrorString(status)) +
         (detail[0] ? std::string(" (") + detail + ")" : "");
}

void cudnn_check(cudnnStatus_t status, const std::string& what) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw std::runtime_error("cuDNN attention: " + what + " failed: " + cudnn_describe(status));
}

CudnnLayout packed(std::vector<int64_t> dims) {
  std::vector<int64_t> strides(dims.size(), 1);
  for (size_t i = dims.size() - 1; i > 0; i--) strides[i - 1] = strides[i] * dims[i];
  return {std::move(dims), std::move(strides)};
}

CudnnLayout heads_view(int64_t B, int64_t S, int64_t heads, int64_t D) {
  return {{B, heads, S, D}, {S * heads * D, D, heads * D, 1}};
}

CudnnLayout transposed(CudnnLayout l) {
  std::swap(l.dims[2], l.dims[3]);
  std::swap(l.strides[2], l.strides[3]);
  return l;
}

const CudnnTensor& CudnnGraph::tensor(int64_t uid, const char* name, CudnnLayout layout,
                                      cudnnDataType_t type, bool by_value) {
  return make(uid, name, std::move(layout), type, false, by_value);
}

const CudnnTensor& CudnnGraph::scalar(int64_t uid, const char* name) {
  return tensor(uid, name, packed({1, 1, 1, 1}), CUDNN_DATA_FLOAT, true);
}

const CudnnTensor& CudnnGraph::virtual_tensor(CudnnLayout layout, cudnnDataType_t type) {
  return make(next_virtual_++, "intermediate", std::move(layout), type, true, false);
}

void CudnnGraph::matmul(const CudnnTensor& a, const CudnnTensor& b, const CudnnTensor& c,
                        const char* name) {
  CudnnDescriptor& mm = part(CUDNN_BACKEND_MATMUL_DESCRIPTOR, name);
  mm.set(CUDNN_ATTR(CUDNN_ATTR_MATMUL_COMP_TYPE), CUDNN_DATA_FLOAT).finalize();
  op(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, name)
      .set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_MATMUL_ADESC), a.desc)
      .set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_MATMUL_BDESC), b.desc)
      .set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_MATMUL_CDESC), c.desc)
      .set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_MATMUL_DESC), mm)
      .finalize();
}

const CudnnTensor& CudnnGraph::matmul(const CudnnTensor& a, const CudnnTensor& b,
                                      CudnnLayout layout, const char* name) {
  const CudnnTensor& c = virtual_tensor(std::move(layout));
  matmul(a, b, c, name);
  return c;
}

void CudnnGraph::pointwise(cudnnPointwiseMode_t mode, const CudnnTensor& x, const CudnnTensor* b,
                           const CudnnTensor& y, const char* name, const CudnnTensor* t,
                           cudnnDataType_t precision, int64_t axis) {
  CudnnDescriptor& pw = part(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, name);
  pw.set(CUDNN_ATTR(CUDNN_ATTR_POINTWISE_MODE), mode)
      .set(CUDNN_ATTR(CUDNN_ATTR_POINTWISE_MATH_PREC), precision);
  if (axis >= 0) pw.set(CUDNN_ATTR(CUDNN_ATTR_POINTWISE_AXIS), axis);
  pw.finalize();
  CudnnDescriptor& o = op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, name);
  o.set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR), pw)
      .set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_POINTWISE_XDESC), x.desc)
      .set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_POINTWISE_YDESC), y.desc);
  if (b) o.set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_POINTWISE_BDESC), b->desc);
  if (t) o.set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_POINTWISE_TDESC), t->desc);
  o.finalize();
}

const CudnnTensor& CudnnGraph::pointwise(cudnnPointwiseMode_t mode, const CudnnTensor& x,
                                         const CudnnTensor* b, const char* name,
                                         cudnnDataType_t type) {
  const CudnnTensor& y = virtual_tensor(packed(x.layout.dims), type);
  pointwise(mode, x, b, y, name);
  return y;
}

void CudnnGraph::reduction(cudnnReduceTensorOp_t mode, const CudnnTensor& x, const CudnnTensor& y,
                           const char* name) {
  CudnnDescriptor& red = part(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, name);
  red.set(CUDNN_ATTR(CUDNN_ATTR_REDUCTION_OPERATOR), mode)
      .set(CUDNN_ATTR(CUDNN_ATTR_REDUCTION_COMP_TYPE), CUDNN_DATA_FLOAT)
      .finalize();
  op(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, name)
      .set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_REDUCTION_XDESC), x.desc)
      .set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_REDUCTION_YDESC), y.desc)
      .set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_REDUCTION_DESC), red)
      .finalize();
}

const CudnnTensor& CudnnGraph::row_reduction(cudnnReduceTensorOp_t mode, const CudnnTensor& x,
                                             const char* name) {
  std::vector<int64_t> dims = x.layout.dims;
  dims[3] = 1;
  const CudnnTensor& y = virtual_tensor(packed(dims));
  reduction(mode, x, y, name);
  return y;
}

const CudnnTensor& CudnnGraph::reshape(const CudnnTensor& x, CudnnLayout layout,
                                       cudnnDataType_t type, const char* name) {
  const CudnnTensor& y = virtual_tensor(std::move(layout), type);
  op(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, name)
      .set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_RESHAPE_XDESC), x.desc)
      .set(CUDNN_ATTR(CUDNN_ATTR_OPERATION_RESHAPE_YDESC), y.desc)
      .finalize();
  return y;
}

const CudnnTensor& CudnnGraph::causal_mask(const CudnnTensor& scores, const CudnnTensor& neg_inf) {
  const CudnnLayout& l = scores.layout;
  const CudnnTensor& row = virtual_tensor(packed(l.dims), CUDNN_DATA_INT32);
  pointwise(CUDNN_POINTWISE_GEN_INDEX, scores, nullptr, row, "causal row index", nullptr,
            CUDNN_DATA_INT32, 2);
  const CudnnTensor& col = virtual_tensor(packed(l.dims), CUDNN_DATA_INT32);
  pointwise(CUDNN_POINTWISE_GEN_INDEX, scores, nullptr, col, "causal column index", nullptr,
            CUDNN_DATA_INT32, 3);
  const CudnnTensor& keep = virtual_tensor(packed(l.dims), CUDNN_DATA_BOOLEAN);
  pointwise(CUDNN_POINTWISE_CMP_GE, row, &col, keep, "causal row >= column", nullptr,
            CUDNN_DATA_BOOLEAN);
  const CudnnTensor& masked = virtual_tensor(packed(l.dims));
  pointwise(CUDNN_POINTWISE_BINARY_SELECT, scores, &neg_inf, masked, "causal select", &keep);
  return masked;
}

CudnnPlan CudnnGraph::build(cudnnHandle_t handle) {
  std::vector<cudnnBackendDescriptor_t> raw_ops;
  for (const CudnnDescriptor& o : ops_) raw_ops.push_back(o.get());
  CudnnDescriptor graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, what_ + " graph");
  graph.set(CUDNN_ATTR(CUDNN_ATTR_OPERATIONGRAPH_OPS), CUDNN_TYPE_BACKEND_DESCRIPTOR,
            int64_t(raw_ops.size()), raw_ops.data())
      .set(CUDNN_ATTR(CUDNN_ATTR_OPERATIONGRAPH_HANDLE), handle)
      .finalize();
  CudnnDescriptor heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, what_ + " heuristics");
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  heuristics.set(CUDNN_ATTR(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH), graph)
      .set(CUDNN_ATTR(CUDNN_ATTR_ENGINEHEUR_MODE), CUDNN_TYPE_HEUR_MODE, 1, &mode)
      .finalize();
  int64_t count = 0;
  cudnn_check(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr),
              what_ + ": counting engine configs");
  std::vector<CudnnDescriptor> configs;
  std::vector<cudnnBackendDescriptor_t> raw_configs;
  for (int64_t i = 0; i < count; i++) {
    configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, what_ + " engine config");
    raw_configs.push_back(configs.back().get());
  }
  if (count > 0)
    cudnn_check(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &count,
                                         raw_configs.data()),
                what_ + ": reading engine configs");
  std::string last = "heuristics offered no engine config";
  for (int64_t i = 0; i < count; i++) {
    CudnnDescriptor plan(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, what_ + " execution plan");
    plan.set(CUDNN_ATTR(CUDNN_ATTR_EXECUTION_PLAN_HANDLE), handle)
        .set(CUDNN_ATTR(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG), configs[i]);
    // A config may not finalize for this shape or device; the next one is tried.
    const cudnnStatus_t status = cudnnBackendFinalize(plan.get());
    if (status != CUDNN_STATUS_SUCCESS) {
      last = cudnn_describe(status);
      continue;
    }
    int64_t workspace_bytes = 0, n = 0;
    cudnn_check(cudnnBackendGetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                         CUDNN_TYPE_INT64, 1, &n, &workspace_bytes),
                what_ + ": reading the workspace size");
    return {std::move(plan), workspace_bytes, by_value_uids_};
  }
  throw std::runtime_error("cuDNN attention: no engine runs " + what_ + " on this device (" +
                           std::to_string(count) + " engine configs tried; last: " + last + ")");
}

const CudnnTensor& CudnnGraph::make(int64_t uid, const char* name, CudnnLayout layout,
                                    cudnnDataType_t type, bool is_virtual, bool by_value) {
  CudnnDescriptor d(CUDNN_BACKEND_TENSOR_DESCRIPTOR, what_ + " tensor " + name);
  d.set(CUDNN_ATTR(CUDNN_ATTR_TENSOR_UNIQUE_ID), uid)
      .set(CUDNN_ATTR(CUDNN_ATTR_TENSOR_DATA_TYPE), type)
      .set(CUDNN_ATTR(CUDNN_ATTR_TENSOR_DIMENSIONS), layout.dims)
      .set(CUDNN_ATTR(CUDNN_ATTR_TENSOR_STRIDES), layout.strides)
      .set(CUDNN_ATTR(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT), int64_t(16))
      .set(CUDNN_ATTR(CUDNN_ATTR_TENSOR_IS_VIRTUAL), is_virtual)
      .set(CUDNN_ATTR(CUDNN_ATTR_TENSOR_IS_BY_VALUE), by_value)
      .finalize();
  if (by_value) by_value_uids_.push_back(uid);
  tensors_.push_back({std::move(d), std::move(layout)});
  return tensors_.back();
}

CudnnDescriptor& CudnnGraph::part(cudnnBackendDescriptorType_t type, const char* name) {
  parts_.emplace_back(type, what_ + " " + name + " descriptor");
  return parts_.back();
}

CudnnDescriptor& CudnnGraph::op(cudnnBackendDescriptorType_t type, const char* name) {
  ops_.emplace_back(type, what_ + " " + name);
  return ops_.back();
}

}  // namespace llm
