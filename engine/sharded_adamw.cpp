// defines: ShardedAdamW (ZeRO-1: AdamW moments sharded across ranks)
#include "engine/sharded_adamw.h"

#include <algorithm>
#include <cmath>

#include "engine/backend.h"
#include "engine/ops.h"

namespace llm {

namespace {
Tensor flat_view(const Tensor& t) { return t.reshape({t.numel()}); }  // same storage, 1-D
}  // namespace

ShardedAdamW::ShardedAdamW(Communicator& comm, GradBuckets& buckets,
                           const std::vector<OptimParam>& params, AdamWConfig config)
    : comm_(comm), buckets_(buckets), config_(config) {
  std::unordered_map<const Tensor*, bool> decay;
  for (const OptimParam& p : params) {
    decay[p.param] = p.decay;
    names_[p.param] = p.name;
  }
  for (GradBucket& b : buckets_.buckets()) {
    Shard s;
    const int64_t begin = b.slice_begin, end = begin + b.slice.numel();
    for (size_t i = 0; i < b.params.size(); i++) {
      const int64_t p_begin = b.offsets[i], p_end = p_begin + b.params[i]->numel();
      const int64_t lo = std::max(begin, p_begin), hi = std::min(end, p_end);
      if (lo < hi) s.segments.push_back({lo - begin, lo - p_begin, hi - lo, b.params[i], decay.at(b.params[i])});
    }
    const Device device = b.device;
    s.m = Tensor::zeros({b.slice.numel()}, DType::f32, device);
    s.v = Tensor::zeros({b.slice.numel()}, DType::f32, device);
    s.param_slice = Tensor::zeros({b.slice.numel()}, DType::f32, device);
    shards_.push_back(std::move(s));
  }
}

double ShardedAdamW::step(float lr, double max_norm, bool update) {
  double total = 0.0;
  for (GradBucket& b : buckets_.buckets()) total += sum_squares(b.slice);
  comm_.allreduce_sum(&total, 1);
  const double norm = std::sqrt(total);
  if (max_norm > 0.0 && std::isfinite(norm) && norm > max_norm)
    for (GradBucket& b : buckets_.buckets()) scale_(b.slice, static_cast<float>(max_norm / (norm + 1e-6)));
  if (!update || !std::isfinite(norm)) return norm;
  t_++;
  for (size_t i = 0; i < shards_.size(); i++) {
    Shard& s = shards_[i];
    GradBucket& b = buckets_.buckets()[i];
    Backend& be = backend(b.device);
    for (const Segment& seg : s.segments) {
      auto part = [&](const Tensor& t) { return t.narrow(0, seg.slice_offset, seg.length); };
      Tensor p = part(s.param_slice), g = part(b.slice), m = part(s.m), v = part(s.v);
      p.copy_from(flat_view(*seg.param).narrow(0, seg.param_offset, seg.length));
      be.adamw(p, g, m, v, adamw_args(config_, lr, t_, seg.decay));
    }
    // Every rank's updated part into the bucket's flat buffer, then out to the parameters. Under
    // ZeRO-2 that buffer exists only for this gather.
    const bool transient = !b.flat.defined();
    if (transient) b.flat = Tensor::empty({b.padded}, DType::f32, b.device);
    Tensor mine = b.flat.narrow(0, b.slice_begin, s.param_slice.numel());
    mine.copy_from(s.param_slice);
    comm_.allgather(b.flat);
    for (size_t j = 0; j < b.params.size(); j++) {
      Tensor param = flat_view(*b.params[j]);
      param.copy_from(b.part(j));
    }
    if (transient) b.flat = Tensor();
  }
  return norm;
}

size_t ShardedAdamW::state_bytes() const {
  size_t bytes = 0;
  for (const Shard& s : shards_) bytes += s.m.nbytes() + s.v.nbytes();
  return bytes;
}

size_t ShardedAdamW::unsharded_state_bytes() const {
  size_t bytes = 0;
  for (const GradBucket& b : buckets_.buckets()) bytes += 2 * sizeof(float) * b.padded;
  return bytes;
}

std::string ShardedAdamW::describe() const {
  const std::string ranks = std::to_string(comm_.world_size()) + " ranks";
  return buckets_.releases_gradients() ? "AdamW, ZeRO stage 2 (moments and gradients sharded over " + ranks + ")"
                                       : "AdamW, ZeRO stage 1 (moments sharded over " + ranks + ")";
}

std::vector<std::pair<std::string, Tensor>> ShardedAdamW::export_state() {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < shards_.size(); i++) {
    GradBucket& b = buckets_.buckets()[i];
    for (const auto& [moment, suffix] : {std::pair{&shards_[i].m, ".exp_avg"}, {&shards_[i].v, ".exp_avg_sq"}}) {
      Tensor whole = Tensor::zeros({b.padded}, DType::f32, b.device);
      Tensor mine = whole.narrow(0, b.slice_begin, moment->numel());
      mine.copy_from(*moment);
      comm_.allgather(whole);
      for (size_t j = 0; j < b.params.size(); j++)
        out.emplace_back(names_.at(b.params[j]) + suffix,
                         whole.narrow(0, b.offsets[j], b.params[j]->numel()).reshape(b.params[j]->shape()));
    }
  }
  return out;
}

void ShardedAdamW::import_state(const StateLookup& find) {
  for (size_t i = 0; i < shards_.size(); i++) {
    Shard& s = shards_[i];
    for (const Segment& seg : s.segments) {
      const std::string& name = names_.at(seg.param);
      for (const auto& [moment, suffix] : {std::pair{&s.m, ".exp_avg"}, {&s.v, ".exp_avg_sq"}}) {
        const Tensor& whole = find(name + suffix, seg.param->shape(), DType::f32);
        Tensor mine = moment->narrow(0, seg.slice_offset, seg.length);
        mine.copy_from(whole.contiguous().reshape({whole.numel()}).narrow(0, seg.param_offset, seg.length));
      }
    }
  }
}

}  // namespace llm
