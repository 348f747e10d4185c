// AdamW against a hand-written reference, gradient clipping, learning-rate schedules.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <cmath>

#include "engine/optimizer.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

TEST_CASE("AdamW: three steps match PyTorch's update rule computed in f64") {
  Tensor p = randn({7});
  p.set_requires_grad(true);
  std::vector<double> ref(7), m(7, 0.0), v(7, 0.0);
  std::vector<float> p0 = p.to_floats();
  for (int i = 0; i < 7; i++) ref[i] = p0[i];
  const double lr = 1e-2, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
  AdamW opt({{"w", &p, true}}, {float(b1), float(b2), float(eps), float(wd)});
  for (int t = 1; t <= 3; t++) {
    Tensor g = randn({7});
    p.zero_grad();
    accumulate_grad(*p.autograd_meta(), g);
    opt.step(float(lr));
    std::vector<float> gv = g.to_floats();
    for (int i = 0; i < 7; i++) {
      ref[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * gv[i];
      v[i] = b2 * v[i] + (1 - b2) * gv[i] * gv[i];
      double denom = std::sqrt(v[i]) / std::sqrt(1 - std::pow(b2, t)) + eps;
      ref[i] -= lr / (1 - std::pow(b1, t)) * m[i] / denom;
    }
  }
  std::vector<float> got = p.to_floats();
  for (int i = 0; i < 7; i++) CHECK(got[i] == doctest::Approx(ref[i]).epsilon(1e-5));
  CHECK(opt.steps_taken() == 3);
  CHECK(opt.export_state().size() == 2);
}

TEST_CASE("AdamW: no decay for parameters marked decay=false; params without grad untouched") {
  Tensor a = Tensor::full({3}, 1.0f, DType::f32), b = Tensor::full({3}, 1.0f, DType::f32);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  accumulate_grad(*a.autograd_meta(), Tensor::zeros({3}, DType::f32));
  AdamW opt({{"a", &a, false}, {"b", &b, true}}, {0.9f, 0.999f, 1e-8f, 0.5f});
  opt.step(0.1f);
  CHECK(a.to_floats()[0] == 1.0f);  // zero gradient, no decay: unchanged
  CHECK(b.to_floats()[0] == 1.0f);  // no gradient at all: skipped
}

TEST_CASE("clip_grad_norm: returns the norm and scales to max_norm") {
  Tensor a = Tensor::zeros({2}, DType::f32), b = Tensor::zeros({1}, DType::f32);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  accumulate_grad(*a.autograd_meta(), Tensor::from_floats({3, 0}, {2}));
  accumulate_grad(*b.autograd_meta(), Tensor::from_floats({4}, {1}));
  CHECK(clip_grad_norm({&a, &b}, 10.0) == doctest::Approx(5.0));
  CHECK(a.grad().to_floats()[0] == 3.0f);  // under the limit: untouched
  CHECK(clip_grad_norm({&a, &b}, 1.0) == doctest::Approx(5.0));
  CHECK(a.grad().to_floats()[0] == doctest::Approx(0.6).epsilon(1e-5));
  CHECK(clip_grad_norm({&a, &b}, 0.0) == doctest::Approx(1.0).epsilon(1e-5));  // 0: no clipping
}

TEST_CASE("LR schedules: linear warmup from 0, cosine to the floor, linear decay, constant") {
  LrSchedule s{"cosine", 1.0, 10, 110, 0.0};
  CHECK(s.lr(0) == 0.0);
  CHECK(s.lr(5) == doctest::Approx(0.5));
  CHECK(s.lr(10) == doctest::Approx(1.0));
  CHECK(s.lr(60) == doctest::Approx(0.5));
  CHECK(s.lr(110) == doctest::Approx(0.0));
  s.min_lr_ratio = 0.1;
  CHECK(s.lr(110) == doctest::Approx(0.1));
  CHECK(s.lr(60) == doctest::Approx(0.55));
  LrSchedule lin{"linear", 2.0, 0, 100, 0.0};
  CHECK(lin.lr(0) == doctest::Approx(2.0));
  CHECK(lin.lr(75) == doctest::Approx(0.5));
  LrSchedule con{"constant", 2.0, 4, 100, 0.0};
  CHECK(con.lr(2) == doctest::Approx(1.0));
  CHECK(con.lr(99) == doctest::Approx(2.0));
}
