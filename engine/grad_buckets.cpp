// defines: GradBuckets (bucketed gradient all-reduce / reduce-scatter overlapped with backward)
#include "engine/grad_buckets.h"

#include <algorithm>

#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

GradBuckets::GradBuckets(Communicator& comm, const std::vector<Tensor*>& params, double cap_mb,
                         bool scatter)
    : comm_(comm), scatter_(scatter) {
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(cap_mb * 1048576.0 / sizeof(float)));
  // Backward produces the last layers' gradients first, so buckets follow reverse model order.
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    Tensor* p = *it;
    LLM_CHECK(p->dtype() == DType::f32 && p->device().is_cpu(),
              "data-parallel buckets hold f32 CPU gradients; got " + p->str());
    if (buckets_.empty() || buckets_.back().numel + p->numel() > cap) buckets_.emplace_back();
    GradBucket& b = buckets_.back();
    b.params.push_back(p);
    b.offsets.push_back(b.numel);
    b.numel += p->numel();
    bucket_of_[p->autograd_meta().get()] = buckets_.size() - 1;
  }
  for (GradBucket& b : buckets_) {
    b.flat = Tensor::empty({b.numel}, DType::f32);
    if (!scatter_) continue;
    b.counts = split_counts(b.numel, comm_.world_size());
    for (int r = 0; r < comm_.rank(); r++) b.slice_begin += b.counts[r];
    b.slice = Tensor::empty({b.counts[comm_.rank()]}, DType::f32);
  }
}

LeafReadyHook GradBuckets::start_pass() {
  for (GradBucket& b : buckets_) {
    b.pending = b.params.size();
    b.launched = false;
  }
  launched_in_pass_ = 0.0;
  return [this](AutogradMeta& leaf) {
    auto it = bucket_of_.find(&leaf);
    if (it == bucket_of_.end()) return;  // not one of ours (e.g. a frozen tensor)
    GradBucket& b = buckets_[it->second];
    if (--b.pending == 0) {
      launch(b);
      launched_in_pass_ += 1.0 / static_cast<double>(buckets_.size());
    }
  };
}

void GradBuckets::launch(GradBucket& b) {
  float* flat = b.flat.data<float>();
  for (size_t i = 0; i < b.params.size(); i++) {
    Tensor grad = b.params[i]->grad();
    float* dst = flat + b.offsets[i];
    if (grad.defined()) std::copy_n(grad.contiguous().data<float>(), grad.numel(), dst);
    else std::fill_n(dst, b.params[i]->numel(), 0.0f);
  }
  b.request = scatter_ ? comm_.ireduce_scatter_sum(flat, b.slice.data<float>(), b.counts)
                       : comm_.iallreduce_sum(flat, b.numel);
  b.launched = true;
}

void GradBuckets::finish() {
  const float inv_world = 1.0f / static_cast<float>(comm_.world_size());
  for (GradBucket& b : buckets_) {
    if (!b.launched) launch(b);
    comm_.wait(b.request);
    if (scatter_) {
      scale_(b.slice, inv_world);
      continue;
    }
    scale_(b.flat, inv_world);
    for (size_t i = 0; i < b.params.size(); i++) {
      Tensor* p = b.params[i];
      if (!p->grad().defined()) accumulate_grad(*p->autograd_meta(), Tensor::zeros(p->shape(), DType::f32));
      std::copy_n(b.flat.data<float>() + b.offsets[i], p->numel(), p->grad().data<float>());
    }
  }
}

}  // namespace llm
