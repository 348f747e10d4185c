// ZeRO's compute copies in bf16 (engine/sharded_adamw.h), at the engine level: the model's bf16
// path needs a GPU, the mechanism does not. Two ranks (ctest starts this binary alone; it runs
// itself again under mpirun -np 2) shard three weights (slices cut through one) and train them
// for three steps of two micro-batches, each use of a weight in bf16 as a GPU forward makes it,
// under ZeRO-1, 2 and 3 with the weights gathered in f32 (each use casts: the path before bf16
// copies) and in bf16 (the use takes the weight as it is). Both must give, bit for bit, the
// gradient slices and f32 master of an unsharded run of the same arithmetic, and gathered
// weights equal to the whole master in the gathered dtype; the gathered bytes halve.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <functional>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/backend.h"
#include "engine/communicator.h"
#include "engine/grad_buckets.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "engine/sharded_adamw.h"
#include "engine/sharded_weights.h"
#include "test/mpirun.h"
#include "test/test_util.h"

using namespace llm;

namespace {

constexpr int kRanks = 2, kMicro = 2, kSteps = 3;
constexpr float kLr = 0.05f;  // large, so that bf16 of the master changes between steps
const AdamWConfig kAdamW{0.9f, 0.999f, 1e-8f, 0.1f};

// x (3, 7) -> W1 (32, 7) -> rmsnorm with g (32) -> W2 (8, 32). As ZeRO-3's units: {W1, g}
// (256 elements, each rank's slice of 128 cutting W1) and {W2}.
struct Weights {
  Tensor w1, g, w2;
  std::vector<Tensor*> all() { return {&w1, &g, &w2}; }
  std::vector<OptimParam> params() { return {{"w1", &w1, true}, {"g", &g, false}, {"w2", &w2, true}}; }
};

Tensor drawn(const Shape& shape, uint32_t seed, float mean = 0.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(mean, 0.5f);
  std::vector<float> v(shape_numel(shape));
  for (float& x : v) x = dist(gen);
  return Tensor::from_floats(v, shape);
}

Weights initial() {
  Weights w{drawn({32, 7}, 1), drawn({32}, 2, 1.0f), drawn({8, 32}, 3)};
  for (Tensor* t : w.all()) t->set_requires_grad(true);
  return w;
}

// The same on every rank: what rank `rank` trains on in micro-batch `micro` of step `step`.
Tensor input(int step, int rank, int micro) { return drawn({3, 7}, 100 + 10 * step + 3 * rank + micro); }

// Weight `w` as a bf16 forward uses it (model/llama.cpp's in_dtype: a cast unless it is bf16
// already), then widened for the f32 ops the CPU has.
Tensor use(const Tensor& w) {
  const Tensor in_bf16 = w.dtype() == DType::bf16 ? w : cast(w, DType::bf16);
  return cast(in_bf16, DType::f32);
}

// `check(unit)` runs once the unit is gathered (ZeRO-3: `units` gathers as the model does).
Tensor loss_of(Weights& w, const Tensor& x, WeightUnits* units = nullptr,
               const std::function<void(int)>& check = nullptr) {
  auto gather = [&](int unit) {
    if (!units) return;
    units->before_forward(unit);
    if (check) check(unit);
  };
  gather(0);
  Tensor y = linear(x, use(w.w1));
  gather(1);
  Tensor o = linear(rmsnorm(y, use(w.g), 1e-5f), use(w.w2));
  if (units) o = units->after_forward(1, o);
  // W1 used a second time through a cast of its own, as a tied embedding is: two gradients that
  // meet at the leaf.
  Tensor loss = add(sum(mul(o, o)), sum(mul(y, linear(x, use(w.w1)))));
  return units ? units->after_forward(0, loss) : loss;
}

using Values = std::vector<std::vector<float>>;  // per weight, in Weights::all()'s order

Values added(const Values& a, const Values& b) {
  Values out = a;
  for (size_t i = 0; i < out.size(); i++)
    for (size_t j = 0; j < out[i].size(); j++) out[i][j] += b[i][j];
  return out;
}

// The unsharded weights' gradients of rank `rank`'s micro-batches `micros` of step `step`,
// accumulated at the leaves.
Values grads_of(Weights& w, int step, int rank, const std::vector<int>& micros) {
  for (Tensor* p : w.all()) p->zero_grad();
  for (int m : micros) backward(loss_of(w, input(step, rank, m)));
  Values out;
  for (Tensor* p : w.all()) out.push_back(p->grad().to_floats());
  return out;
}

// The mean gradient the sharded run reduces, summed in its order: ZeRO-1 and 2 accumulate each
// rank's micro-batches at the leaves, then sum over ranks; ZeRO-3 sums over ranks per micro-batch
// and adds the micro-batches into the slices. Halving is exact.
Values expected_mean(Weights& ref, int step, int stage) {
  static_assert(kRanks == 2 && kMicro == 2, "the sums below are written out for 2 ranks x 2 micro-batches");
  Values total = stage == 3 ? added(added(grads_of(ref, step, 0, {0}), grads_of(ref, step, 1, {0})),
                                    added(grads_of(ref, step, 0, {1}), grads_of(ref, step, 1, {1})))
                            : added(grads_of(ref, step, 0, {0, 1}), grads_of(ref, step, 1, {0, 1}));
  for (auto& v : total)
    for (float& x : v) x *= 0.5f;
  return total;
}

size_t index_of(Weights& w, const Tensor* p) {
  const std::vector<Tensor*> all = w.all();
  return static_cast<size_t>(std::find(all.begin(), all.end(), p) - all.begin());
}

// Gathered weight `p` holds the reference master `master` in the gathered dtype, bit for bit.
void check_gathered(const Tensor& p, const Tensor& master, DType gathered) {
  CHECK(p.dtype() == gathered);
  CHECK(p.to_floats() == master.to(gathered).to_floats());
}

std::unique_ptr<GradBuckets> buckets_for(Communicator& comm, Weights& w, int stage) {
  if (stage == 3) return std::make_unique<GradBuckets>(comm, std::vector<std::vector<Tensor*>>{{&w.w1, &w.g}, {&w.w2}});
  // A cap of 262 floats: {W2} and {g, W1}, two buckets.
  return std::make_unique<GradBuckets>(comm, w.all(), 0.001, true, stage == 2);
}

void train_and_compare(int stage, DType gathered) {
  Communicator& comm = Communicator::get();
  Weights w = initial(), ref = initial();
  std::unique_ptr<GradBuckets> buckets = buckets_for(comm, w, stage);
  ShardedAdamW opt(comm, *buckets, w.params(), kAdamW, AdamWState::f32, gathered);
  std::unique_ptr<ShardedWeights> units;
  if (stage == 3) units = std::make_unique<ShardedWeights>(comm, *buckets, opt);
  for (Tensor* p : w.all())
    if (stage < 3) check_gathered(*p, *ref.all()[index_of(w, p)], gathered);
  AdamW ref_opt(ref.params(), kAdamW);
  // ZeRO-3's units are checked as each is gathered, before the step's first forward uses them.
  const std::vector<std::vector<Tensor*>> unit_weights{{&w.w1, &w.g}, {&w.w2}};
  auto check_unit = [&](int unit) {
    for (Tensor* p : unit_weights[unit]) check_gathered(*p, *ref.all()[index_of(w, p)], gathered);
  };
  for (int step = 0; step < kSteps; step++) {
    CAPTURE(step);
    const Values mean = expected_mean(ref, step, stage);
    for (Tensor* p : w.all()) p->zero_grad();  // as the trainer starts each step
    for (int m = 0; m < kMicro; m++) {
      const bool last = m + 1 == kMicro;
      const std::function<void(int)> check = m == 0 ? check_unit : std::function<void(int)>();
      Tensor loss = loss_of(w, input(step, comm.rank(), m), units.get(), check);
      LeafReadyHookScope hook(last || stage == 3 ? buckets->start_pass() : LeafReadyHook());
      backward(loss);
      // Every bucket's gradients were complete inside backward, so each was launched there,
      // overlapping the rest of backward, not after it.
      if (last && stage < 3) CHECK(buckets->launched_during_backward() == doctest::Approx(1.0));
      if (stage == 3) buckets->end_pass();
    }
    buckets->finish();
    // This rank's slices of the mean gradient, exactly.
    for (const GradBucket& b : buckets->buckets()) {
      std::vector<float> flat(b.padded, 0.0f);
      for (size_t j = 0; j < b.params.size(); j++) {
        const std::vector<float>& g = mean[index_of(w, b.params[j])];
        std::copy(g.begin(), g.end(), flat.begin() + b.offsets[j]);
      }
      CHECK(b.slice.to_floats() == std::vector<float>(flat.begin() + b.slice_begin,
                                                      flat.begin() + b.slice_begin + b.slice.numel()));
    }
    opt.step(kLr);
    for (Tensor* p : ref.all()) {
      p->zero_grad();
      accumulate_grad(*p->autograd_meta(), Tensor::from_floats(mean[index_of(ref, p)], p->shape()));
    }
    ref_opt.step(kLr);
    // The master, gathered in f32 on the host as a checkpoint takes it, is the unsharded AdamW's.
    for (size_t i = 0; i < buckets->buckets().size(); i++) {
      const GradBucket& b = buckets->buckets()[i];
      Tensor flat = Tensor::empty({b.padded}, DType::f32, Device::cpu());
      opt.gather_master(i, flat);
      for (size_t j = 0; j < b.params.size(); j++)
        CHECK(b.part_of(flat, j).to_floats() == ref.all()[index_of(w, b.params[j])]->to_floats());
    }
    // ZeRO-1 and 2: the whole weights, gathered after the step, are the new master re-cast.
    if (stage < 3)
      for (Tensor* p : w.all()) check_gathered(*p, *ref.all()[index_of(w, p)], gathered);
  }
  if (stage == 3) {  // the last step's update, as the next forward gathers it
    NoGradGuard no_grad;
    loss_of(w, input(kSteps, comm.rank(), 0), units.get(), check_unit);
  }
}

// This rank's allocator bytes for the compute weights of A (16, 16) and B (32, 16), sizes that
// fill whole allocator granules in either dtype: ZeRO-1's whole weights after a step (everything
// a rank holds, less the bf16 run's: the same buckets, slices and state), ZeRO-3's two units
// gathered at once.
size_t weight_bytes(int stage, DType gathered) {
  Communicator& comm = Communicator::get();
  CachingAllocator& host = backend(Device::cpu()).allocator();
  host.empty_cache();
  const size_t before = host.stats().in_use_bytes;
  Tensor a = drawn({16, 16}, 7), b = drawn({32, 16}, 8);
  for (Tensor* t : {&a, &b}) t->set_requires_grad(true);
  std::unique_ptr<GradBuckets> buckets =
      stage == 3 ? std::make_unique<GradBuckets>(comm, std::vector<std::vector<Tensor*>>{{&a}, {&b}})
                 : std::make_unique<GradBuckets>(comm, std::vector<Tensor*>{&a, &b}, 25.0, true);
  ShardedAdamW opt(comm, *buckets, {{"a", &a, true}, {"b", &b, true}}, kAdamW, AdamWState::f32, gathered);
  if (stage < 3) {
    buckets->finish();
    opt.step(kLr);
    return host.stats().in_use_bytes - before;
  }
  ShardedWeights units(comm, *buckets, opt);
  NoGradGuard no_grad;
  const size_t sharded = host.stats().in_use_bytes;
  units.before_forward(0);  // and unit 1, prefetched
  units.before_forward(1);
  return host.stats().in_use_bytes - sharded;
}

}  // namespace

TEST_CASE("ZeRO-1, 2 and 3 with f32 or bf16 compute weights: the unsharded run's gradients and master, bit for bit") {
  for (int stage : {1, 2, 3})
    for (DType gathered : {DType::f32, DType::bf16}) {
      CAPTURE(stage);
      const std::string dtype = dtype_name(gathered);
      CAPTURE(dtype);
      train_and_compare(stage, gathered);
    }
}

TEST_CASE("bf16 compute weights halve the bytes a rank holds for them: ZeRO-1's whole copy, ZeRO-3's gathered units") {
  const size_t bf16_bytes = 2 * (256 + 512);
  const size_t z1_f32 = weight_bytes(1, DType::f32), z1_bf16 = weight_bytes(1, DType::bf16);
  const size_t z3_f32 = weight_bytes(3, DType::f32), z3_bf16 = weight_bytes(3, DType::bf16);
  MESSAGE("ZeRO-1: rank holds " << z1_f32 << " B with f32 compute weights, " << z1_bf16 << " B with bf16; ZeRO-3: "
                                << z3_f32 << " B gathered in f32, " << z3_bf16 << " B in bf16");
  CHECK(z1_f32 - z1_bf16 == bf16_bytes);  // 4 bytes a weight less 2
  CHECK(z3_f32 == 2 * bf16_bytes);
  CHECK(z3_bf16 == bf16_bytes);
}

int main(int argc, char** argv) {
  Communicator& comm = Communicator::init(&argc, &argv);
  if (!comm.distributed()) {
    // Started alone (by ctest): the same binary and arguments again, as two ranks.
    char self[PATH_MAX] = {};
    if (readlink("/proc/self/exe", self, sizeof self - 1) <= 0) return 1;
    std::string command = testing::mpirun(kRanks) + self;
    for (int i = 1; i < argc; i++) command += std::string(" '") + argv[i] + "'";
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  }
  return doctest::Context(argc, argv).run();
}
