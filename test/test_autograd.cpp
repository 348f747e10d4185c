// The tape: recording rules, gradient accumulation across micro-batches (never into a tensor the
// caller keeps), no-grad scopes.
#include "engine/op_timer.h"
#include "engine/ops.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

TEST_CASE("no-grad scope records nothing; ops on non-grad inputs record nothing") {
  current_tape().clear();
  Tensor w = randn({4, 3});
  w.set_requires_grad(true);
  Tensor x = randn({2, 4});
  {
    NoGradGuard no_grad;
    Tensor y = matmul(x, w);
    CHECK_FALSE(y.requires_grad());
  }
  CHECK(current_tape().size() == 0);
  Tensor z = add(x, x);
  CHECK_FALSE(z.requires_grad());
  CHECK(current_tape().size() == 0);
  Tensor y = matmul(x, w);
  CHECK(y.requires_grad());
  CHECK(current_tape().size() == 1);
  current_tape().clear();
}

TEST_CASE("parameter gradients accumulate across backward calls until zero_grad") {
  Tensor w = randn({5, 3});
  w.set_requires_grad(true);
  Tensor x = randn({2, 5});
  backward(sum(matmul(x, w)));
  std::vector<float> once = w.grad().to_floats();
  backward(sum(matmul(x, w)));
  std::vector<float> twice = w.grad().to_floats();
  for (size_t i = 0; i < once.size(); i++) CHECK(twice[i] == doctest::Approx(2 * once[i]));
  w.zero_grad();
  CHECK_FALSE(w.grad().defined());
  CHECK(current_tape().size() == 0);  // backward consumed the tape
}

TEST_CASE("a tensor used twice gets the sum of both gradients") {
  Tensor a = randn({3, 3});
  a.set_requires_grad(true);
  backward(sum(mul(a, a)));  // d/da sum(a*a) = 2a
  std::vector<float> g = a.grad().to_floats(), v = a.to_floats();
  for (size_t i = 0; i < g.size(); i++) CHECK(g[i] == doctest::Approx(2 * v[i]));
}

TEST_CASE("a parameter's gradient never aliases a tensor the caller keeps") {
  // A fresh gradient is kept as it is; reshape's backward hands back the seed's data, so the leaf
  // must get a copy, or the second backward would accumulate into the caller's seed.
  Tensor a = randn({2, 3});
  a.set_requires_grad(true);
  Tensor seed = randn({3, 2});
  const std::vector<float> s = seed.to_floats();
  backward(reshape(a, {3, 2}), seed);
  backward(reshape(a, {3, 2}), seed);
  CHECK(seed.to_floats() == s);
  std::vector<float> g = a.grad().to_floats();
  for (size_t i = 0; i < g.size(); i++) CHECK(g[i] == 2 * s[i]);
}

// The other half of the rule above: a gradient no other tensor sees becomes the leaf's as it is.
// A copy there is a read and a write of every parameter's gradient per step, about 10 GB at
// llama3-1b's size; the op split (engine/op_timer.h) counts the copies that would make it.
TEST_CASE("a fresh gradient becomes its leaf's without a copy, the fused loss's too") {
  Tensor w = randn({6, 4}), head = randn({10, 4});
  w.set_requires_grad(true);
  head.set_requires_grad(true);
  w.autograd_meta()->grad_in_f32 = true;  // ZeRO's flag: only a bf16 gradient is widened
  const Tensor x = randn({5, 6});
  const Tensor targets = Tensor::from_ints({1, 3, 9, 0, 2}, {5});
  OpTimer::totals().clear();
  OpTimer::enable(true);
  backward(linear_cross_entropy(matmul(x, w), head, targets));
  OpTimer::enable(false);
  CHECK(OpTimer::totals()["matmul"].calls >= 3);  // the split was on: forward, d(x), d(w)
  CHECK(OpTimer::totals().count("copy_strided") == 0);
  CHECK(w.grad().defined());
  CHECK(head.grad().defined());
  OpTimer::totals().clear();
}

// An activation several linears read (q, k and v's projections read one normed input; gate and
// up another): each d(input) GEMM after the first adds into the gradient so far (beta 1), so the
// backward sums them with no pass of its own, to the sum's values.
TEST_CASE("an input several linears read: its gradient summed by their GEMMs, no axpby") {
  Tensor a = randn({5, 6});
  a.set_requires_grad(true);
  const Tensor scale = randn({5, 6});
  const std::vector<Tensor> ws{randn({4, 6}), randn({3, 6}), randn({2, 6})};
  const Tensor h = mul(a, scale);  // an activation: not a leaf
  Tensor total = sum(linear(h, ws[0]));
  for (size_t i = 1; i < ws.size(); i++) total = add(total, sum(linear(h, ws[i])));
  OpTimer::totals().clear();
  OpTimer::enable(true);
  backward(total);
  OpTimer::enable(false);
  CHECK(OpTimer::totals()["matmul"].calls == 3);  // one d(h) GEMM each; the weights need none
  CHECK(OpTimer::totals().count("axpby") == 0);
  OpTimer::totals().clear();
  // d(sum of linear(h, w)) / dh = ones @ w, each row; d/da = that times scale.
  std::vector<float> row(6, 0.0f);
  for (const Tensor& w : ws) {
    const std::vector<float> v = w.to_floats();
    for (size_t j = 0; j < v.size(); j++) row[j % 6] += v[j];
  }
  const std::vector<float> got = a.grad().to_floats(), s = scale.to_floats();
  for (size_t i = 0; i < got.size(); i++) CHECK(got[i] == doctest::Approx(row[i % 6] * s[i]).epsilon(1e-5));
}

TEST_CASE("a gradient with the wrong shape is refused, naming the op") {
  Tensor a = randn({2, 3});
  a.set_requires_grad(true);
  Tensor y = reshape(a, {3, 2});
  CHECK_THROWS_WITH(backward(y, randn({2, 3})), doctest::Contains("backward seed"));
  current_tape().clear();
}

TEST_CASE("a graph consumed by an earlier backward is refused, not silently given no gradient") {
  // The first GPU run found this: test_gpu_ops recorded the CPU and the CUDA graph, then ran two
  // backwards; the first consumed both, and the second left the CUDA inputs without gradients.
  Tensor a = randn({3}), b = randn({3});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  Tensor ya = mul(a, a), yb = mul(b, b);
  backward(ya);
  CHECK(a.grad().defined());
  CHECK_THROWS_WITH(backward(yb), doctest::Contains("whose graph an earlier backward already consumed"));
  Tensor again = mul(b, b);  // recorded after the first backward: fine
  backward(again);
  CHECK(b.grad().defined());
}

TEST_CASE("leaf-ready hook: each parameter reported once, with its final gradient, recompute too") {
  Tensor w1 = randn({4, 4}), w2 = randn({4, 4}), w3 = randn({4, 4});
  for (Tensor* w : {&w1, &w2, &w3}) w->set_requires_grad(true);
  Tensor x = randn({3, 4});
  auto forward = [&] {
    Tensor h = matmul(x, w1);
    h = recompute([&](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{matmul(matmul(in[0], w2), w2)};  // w2 used twice inside
    }, {h})[0];
    return sum(matmul(h, w3));
  };
  backward(forward());
  std::vector<std::vector<float>> final_grads{w1.grad().to_floats(), w2.grad().to_floats(), w3.grad().to_floats()};
  for (Tensor* w : {&w1, &w2, &w3}) w->zero_grad();

  std::vector<AutogradMeta*> order;
  std::vector<std::vector<float>> at_report;
  {
    LeafReadyHookScope hook([&](AutogradMeta& leaf) {
      order.push_back(&leaf);
      at_report.push_back(leaf.grad.to_floats());
    });
    backward(forward());
  }
  REQUIRE(order.size() == 3);
  CHECK(order[0] == w3.autograd_meta().get());  // backward reaches the last layer first
  CHECK(order[1] == w2.autograd_meta().get());
  CHECK(order[2] == w1.autograd_meta().get());
  CHECK(at_report[0] == final_grads[2]);
  CHECK(at_report[1] == final_grads[1]);
  CHECK(at_report[2] == final_grads[0]);
}
