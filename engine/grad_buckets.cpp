// defines: GradBuckets (bucketed gradient all-reduce / reduce-scatter overlapped with backward)
#include "engine/grad_buckets.h"

#include <algorithm>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

namespace {
int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }
}  // namespace

GradBuckets::GradBuckets(Communicator& comm, const std::vector<Tensor*>& params, double cap_mb,
                         bool scatter, bool release, SliceAlignment align)
    : comm_(comm), scatter_(scatter), release_(scatter && release) {
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(cap_mb * 1048576.0 / sizeof(float)));
  // Backward produces the last layers' gradients first, so buckets follow reverse model order.
  std::vector<Tensor*> group;
  int64_t group_numel = 0;  // as add_bucket lays it out, alignment gaps included
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    const int64_t n = (*it)->numel();
    int64_t start = scatter_ && n >= align.min_numel ? round_up(group_numel, align.block) : group_numel;
    if (!group.empty() && start + n > cap) {
      add_bucket(group, align);
      group.clear();
      start = 0;
    }
    group.push_back(*it);
    group_numel = start + n;
  }
  if (!group.empty()) add_bucket(group, align);
  lay_out(align);
}

GradBuckets::GradBuckets(Communicator& comm, const std::vector<std::vector<Tensor*>>& units,
                         SliceAlignment align)
    : comm_(comm), scatter_(true), release_(true), units_(true) {
  for (const std::vector<Tensor*>& unit : units) add_bucket(unit, align);
  lay_out(align);
}

void GradBuckets::add_bucket(const std::vector<Tensor*>& params, SliceAlignment align) {
  GradBucket& b = buckets_.emplace_back();
  for (Tensor* p : params) {
    // A bf16 weight's gradient is f32 too when it is kept so (bfloat16's weights).
    const bool f32_grad = p->dtype() == DType::f32 || (p->autograd_meta() && p->autograd_meta()->grad_in_f32);
    LLM_CHECK(f32_grad && p->device() == params.front()->device(),
              "data-parallel buckets hold f32 gradients of one device; got " + p->str());
    const bool aligned = scatter_ && p->numel() >= align.min_numel;
    b.params.push_back(p);
    b.offsets.push_back(aligned ? round_up(b.numel, align.block) : b.numel);
    b.numel = b.offsets.back() + p->numel();
    b.device = p->device();
    bucket_of_[p->autograd_meta().get()] = buckets_.size() - 1;
  }
}

void GradBuckets::lay_out(SliceAlignment align) {
  const int64_t world = comm_.world_size();
  for (GradBucket& b : buckets_) {
    // Reduce-scatter and all-gather want equal parts: pad with zeros no parameter owns. Parts
    // are whole blocks only where an aligned parameter needs it, not to unbalance small buckets.
    const bool aligned = scatter_ && std::any_of(b.params.begin(), b.params.end(),
                                                 [&](const Tensor* p) { return p->numel() >= align.min_numel; });
    const int64_t part = round_up((b.numel + world - 1) / world, aligned ? align.block : 1);
    b.padded = scatter_ ? part * world : b.numel;
    if (!release_) b.flat = Tensor::zeros({b.padded}, DType::f32, b.device);
    if (!scatter_) continue;
    b.slice_begin = part * comm_.rank();
    b.slice = Tensor::zeros({part}, DType::f32, b.device);
  }
}

LeafReadyHook GradBuckets::start_pass() {
  if (units_ && passes_++ == 0)
    for (GradBucket& b : buckets_) backend(b.device).fill(b.slice, 0.0f);
  for (GradBucket& b : buckets_) {
    b.pending = b.params.size();
    b.launched = b.settled = false;
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

// The flat buffer is f32 whatever the weights' dtype: a bf16 compute copy's gradient accumulates
// in f32 at its leaf (AutogradMeta::grad_in_f32), and the reduction is f32, as FSDP's
// reduce_dtype=f32 and DeepSpeed's fp32 gradient accumulation.
void GradBucket::pack() {
  for (size_t i = 0; i < params.size(); i++) {
    Tensor grad = params[i]->grad();
    Tensor dst = part(i);
    if (grad.defined()) dst.copy_from(grad.contiguous().reshape({grad.numel()}));
    else backend(dst.device()).fill(dst, 0.0f);
  }
}

void GradBuckets::launch(GradBucket& b) {
  // ZeRO-2 and 3 keep at most two buckets' buffers: the one in flight and this one.
  if (release_)
    for (GradBucket& other : buckets_)
      if (other.launched && !other.settled) settle(other);
  if (!b.flat.defined()) b.flat = Tensor::zeros({b.padded}, DType::f32, b.device);  // ZeRO-2
  b.pack();
  // ZeRO-2: the packed copy is all the collective needs; the full gradients go now, during
  // backward, instead of living until the next step. ZeRO-3: the unit's weights go too.
  if (release_)
    for (Tensor* p : b.params) p->zero_grad();
  if (units_) {
    for (Tensor* p : b.params) p->release_storage();
    b.incoming = Tensor::empty(b.slice.shape(), DType::f32, b.device);
    b.request = comm_.ireduce_scatter_sum(b.flat, b.incoming);
  } else {
    b.request = scatter_ ? comm_.ireduce_scatter_sum(b.flat, b.slice) : comm_.iallreduce_sum(b.flat);
  }
  b.launched = true;
}

void GradBuckets::settle(GradBucket& b) {
  comm_.wait(b.request);
  b.settled = true;
  if (release_) b.flat = Tensor();
  if (!units_) return;
  backend(b.device).axpby(1.0f, b.slice, 1.0f, b.incoming, b.slice);
  b.incoming = Tensor();
}

void GradBuckets::wait_all() {
  for (GradBucket& b : buckets_) {
    if (!b.launched) launch(b);
    if (!b.settled) settle(b);
  }
}

void GradBuckets::end_pass() {
  LLM_CHECK(units_, "end_pass is for units mode (ZeRO-3)");
  wait_all();
}

void GradBuckets::finish() {
  if (!units_) wait_all();
  passes_ = 0;
  const float inv_world = 1.0f / static_cast<float>(comm_.world_size());
  for (GradBucket& b : buckets_) {
    if (scatter_) {
      scale_(b.slice, inv_world);
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
