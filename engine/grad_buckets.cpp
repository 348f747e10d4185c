// defines: GradBuckets (bucketed gradient all-reduce / reduce-scatter overlapped with backward)
#include "engine/grad_buckets.h"

#include <algorithm>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

GradBuckets::GradBuckets(Communicator& comm, const std::vector<Tensor*>& params, double cap_mb,
                         bool scatter, bool release)
    : comm_(comm), scatter_(scatter), release_(scatter && release) {
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(cap_mb * 1048576.0 / sizeof(float)));
  // Backward produces the last layers' gradients first, so buckets follow reverse model order.
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    Tensor* p = *it;
    LLM_CHECK(p->dtype() == DType::f32 && p->device() == params.front()->device(),
              "data-parallel buckets hold f32 gradients of one device; got " + p->str());
    if (buckets_.empty() || buckets_.back().numel + p->numel() > cap) buckets_.emplace_back();
    GradBucket& b = buckets_.back();
    b.params.push_back(p);
    b.offsets.push_back(b.numel);
    b.numel += p->numel();
    bucket_of_[p->autograd_meta().get()] = buckets_.size() - 1;
  }
  const Device device = params.empty() ? Device::cpu() : params.front()->device();
  const int64_t world = comm_.world_size();
  for (GradBucket& b : buckets_) {
    // Reduce-scatter and all-gather want equal parts: pad with zeros no parameter owns.
    const int64_t part = (b.numel + world - 1) / world;
    b.padded = scatter_ ? part * world : b.numel;
    b.device = device;
    if (!release_) b.flat = Tensor::zeros({b.padded}, DType::f32, device);
    if (!scatter_) continue;
    b.slice_begin = part * comm_.rank();
    b.slice = Tensor::empty({part}, DType::f32, device);
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

void GradBucket::pack() {
  for (size_t i = 0; i < params.size(); i++) {
    Tensor grad = params[i]->grad();
    Tensor dst = part(i);
    if (grad.defined()) dst.copy_from(grad.contiguous().reshape({grad.numel()}));
    else backend(dst.device()).fill(dst, 0.0f);
  }
}

void GradBuckets::launch(GradBucket& b) {
  if (!b.flat.defined()) b.flat = Tensor::zeros({b.padded}, DType::f32, b.device);  // ZeRO-2
  b.pack();
  // ZeRO-2: the packed copy is all the collective needs; the full gradients go now, during
  // backward, instead of living until the next step.
  if (release_)
    for (Tensor* p : b.params) p->zero_grad();
  b.request = scatter_ ? comm_.ireduce_scatter_sum(b.flat, b.slice) : comm_.iallreduce_sum(b.flat);
  b.launched = true;
}

void GradBuckets::finish() {
  const float inv_world = 1.0f / static_cast<float>(comm_.world_size());
  for (GradBucket& b : buckets_) {
    if (!b.launched) launch(b);
    comm_.wait(b.request);
    if (scatter_) {
      scale_(b.slice, inv_world);
      if (release_) b.flat = Tensor();
      continue;
    }
    scale_(b.flat, inv_world);
    for (size_t i = 0; i < b.params.size(); i++) {
      Tensor* p = b.params[i];
      if (!p->grad().defined())
        accumulate_grad(*p->autograd_meta(), Tensor::zeros(p->shape(), DType::f32, p->device()));
      Tensor grad = p->grad().reshape({p->numel()});
      grad.copy_from(b.part(i));
    }
  }
}

}  // namespace llm
