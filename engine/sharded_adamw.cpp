// defines: ShardedAdamW (ZeRO-1 to 3: f32 master slices and AdamW moments, f32 or 8-bit, sharded across ranks)
#include "engine/sharded_adamw.h"

#include <algorithm>
#include <cmath>

#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

namespace {
Tensor flat_view(const Tensor& t) { return t.reshape({t.numel()}); }  // same storage, 1-D
}  // namespace

ShardedAdamW::ShardedAdamW(Communicator& comm, GradBuckets& buckets,
                           const std::vector<OptimParam>& params, AdamWConfig config, AdamWState state,
                           DType weights)
    : Optimizer(config), comm_(comm), buckets_(buckets), state_(state), weight_dtype_(weights) {
  LLM_CHECK(weights == DType::f32 || weights == DType::bf16,
            std::string("ZeRO's compute weights are f32 or bf16, not ") + dtype_name(weights));
  std::unordered_map<const Tensor*, const OptimParam*> by_tensor;
  for (const OptimParam& p : params) {
    by_tensor[p.param] = &p;
    names_[p.param] = p.name;
    if (quantises(state_, p)) quantised_.insert(p.param);
  }
  for (GradBucket& b : buckets_.buckets()) {
    Shard s;
    const int64_t begin = b.slice_begin, end = begin + b.slice.numel();
    for (size_t i = 0; i < b.params.size(); i++) {
      const int64_t p_begin = b.offsets[i], p_end = p_begin + b.params[i]->numel();
      const int64_t lo = std::max(begin, p_begin), hi = std::min(end, p_end);
      if (lo >= hi) continue;
      const bool quantised = quantised_.count(b.params[i]) > 0;
      // kQuantSliceAlignment's promise, on which exactness and the checkpoint layout rest.
      LLM_CHECK(!quantised || ((lo - p_begin) % kQuantBlock == 0 && b.padded % kQuantBlock == 0),
                "8-bit ZeRO state needs buckets built with kQuantSliceAlignment");
      const OptimParam& p = *by_tensor.at(b.params[i]);
      s.segments.push_back({lo - begin, lo - p_begin, hi - lo, b.params[i], p.decay, p.lr_scale,
                            AdamWMoments({hi - lo}, quantised, b.device)});
    }
    s.master = Tensor::zeros({b.slice.numel()}, DType::f32, b.device);
    shards_.push_back(std::move(s));
  }
  load_master();
  if (weight_dtype_ != DType::f32) make_compute_copies();
}

void ShardedAdamW::make_compute_copies() {
  for (GradBucket& b : buckets_.buckets())
    for (Tensor* weight : b.params) {
      weight->autograd_meta()->grad_in_f32 = true;
      if (!weight->storage_resident()) continue;  // ZeRO-3: ShardedWeights gives it its dtype
      Tensor copy = weight->to(weight_dtype_);
      copy.set_autograd_meta(weight->autograd_meta());  // the same leaf to autograd and the buckets
      *weight = copy;  // the f32 bytes go with their last reference: the master slice holds the value
    }
}

void ShardedAdamW::load_master() {
  for (Shard& s : shards_)
    for (const Segment& seg : s.segments) {
      if (!seg.param->storage_resident()) continue;
      Tensor mine = s.master.narrow(0, seg.slice_offset, seg.length);
      mine.copy_from(flat_view(*seg.param).narrow(0, seg.param_offset, seg.length));
    }
}

void ShardedAdamW::take_master(const Tensor* param, const PartReader& read) {
  for (Shard& s : shards_)
    for (const Segment& seg : s.segments) {
      if (seg.param != param) continue;
      Tensor mine = s.master.narrow(0, seg.slice_offset, seg.length);
      mine.copy_from(read(seg.param_offset, seg.length));
    }
}

void ShardedAdamW::take_master(const Tensor* param, const Tensor& whole) {
  LLM_CHECK(whole.shape() == param->shape(), "take_master: " + whole.str() + " for a weight of shape " +
                                                 shape_str(param->shape()));
  const Tensor flat = flat_view(whole.contiguous());
  take_master(param, [&flat](int64_t begin, int64_t count) { return flat.narrow(0, begin, count); });
}

double ShardedAdamW::step(float lr, double max_norm, bool update) {
  std::vector<Tensor> slices;  // summed on the device: one host read (see clip_grad_norm)
  for (GradBucket& b : buckets_.buckets()) slices.push_back(b.slice);
  double total = sum_squares(slices);
  comm_.allreduce_sum(&total, 1);
  const double norm = std::sqrt(total);
  if (max_norm > 0.0 && std::isfinite(norm) && norm > max_norm)
    for (GradBucket& b : buckets_.buckets()) scale_(b.slice, static_cast<float>(max_norm / (norm + 1e-6)));
  if (!update || !std::isfinite(norm)) return norm;
  t_++;
  const AdamWConfig now = config_.at_lr(lr);
  for (size_t i = 0; i < shards_.size(); i++) {
    Shard& s = shards_[i];
    GradBucket& b = buckets_.buckets()[i];
    for (Segment& seg : s.segments) {
      Tensor p = s.master.narrow(0, seg.slice_offset, seg.length);
      seg.moments.update(p, b.slice.narrow(0, seg.slice_offset, seg.length),
                         adamw_args(now, lr * seg.lr_scale, t_, seg.decay));
    }
    if (gather_after_step_) gather_weights(i);
  }
  return norm;
}

Communicator::Request ShardedAdamW::start_gather_master(size_t bucket, Tensor& flat) {
  const GradBucket& b = buckets_.buckets()[bucket];
  Tensor mine = flat.narrow(0, b.slice_begin, shards_[bucket].master.numel());
  mine.copy_from(shards_[bucket].master);
  return comm_.iallgather(flat);
}

void ShardedAdamW::gather_master(size_t bucket, Tensor& flat) {
  Communicator::Request request = start_gather_master(bucket, flat);
  comm_.wait(request);
}

void ShardedAdamW::gather_weights(size_t bucket) {
  GradBucket& b = buckets_.buckets()[bucket];
  // Through ZeRO-1's flat gradient buffer when it has the compute copy's dtype (f32), else
  // through one that lives only for this gather (ZeRO-2, or a bf16 compute copy).
  const bool reuse = b.flat.defined() && b.flat.dtype() == weight_dtype_;
  Tensor flat = reuse ? b.flat : Tensor::empty({b.padded}, weight_dtype_, b.device);
  gather_master(bucket, flat);
  for (size_t j = 0; j < b.params.size(); j++) {
    Tensor param = flat_view(*b.params[j]);
    param.copy_from(b.part_of(flat, j));
  }
}

size_t ShardedAdamW::state_bytes() const {
  size_t bytes = 0;
  for (const Shard& s : shards_)
    for (const Segment& seg : s.segments) bytes += seg.moments.bytes();
  return bytes;
}

size_t ShardedAdamW::unsharded_state_bytes() const {
  size_t bytes = 0;
  for (const GradBucket& b : buckets_.buckets())
    for (const Tensor* p : b.params)
      bytes += quantised_.count(p) > 0 ? 2 * (p->numel() + sizeof(float) * blocks_of(p->numel()))
                                             : 2 * sizeof(float) * p->numel();
  return bytes;
}

std::string ShardedAdamW::describe() const {
  const std::string over = " sharded over " + std::to_string(comm_.world_size()) + " ranks; " +
                           dtype_name(weight_dtype_) + " compute weights)";
  const std::string name = adamw_name(state_, config_);
  if (!gather_after_step_) return name + ", ZeRO stage 3 (weights, moments and gradients" + over;
  return buckets_.releases_gradients() ? name + ", ZeRO stage 2 (moments and gradients" + over
                                       : name + ", ZeRO stage 1 (moments" + over;
}

// One kind of state (`pick` of each segment's moments, skipped where undefined) laid out as the
// bucket, `per` bucket elements to one value (kQuantBlock for absmax: a quantised parameter's
// block k sits at (its offset / kQuantBlock) + k), all-gathered from every rank. u8 codes travel
// as f32, which holds them exactly. In host memory (MPI): one bucket's moment unsharded never
// takes a GPU's memory, only the host's while a checkpoint writes it.
Tensor ShardedAdamW::gather(size_t bucket, int64_t per, Tensor AdamWMoments::*pick) {
  const GradBucket& b = buckets_.buckets()[bucket];
  Tensor whole = Tensor::zeros({b.padded / per}, DType::f32, Device::cpu());
  for (const Segment& seg : shards_[bucket].segments) {
    const Tensor& mine = seg.moments.*pick;
    if (!mine.defined()) continue;
    Tensor dst = whole.narrow(0, (b.slice_begin + seg.slice_offset) / per, mine.numel());
    dst.copy_from(mine);
  }
  comm_.allgather(whole);
  return whole;
}

// Bucket by bucket, as export_state gathers them.
std::vector<TensorEntry> ShardedAdamW::state_table() const {
  std::vector<TensorEntry> out;
  for (const GradBucket& b : buckets_.buckets())
    for (const Tensor* p : b.params)
      for (TensorEntry& e : moment_table(names_.at(p), p->shape(), quantised_.count(p) > 0))
        out.push_back(std::move(e));
  return out;
}

void ShardedAdamW::export_state(const TensorSink& put) {
  // One moment of one bucket gathered at a time, handed out and dropped before the next: rank 0
  // holds one bucket's f32 moment (and one parameter's u8 codes cast from it), not the whole
  // state. The other ranks take part in the gathers and drop each at once.
  struct Kind {
    Tensor AdamWMoments::*pick;
    const char* moment;  // ".exp_avg" or ".exp_avg_sq"
    bool absmax;         // one value per kQuantBlock elements, of quantised parameters only
  };
  const Kind kinds[] = {{&AdamWMoments::m, ".exp_avg", false}, {&AdamWMoments::v, ".exp_avg_sq", false},
                        {&AdamWMoments::m_absmax, ".exp_avg", true}, {&AdamWMoments::v_absmax, ".exp_avg_sq", true}};
  for (size_t i = 0; i < shards_.size(); i++) {
    const GradBucket& b = buckets_.buckets()[i];
    const bool any_quantised = std::any_of(b.params.begin(), b.params.end(),
                                           [this](const Tensor* p) { return quantised_.count(p) > 0; });
    for (const Kind& k : kinds) {
      if (k.absmax && !any_quantised) continue;
      const Tensor whole = gather(i, k.absmax ? kQuantBlock : 1, k.pick);
      if (!comm_.is_main()) continue;
      for (size_t j = 0; j < b.params.size(); j++) {
        const Tensor& p = *b.params[j];
        const std::string name = names_.at(&p) + k.moment;
        const bool quantised = quantised_.count(&p) > 0;
        if (k.absmax) {
          if (quantised) put(name + ".absmax", whole.narrow(0, b.offsets[j] / kQuantBlock, blocks_of(p.numel())));
          continue;
        }
        const Tensor values = whole.narrow(0, b.offsets[j], p.numel()).reshape(p.shape());
        if (quantised)
          put(name + ".codes", values.to(DType::u8));
        else
          put(name, values);
      }
    }
  }
}

void ShardedAdamW::import_state(const StateLookup& find) {
  for (Shard& s : shards_) {
    for (Segment& seg : s.segments) {
      const std::string& name = names_.at(seg.param);
      const Shape& shape = seg.param->shape();
      AdamWMoments& mo = seg.moments;
      auto take = [&](Tensor& dst, const std::string& key, const Shape& whole_shape, DType dtype, int64_t begin) {
        dst.copy_from(find(name + key, whole_shape, dtype, begin, dst.numel()));
      };
      if (!mo.quantised()) {
        take(mo.m, ".exp_avg", shape, DType::f32, seg.param_offset);
        take(mo.v, ".exp_avg_sq", shape, DType::f32, seg.param_offset);
        continue;
      }
      const Shape blocks{blocks_of(seg.param->numel())};
      take(mo.m, ".exp_avg.codes", shape, DType::u8, seg.param_offset);
      take(mo.m_absmax, ".exp_avg.absmax", blocks, DType::f32, seg.param_offset / kQuantBlock);
      take(mo.v, ".exp_avg_sq.codes", shape, DType::u8, seg.param_offset);
      take(mo.v_absmax, ".exp_avg_sq.absmax", blocks, DType::f32, seg.param_offset / kQuantBlock);
    }
  }
}

}  // namespace llm
