// Recompute segments: an 8-block Llama-style stack trained with and without recompute gives
// bit-identical loss and gradients, and the allocator's peak with recompute is at most half.
#include <cstring>

#include "engine/backend.h"
#include "engine/ops.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {
constexpr int64_t B = 2, S = 64, C = 32, H = 4, Hkv = 2, D = C / H, F = 48, V = 37, L = 8;

struct Block {
  Tensor norm1, wq, wk, wv, wo, norm2, wg, wu, wd;
  std::vector<Tensor*> params() { return {&norm1, &wq, &wk, &wv, &wo, &norm2, &wg, &wu, &wd}; }
};

Tensor param(const Shape& shape, float stddev) {
  Tensor t = randn(shape, stddev);
  t.set_requires_grad(true);
  return t;
}

Block make_block() {
  Block b{Tensor::full({C}, 1.0f, DType::f32), param({C, C}, 0.2f), param({Hkv * D, C}, 0.2f),
          param({Hkv * D, C}, 0.2f), param({C, C}, 0.2f), Tensor::full({C}, 1.0f, DType::f32),
          param({F, C}, 0.2f), param({F, C}, 0.2f), param({C, F}, 0.2f)};
  b.norm1.set_requires_grad(true);
  b.norm2.set_requires_grad(true);
  return b;
}

Tensor block_forward(const Block& p, const Tensor& x, const Tensor& pos) {
  RopeConfig rope_cfg{10000.0f};
  Tensor h = rmsnorm(x, p.norm1, 1e-5f);
  Tensor q = rope(reshape(linear(h, p.wq), {B, S, H, D}), pos, rope_cfg);
  Tensor k = rope(reshape(linear(h, p.wk), {B, S, Hkv, D}), pos, rope_cfg);
  Tensor v = reshape(linear(h, p.wv), {B, S, Hkv, D});
  Tensor a = reshape(attention(q, k, v, true), {B, S, C});
  Tensor x1 = add(x, linear(a, p.wo));
  Tensor h2 = rmsnorm(x1, p.norm2, 1e-5f);
  return add(x1, linear(swiglu(linear(h2, p.wg), linear(h2, p.wu)), p.wd));
}

struct Stack {
  Tensor embed = param({V, C}, 1.0f);
  std::vector<Block> blocks;
  Stack() {
    for (int i = 0; i < L; i++) blocks.push_back(make_block());
  }
  std::vector<Tensor*> params() {
    std::vector<Tensor*> all{&embed};
    for (Block& b : blocks)
      for (Tensor* t : b.params()) all.push_back(t);
    return all;
  }
  Tensor loss(const Tensor& ids, const Tensor& targets, const Tensor& pos, bool use_recompute) {
    Tensor x = embedding(ids, embed);
    for (const Block& b : blocks) {
      if (use_recompute) {
        x = recompute([&b](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{block_forward(b, in[0], in[1])};
        }, {x, pos})[0];
      } else {
        x = block_forward(b, x, pos);
      }
    }
    Tensor logits = linear(reshape(x, {B * S, C}), embed);  // tied lm_head
    return cross_entropy(logits, targets);
  }
};

struct Result {
  float loss;
  std::vector<std::vector<float>> grads;
  size_t peak_bytes;
};

Result run(Stack& stack, const Tensor& ids, const Tensor& targets, const Tensor& pos, bool rc) {
  for (Tensor* p : stack.params()) p->zero_grad();
  CachingAllocator& alloc = backend(Device::cpu()).allocator();
  alloc.reset_peak();
  size_t base = alloc.stats().in_use_bytes;
  Tensor loss = stack.loss(ids, targets, pos, rc);
  backward(loss);
  Result r{loss.item(), {}, alloc.stats().peak_bytes - base};
  for (Tensor* p : stack.params()) r.grads.push_back(p->grad().to_floats());
  return r;
}
}  // namespace

TEST_CASE("recompute: bit-identical loss and gradients, at most half the peak memory") {
  Stack stack;
  Tensor ids = randint({B, S}, 0, V), targets = randint({B * S}, 0, V);
  std::vector<int32_t> p(B * S);
  for (int64_t i = 0; i < B * S; i++) p[i] = static_cast<int32_t>(i % S);
  Tensor pos = Tensor::from_ints(p, {B, S});

  Result plain = run(stack, ids, targets, pos, false);
  Result recomputed = run(stack, ids, targets, pos, true);
  CHECK(std::memcmp(&plain.loss, &recomputed.loss, sizeof(float)) == 0);
  REQUIRE(plain.grads.size() == recomputed.grads.size());
  for (size_t i = 0; i < plain.grads.size(); i++) {
    CAPTURE(i);
    REQUIRE(plain.grads[i].size() == recomputed.grads[i].size());
    CHECK(std::memcmp(plain.grads[i].data(), recomputed.grads[i].data(),
                      plain.grads[i].size() * sizeof(float)) == 0);
  }
  double ratio = double(recomputed.peak_bytes) / double(plain.peak_bytes);
  MESSAGE("peak bytes over forward+backward: plain " << plain.peak_bytes << ", recompute "
          << recomputed.peak_bytes << ", ratio " << ratio);
  CHECK(ratio <= 0.5);
}

// With offload the kept inputs wait in host memory: on the CPU, where that is their device, the
// re-run starts from the same values (test_gpu_train runs it where they move).
TEST_CASE("recompute with offload: the same gradients") {
  Tensor x = randn({3, 4}), w = randn({4, 4});
  w.set_requires_grad(true);
  auto segment = [&w](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(in[0], w)}; };
  std::vector<std::vector<float>> grads;
  for (bool offload : {false, true}) {
    w.zero_grad();
    Tensor xi = x.clone();
    xi.set_requires_grad(true);
    backward(sum(recompute(segment, {xi}, offload)[0]));
    grads.push_back(w.grad().to_floats());
    grads.push_back(xi.grad().to_floats());
  }
  CHECK(grads[0] == grads[2]);
  CHECK(grads[1] == grads[3]);
}

TEST_CASE("recompute under no-grad just runs the segment") {
  NoGradGuard no_grad;
  Tensor x = randn({3, 4});
  size_t before = current_tape().size();
  Tensor y = recompute([](const std::vector<Tensor>& in) { return std::vector<Tensor>{add(in[0], in[0])}; }, {x})[0];
  CHECK(current_tape().size() == before);
  CHECK(y.to_floats()[0] == 2 * x.to_floats()[0]);
}
