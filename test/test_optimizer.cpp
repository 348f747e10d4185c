// AdamW and ADOPT against hand-written references, Schedule-Free's modes and resume, LOMO's and
// AdaLomo's updates in backward, gradient clipping, learning-rate schedules, and the
// 8-bit blockwise AdamW: updates against f32 AdamW's, exact resume and state size (its maps are
// test_quant_map's).
#include <algorithm>
#include <cmath>
#include <map>

#include "engine/adafactor.h"
#include "engine/adopt.h"
#include "engine/autograd.h"
#include "engine/lomo.h"
#include "engine/lr_schedule.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "engine/quant_map.h"
#include "engine/schedule_free.h"
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
  CHECK(opt.state_table().size() == 2);
}

// bfloat16: a bf16 weight, its f32 gradient and bf16 moments. Each step reads m, v and the weight
// into f32, updates them in the order torch's AdamW does (decay, m, v, the bias-corrected step)
// and rounds each back to bf16 once: the reference below does that element by element.
TEST_CASE("AdamW on a bf16 weight: f32 arithmetic, weight and moments rounded to bf16 once a step") {
  const int n = 4099;  // past one OpenMP chunk, and odd
  Tensor p = randn({n}, 0.05f).to(DType::bf16);
  p.set_requires_grad(true);
  p.autograd_meta()->grad_in_f32 = true;
  std::vector<float> ref = p.to_floats(), m(n, 0.0f), v(n, 0.0f);
  const float lr = 3e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
  AdamW opt({{"w", &p, true}}, {b1, b2, eps, wd});
  const std::vector<TensorEntry> table = opt.state_table();
  REQUIRE(table.size() == 2);
  CHECK((table[0].dtype == DType::bf16 && table[1].dtype == DType::bf16));
  CHECK(opt.state_bytes() == size_t(4) * n);
  auto to_bf16 = [](float x) { return bf16_to_f32(f32_to_bf16(x)); };
  for (int t = 1; t <= 4; t++) {
    const Tensor g = randn({n});
    p.zero_grad();
    accumulate_grad(*p.autograd_meta(), g);
    CHECK(p.grad().dtype() == DType::f32);
    opt.step(lr);
    const std::vector<float> gv = g.to_floats();
    const float step_size = lr / (1.0f - std::pow(b1, float(t))), bias2_sqrt = std::sqrt(1.0f - std::pow(b2, float(t)));
    for (int i = 0; i < n; i++) {
      float w = ref[i] * (1.0f - lr * wd);
      const float m1 = b1 * m[i] + (1.0f - b1) * gv[i], v1 = b2 * v[i] + (1.0f - b2) * gv[i] * gv[i];
      w -= step_size * m1 / (std::sqrt(v1) / bias2_sqrt + eps);
      ref[i] = to_bf16(w);
      m[i] = to_bf16(m1);
      v[i] = to_bf16(v1);
    }
  }
  CHECK(p.dtype() == DType::bf16);
  const std::vector<float> got = p.to_floats();
  int differ = 0;
  for (int i = 0; i < n; i++) differ += got[i] != ref[i];
  CHECK(differ == 0);
  std::map<std::string, Tensor> saved;
  opt.export_state([&saved](const std::string& name, const Tensor& t) { saved[name] = t; });
  CHECK(saved.at("w.exp_avg").dtype() == DType::bf16);
  CHECK(saved.at("w.exp_avg").to_floats() == m);
  CHECK(saved.at("w.exp_avg_sq").to_floats() == v);
}

// The reference (the ADOPT paper's code, which Axolotl's adopt_adamw runs with decouple=True), in
// f64: step 0 only sets v = g^2; then decoupled decay, g / max(sqrt(v), eps) clipped to
// +-step^0.25, m = lerp(m, that, 1 - beta1), p -= lr m, and only then v takes g.
TEST_CASE("ADOPT: four steps match the reference's update rule computed in f64, and resume exactly") {
  Tensor p = randn({9}), q = randn({3});
  p.set_requires_grad(true);
  q.set_requires_grad(true);
  const double lr = 1e-2, b1 = 0.9, b2 = 0.9999, eps = 1e-6, wd = 0.1;
  const std::vector<float> p0 = p.to_floats(), q0 = q.to_floats();
  std::vector<double> ref(p0.begin(), p0.end()), m(9, 0.0), v(9, 0.0);
  Adopt opt({{"w", &p, true}, {"norm", &q, false}}, {float(b1), float(b2), float(eps), float(wd)});
  std::vector<std::pair<Tensor, Tensor>> grads;
  for (int t = 0; t < 6; t++) grads.push_back({randn({9}), randn({3})});
  bool clipped = false;
  for (int step = 0; step < 4; step++) {
    p.zero_grad();
    q.zero_grad();
    accumulate_grad(*p.autograd_meta(), grads[step].first);
    accumulate_grad(*q.autograd_meta(), grads[step].second);
    opt.step(float(lr));
    const std::vector<float> g = grads[step].first.to_floats();
    for (int i = 0; i < 9; i++) {
      if (step == 0) {
        v[i] = double(g[i]) * g[i];
        continue;
      }
      ref[i] -= lr * wd * ref[i];
      const double clip = std::pow(double(step), 0.25), raw = g[i] / std::max(std::sqrt(v[i]), eps);
      clipped = clipped || std::fabs(raw) > clip;
      m[i] += (1 - b1) * (std::clamp(raw, -clip, clip) - m[i]);
      ref[i] -= lr * m[i];
      v[i] = b2 * v[i] + (1 - b2) * double(g[i]) * g[i];
    }
    if (step == 0) CHECK(p.to_floats() == p0);  // the first step moves nothing
  }
  CHECK(clipped);  // the clip was exercised
  const std::vector<float> got = p.to_floats();
  for (int i = 0; i < 9; i++) CHECK(got[i] == doctest::Approx(ref[i]).epsilon(1e-5));
  CHECK(q.to_floats() != q0);
  CHECK(opt.steps_taken() == 4);
  CHECK(opt.state_bytes() == 2 * 12 * sizeof(float));

  // A fresh ADOPT given the saved state and step count continues bit for bit.
  Tensor p2 = p.clone(), q2 = q.clone();
  p2.set_requires_grad(true);
  q2.set_requires_grad(true);
  std::map<std::string, Tensor> saved;
  opt.export_state([&saved](const std::string& name, const Tensor& t) { saved[name] = t.clone(); });
  CHECK(saved.size() == 4);
  CHECK(opt.state_table().size() == 4);
  Adopt resumed({{"w", &p2, true}, {"norm", &q2, false}}, {float(b1), float(b2), float(eps), float(wd)});
  resumed.import_state([&](const std::string& name, const Shape& shape, DType dtype, int64_t begin, int64_t count) {
    const Tensor& t = saved.at(name);
    REQUIRE((t.shape() == shape && t.dtype() == dtype));
    return t.reshape({t.numel()}).narrow(0, begin, count);
  });
  resumed.set_steps_taken(opt.steps_taken());
  for (int step = 4; step < 6; step++) {
    for (Tensor* t : {&p, &q, &p2, &q2}) t->zero_grad();
    accumulate_grad(*p.autograd_meta(), grads[step].first);
    accumulate_grad(*q.autograd_meta(), grads[step].second);
    accumulate_grad(*p2.autograd_meta(), grads[step].first);
    accumulate_grad(*q2.autograd_meta(), grads[step].second);
    opt.step(float(lr));
    resumed.step(float(lr));
  }
  CHECK(max_abs_diff(p, p2) == 0.0f);
  CHECK(max_abs_diff(q, q2) == 0.0f);
}

// Schedule-Free's arithmetic is held to the schedulefree package in test_hf_trajectory; here its
// two points and its state: evaluation moves the weights to x = y + (1 - 1 / beta1)(z - y), and a
// fresh optimizer given the tensors, the scalars and the mode continues bit for bit.
TEST_CASE("Schedule-Free: x while evaluating, y while training; state, scalars and mode resume exactly") {
  Tensor p = randn({9}), q = randn({3});
  for (Tensor* t : {&p, &q}) t->set_requires_grad(true);
  ScheduleFreeConfig config;
  config.weight_decay = 0.1;
  config.warmup_steps = 2;
  auto make = [&config](Tensor& a, Tensor& b) {
    return ScheduleFree({{"w", &a, true}, {"norm", &b, false}}, config);
  };
  ScheduleFree opt = make(p, q);
  std::vector<std::pair<Tensor, Tensor>> grads;
  for (int i = 0; i < 6; i++) grads.emplace_back(randn({9}), randn({3}));
  auto step = [&grads](ScheduleFree& o, Tensor& a, Tensor& b, int i) {
    o.set_training(true);
    for (Tensor* t : {&a, &b}) t->zero_grad();
    accumulate_grad(*a.autograd_meta(), grads[i].first);
    accumulate_grad(*b.autograd_meta(), grads[i].second);
    o.step(1e-2f, 1.0);
  };
  for (int i = 0; i < 3; i++) step(opt, p, q, i);
  std::map<std::string, Tensor> saved;
  opt.export_state([&saved](const std::string& name, const Tensor& t) { saved[name] = t.clone(); });
  CHECK(saved.size() == 4);  // z and v of each
  const std::vector<float> y = p.to_floats(), z = saved.at("w.z").to_floats();
  opt.set_training(false);
  const std::vector<float> x = p.to_floats();
  for (int i = 0; i < 9; i++) CHECK(x[i] == doctest::Approx(y[i] + (1 - 1 / 0.9) * (z[i] - y[i])).epsilon(1e-6));
  CHECK(opt.scalar_state().at("train_mode") == "false");
  opt.set_training(true);  // back to y (to rounding): saved in training mode, which a fresh one is not in

  Tensor p2 = p.clone(), q2 = q.clone();
  for (Tensor* t : {&p2, &q2}) t->set_requires_grad(true);
  ScheduleFree resumed = make(p2, q2);
  resumed.import_state([&](const std::string& name, const Shape& shape, DType dtype, int64_t begin, int64_t count) {
    const Tensor& t = saved.at(name);
    REQUIRE((t.shape() == shape && t.dtype() == dtype));
    return t.reshape({t.numel()}).narrow(0, begin, count);
  });
  resumed.restore_scalar_state(opt.scalar_state());
  resumed.set_steps_taken(opt.steps_taken());
  for (int i = 3; i < 6; i++) {
    step(opt, p, q, i);
    step(resumed, p2, q2, i);
  }
  CHECK(max_abs_diff(p, p2) == 0.0f);
  CHECK(max_abs_diff(q, q2) == 0.0f);
  CHECK_THROWS_WITH(resumed.restore_scalar_state({{"lr_max", "0.01"}}), "no metadata weight_sum (Schedule-Free's state)");
}

// LOMO and AdaLomo update in backward: the hook of a pass makes each update as its parameter's
// gradient completes and drops the gradient; a non-finite gradient updates nothing; step() then
// returns the norm of what the pass used. AdaLomo's pass count comes back from its metadata.
TEST_CASE("in-backward updates (LOMO, AdaLomo): each parameter as its gradient completes, the gradient dropped") {
  Tensor p = Tensor::from_floats({1.0f, 2.0f, 3.0f}, {3}), q = Tensor::from_floats({1.0f, 1.0f}, {2});
  const Tensor x = Tensor::from_floats({0.5f, -1.0f, 2.0f}, {3});
  const Tensor y = Tensor::from_floats({NAN, 1.0f}, {2});
  for (Tensor* t : {&p, &q}) t->set_requires_grad(true);
  Lomo lomo({{"p", &p}, {"q", &q}});
  CHECK(lomo.updates_in_backward());
  {
    LeafReadyHookScope hook(lomo.pass_updates(0.1f));
    backward(add(sum(mul(p, x)), sum(mul(q, y))));  // dp = x, dq = y (not finite)
  }
  CHECK_FALSE(p.grad().defined());
  CHECK_FALSE(q.grad().defined());
  const std::vector<float> updated = p.to_floats();
  for (int i = 0; i < 3; i++) CHECK(updated[i] == doctest::Approx(std::vector<float>{0.95f, 2.1f, 2.8f}[i]).epsilon(1e-7));
  CHECK(q.to_floats() == std::vector<float>{1.0f, 1.0f});  // its gradient was not finite: kept
  CHECK_FALSE(std::isfinite(lomo.step(0.1f)));
  CHECK(lomo.steps_taken() == 1);

  Adafactor adalomo({{"p", &p}}, AdamWConfig{}, /*adalomo=*/true);
  for (int pass = 0; pass < 2; pass++) {  // two micro-batches: two passes, one step
    LeafReadyHookScope hook(adalomo.pass_updates(0.1f));
    backward(sum(mul(p, x)));
  }
  CHECK(adalomo.step(0.1f) == doctest::Approx(std::sqrt(2 * 5.25)));
  CHECK(adalomo.scalar_state().at("adalomo_passes") == "2");
  adalomo.restore_scalar_state({{"adalomo_passes", "7"}});
  CHECK(adalomo.scalar_state().at("adalomo_passes") == "7");
  for (const char* bad : {"0", "x", "99999999999999999999"})
    CHECK_THROWS_WITH(adalomo.restore_scalar_state({{"adalomo_passes", bad}}),
                      "metadata adalomo_passes: expected an integer of at least the steps taken (1; AdaLomo's count of "
                      "backward passes)");
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

// AdamW applies clipping's factor inside its update (AdamWArgs::grad_scale): the parameters come
// out as from clip_grad_norm then an unclipped step, bit for bit, in f32 and 8-bit state (a
// tensor of 5000 elements quantises, one of 7 does not), and the stored gradients stay as they were.
TEST_CASE("AdamW clips inside its update: the same bits as scaling the gradients first") {
  for (AdamWState state : {AdamWState::f32, AdamWState::blockwise_8bit}) {
    const std::vector<Tensor> start{randn({5000}), randn({7})};
    std::vector<Tensor> fused, separate;
    for (const Tensor& t : start) {
      fused.push_back(t.clone());
      separate.push_back(t.clone());
    }
    std::vector<OptimParam> fused_params, separate_params;
    for (size_t i = 0; i < start.size(); i++) {
      fused[i].set_requires_grad(true);
      separate[i].set_requires_grad(true);
      fused_params.push_back({"w" + std::to_string(i), &fused[i], true});
      separate_params.push_back({"w" + std::to_string(i), &separate[i], true});
    }
    AdamW a(fused_params, {0.9f, 0.95f, 1e-8f, 0.1f}, state), b(separate_params, {0.9f, 0.95f, 1e-8f, 0.1f}, state);
    for (int step = 0; step < 3; step++) {
      for (size_t i = 0; i < start.size(); i++) {
        const Tensor g = randn(start[i].shape(), 3.0f);  // norm about 200: clipped to 1
        fused[i].zero_grad();
        separate[i].zero_grad();
        accumulate_grad(*fused[i].autograd_meta(), g.clone());
        accumulate_grad(*separate[i].autograd_meta(), g.clone());
      }
      const std::vector<float> before = fused[0].grad().to_floats();
      const double norm = a.step(1e-2f, 1.0);
      CHECK(norm > 100.0);
      CHECK(fused[0].grad().to_floats() == before);
      CHECK(clip_grad_norm({&separate[0], &separate[1]}, 1.0) == norm);
      b.step(1e-2f, 0.0);
      for (size_t i = 0; i < start.size(); i++) CHECK(fused[i].to_floats() == separate[i].to_floats());
    }
  }
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
  // Axolotl's cosine_constant_lr_ratio: the floor at int(0.5 x 100) = 50, then held; without a
  // floor (min_lr_ratio 0) Axolotl ignores it.
  LrSchedule held{"cosine", 1.0, 10, 100, 0.1, 0.5};
  CHECK(held.lr(30) == doctest::Approx(0.55));
  CHECK(held.lr(50) == doctest::Approx(0.1));
  CHECK(held.lr(80) == doctest::Approx(0.1));
  // Its end at or before the warmup's: Axolotl's progress (min(step, end) - warmup) / 1 is a
  // non-positive whole number, so after the warmup the rate stays at the top (an even distance)
  // or the floor (an odd one) from the warmup's end on.
  LrSchedule even{"cosine", 1.0, 2, 10, 0.1, 0.2}, odd{"cosine", 1.0, 2, 10, 0.1, 0.1};
  for (int64_t step = 2; step < 10; step++) {
    CHECK(even.lr(step) == doctest::Approx(1.0));
    CHECK(odd.lr(step) == doctest::Approx(0.1));
  }
  LrSchedule unheld{"cosine", 1.0, 10, 100, 0.0, 0.5};
  CHECK(unheld.lr(55) == doctest::Approx(0.5));
  LrSchedule lin{"linear", 2.0, 0, 100, 0.0};
  CHECK(lin.lr(0) == doctest::Approx(2.0));
  CHECK(lin.lr(75) == doctest::Approx(0.5));
  // As transformers' get_scheduler: "constant" ignores the warmup, "constant_with_warmup" keeps it
  // ([2.0] * 6 and [0.0, 0.5, 1.0, 1.5, 2.0, 2.0] for lr 2, 4 warmup steps).
  LrSchedule con{"constant", 2.0, 4, 100, 0.0};
  CHECK(con.lr(0) == 2.0);
  CHECK(con.lr(2) == 2.0);
  LrSchedule warm{"constant_with_warmup", 2.0, 4, 100, 0.0};
  for (int64_t step = 0; step < 6; step++) CHECK(warm.lr(step) == doctest::Approx(std::vector<double>{0, 0.5, 1, 1.5, 2, 2}[step]));
  // cosine_with_restarts with transformers' one cycle: the cosine without Axolotl's floor, then 0
  // past the last step (polynomial and inverse_sqrt: test_hf_trajectory, against the Trainer).
  LrSchedule restarts{"cosine_with_restarts", 1.0, 10, 110, 0.1};
  CHECK(restarts.lr(60) == doctest::Approx(0.5));
  CHECK(restarts.lr(110) == 0.0);
  CHECK(restarts.lr(120) == 0.0);
}

TEST_CASE("rex: Axolotl's RexLR, rate by rate (tools/make_rex_reference.py on its source)") {
  struct Case {
    int64_t warmup, total;
    double ratio;
    std::vector<double> rates;
  };
  const Case cases[] = {
      {2, 10, 0.0, {0.0005, 0.001, 0.000985915493, 0.0009677419355, 0.0009433962264, 0.0009090909091, 0.0008571428571,
                    0.0007692307692, 0.0005882352941, 0.0}},
      {0, 7, 0.1, {0.0009852459016, 0.0009653846154, 0.0009372093023, 0.0008941176471, 0.00082, 0.0006625, 0.0001}},
      {3, 12, 0.05, {0.0003333333333, 0.0006666666667, 0.001, 0.0009882716049, 0.0009736111111, 0.0009547619048,
                     0.0009296296296, 0.0008944444444, 0.0008416666667, 0.0007537037037, 0.0005777777778, 5e-05}}};
  for (const Case& c : cases) {
    CAPTURE(c.total);
    LrSchedule rex;
    rex.kind = "rex";
    rex.base_lr = 1e-3;
    rex.warmup_steps = c.warmup;
    rex.total_steps = c.total;
    rex.min_lr_ratio = c.ratio;
    for (int64_t step = 0; step < c.total; step++) CHECK(rex.lr(step) == doctest::Approx(c.rates[step]).epsilon(1e-9));
  }
}

namespace {
// Two identical parameter sets, one per optimizer: a large weight (quantised) and a small norm.
struct TwinParams {
  Tensor w, norm;
  explicit TwinParams(const Tensor& w0, const Tensor& n0) : w(w0.clone()), norm(n0.clone()) {
    w.set_requires_grad(true);
    norm.set_requires_grad(true);
  }
  std::vector<OptimParam> params() { return {{"w", &w, true}, {"norm", &norm, false}}; }
  void set_grads(const Tensor& gw, const Tensor& gn) {
    w.zero_grad();
    norm.zero_grad();
    accumulate_grad(*w.autograd_meta(), gw);
    accumulate_grad(*norm.autograd_meta(), gn);
  }
};
}  // namespace

TEST_CASE("AdamW 8-bit: updates within a band of f32 AdamW's, exact resume, a quarter of the bytes") {
  const Shape big{3, 8 * kQuantBlock + 100};  // blocks that cross rows, the last one short
  const Tensor w0 = randn(big), n0 = randn({64});
  TwinParams a(w0, n0), b(w0, n0), c(w0, n0);
  const AdamWConfig config{0.9f, 0.999f, 1e-8f, 0.01f};
  AdamW f32(a.params(), config), q8(b.params(), config, AdamWState::blockwise_8bit);
  std::vector<std::pair<Tensor, Tensor>> grads;
  for (int t = 0; t < 8; t++) grads.emplace_back(randn(big), randn({64}));
  const float lr = 1e-3f;
  for (int t = 0; t < 5; t++) {
    a.set_grads(grads[t].first, grads[t].second);
    b.set_grads(grads[t].first, grads[t].second);
    f32.step(lr);
    q8.step(lr);
  }
  // Band: after 5 steps on noise gradients each element moved by up to 5 lr. The 8-bit moments
  // move it by the same within 0.25 lr (measured 0.14: elements whose small v sits in a coarse
  // decade of its block) and within 2% of the whole movement in norm (measured 1.1%).
  std::vector<float> p0 = w0.to_floats(), pf = a.w.to_floats(), pq = b.w.to_floats();
  double moved = 0.0, diff = 0.0, worst = 0.0;
  for (size_t i = 0; i < p0.size(); i++) {
    moved += double(pf[i] - p0[i]) * (pf[i] - p0[i]);
    diff += double(pq[i] - pf[i]) * (pq[i] - pf[i]);
    worst = std::max(worst, double(std::fabs(pq[i] - pf[i])));
  }
  MESSAGE("8-bit vs f32 after 5 steps: max |diff| / lr = " << worst / lr
                                                          << ", |diff| / |movement| = " << std::sqrt(diff / moved));
  CHECK(worst <= 0.25 * lr);
  CHECK(std::sqrt(diff / moved) <= 0.02);
  CHECK(max_abs_diff(a.norm, b.norm) == 0.0f);  // under kMin8bitSize: the same f32 update

  // Exact resume: a fresh optimizer given the exported state continues bit for bit.
  std::map<std::string, Tensor> saved;
  q8.export_state([&saved](const std::string& name, const Tensor& t) { saved[name] = t.clone(); });
  CHECK(saved.size() == q8.state_table().size());
  CHECK(saved.count("w.exp_avg.codes") == 1);
  CHECK(saved.at("w.exp_avg.codes").dtype() == DType::u8);
  CHECK(saved.at("w.exp_avg_sq.absmax").numel() == blocks_of(3 * (8 * kQuantBlock + 100)));
  CHECK(saved.count("norm.exp_avg") == 1);
  c.w.copy_from(b.w);
  c.norm.copy_from(b.norm);
  AdamW resumed(c.params(), config, AdamWState::blockwise_8bit);
  resumed.import_state([&](const std::string& name, const Shape& shape, DType dtype, int64_t begin, int64_t count) {
    const Tensor& t = saved.at(name);
    REQUIRE((t.shape() == shape && t.dtype() == dtype));
    return t.reshape({t.numel()}).narrow(0, begin, count);
  });
  resumed.set_steps_taken(q8.steps_taken());
  for (int t = 5; t < 8; t++) {
    b.set_grads(grads[t].first, grads[t].second);
    c.set_grads(grads[t].first, grads[t].second);
    q8.step(lr);
    resumed.step(lr);
  }
  CHECK(max_abs_diff(b.w, c.w) == 0.0f);
  CHECK(max_abs_diff(b.norm, c.norm) == 0.0f);

  // State bytes: u8 codes + 4 bytes per kQuantBlock elements vs 8 bytes per element.
  const double ratio = double(f32.state_bytes()) / q8.state_bytes();
  MESSAGE("state bytes: f32 " << f32.state_bytes() << ", 8-bit " << q8.state_bytes() << " (" << ratio << "x)");
  CHECK(ratio > 3.8);
  CHECK(ratio <= 4.0);
}
