// Every op on the CPU backend but the losses (test_cross_entropy): forward against a naive
// reference, backward against central finite differences (tolerances in test_util.h: |err| <=
// 2e-3 + 2e-2 |numeric|, eps 1e-2).
// Sizes like 7, 13 and 33 are deliberately not multiples of any block or vector width.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "engine/backend.h"
#include "engine/cpu/cpu_simd_math.h"
#include "engine/ops.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {
// Naive reference: out[b] = op(a[b]) @ op(b[b]) with a batch of `batch` matrices (b shared if 2D).
std::vector<float> naive_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  std::vector<float> A = a.to_floats(), Bv = b.to_floats();
  int64_t ar = a.size(-2), ac = a.size(-1), br = b.size(-2), bc = b.size(-1);
  int64_t batch = a.numel() / (ar * ac);
  int64_t m = ta ? ac : ar, k = ta ? ar : ac, n = tb ? br : bc;
  std::vector<float> out(batch * m * n);
  for (int64_t x = 0; x < batch; x++) {
    const float* pa = A.data() + x * ar * ac;
    const float* pb = Bv.data() + (b.dim() == 2 ? 0 : x * br * bc);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double acc = 0.0;
        for (int64_t p = 0; p < k; p++)
          acc += double(ta ? pa[p * ac + i] : pa[i * ac + p]) * (tb ? pb[j * bc + p] : pb[p * bc + j]);
        out[(x * m + i) * n + j] = static_cast<float>(acc);
      }
  }
  return out;
}

void check_close(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  REQUIRE(got.size() == want.size());
  float worst = 0.0f;
  for (size_t i = 0; i < got.size(); i++) worst = std::max(worst, std::fabs(got[i] - want[i]));
  CHECK(worst <= tol);
}
}  // namespace

TEST_CASE("matmul: every transpose combination, batched and shared B, against a naive loop") {
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int batched_b = 0; batched_b < 2; batched_b++) {
        CAPTURE(ta);
        CAPTURE(tb);
        CAPTURE(batched_b);
        const int64_t B = 3, M = 7, K = 13, N = 5;
        Shape sa = ta ? Shape{B, K, M} : Shape{B, M, K};
        Shape sb = tb ? Shape{N, K} : Shape{K, N};
        if (batched_b) sb.insert(sb.begin(), B);
        Tensor a = randn(sa), b = randn(sb);
        check_close(matmul(a, b, ta, tb).to_floats(), naive_matmul(a, b, ta, tb), 1e-4f);
        check_gradients([&](const std::vector<Tensor>& in) { return matmul(in[0], in[1], ta, tb); },
                        {a, b});
      }
}

// bfloat16: true on the CPU (which computes in f32): a bf16 weight whose gradient is kept in f32
// (grad_in_f32) is widened for an f32 GEMM; the output and d(x) are linear(x, cast(w))'s bit for
// bit, and d(w) = dy^T x is written in f32 (the cast's backward would round it to bf16), added
// in place by a second micro-batch. Weights of x's dtype take linear itself.
TEST_CASE("master_linear: a bf16 weight's f32 gradient, the outputs of linear on its widened copy") {
  const Tensor x = randn({3, 7, 33}), dy = randn({3, 7, 65});
  const std::vector<float> dw = naive_matmul(dy.reshape({21, 65}), x.reshape({21, 33}), true, false);
  const Tensor w16 = randn({65, 33}, 0.5f).to(DType::bf16);
  Tensor xa = x.clone(), xb = x.clone(), wa = w16.clone(), wb = w16.clone();
  for (Tensor* t : {&xa, &xb, &wa, &wb}) t->set_requires_grad(true);
  wa.autograd_meta()->grad_in_f32 = true;
  const Tensor fused = master_linear(xa, wa);
  backward(fused, dy);  // each graph's backward before the next is recorded
  const Tensor unfused = linear(xb, cast(wb, DType::f32));
  backward(unfused, dy);
  CHECK(fused.to_floats() == unfused.to_floats());
  CHECK(xa.grad().to_floats() == xb.grad().to_floats());
  REQUIRE(wa.grad().dtype() == DType::f32);
  check_close(wa.grad().to_floats(), dw, 1e-4f);
  CHECK(wb.grad().dtype() == DType::bf16);  // what the cast path would have kept
  backward(master_linear(xa, wa), dy);  // a second micro-batch adds into it
  std::vector<float> twice = dw;
  for (float& v : twice) v *= 2.0f;
  check_close(wa.grad().to_floats(), twice, 2e-4f);
  // An f32 weight: linear itself, gradients by finite differences.
  check_gradients([](const std::vector<Tensor>& in) { return master_linear(in[0], in[1]); },
                  {randn({2, 5, 7}), randn({9, 7})});
  CHECK_THROWS(master_linear(x, randn({65, 34}).to(DType::bf16)));  // widths that do not fit
}

TEST_CASE("matmul: mismatched inner dimensions are refused") {
  CHECK_THROWS(matmul(randn({3, 4}), randn({5, 6})));
}

TEST_CASE("add and mul: values and gradients") {
  Tensor a = randn({7, 13}), b = randn({7, 13});
  std::vector<float> x = a.to_floats(), y = b.to_floats(), s(x.size()), p(x.size());
  for (size_t i = 0; i < x.size(); i++) s[i] = x[i] + y[i], p[i] = x[i] * y[i];
  check_close(add(a, b).to_floats(), s, 0.0f);
  check_close(mul(a, b).to_floats(), p, 0.0f);
  check_gradients([](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {a, b});
  check_gradients([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }, {a, b});
}

TEST_CASE("add_scaled: a + s * b; gradients") {
  Tensor a = randn({5, 9}), b = randn({5, 9});
  std::vector<float> x = a.to_floats(), y = b.to_floats(), want(x.size());
  for (size_t i = 0; i < x.size(); i++) want[i] = x[i] + 0.37f * y[i];
  check_close(add_scaled(a, b, 0.37f).to_floats(), want, 1e-6f);
  check_gradients([](const std::vector<Tensor>& in) { return add_scaled(in[0], in[1], 0.37f); }, {a, b});
}

TEST_CASE("dropout: keeps about 1 - p, scales by 1 / (1 - p), one mask per seed; gradients") {
  Tensor x = randn({64, 129});
  const float p = 0.3f;
  std::vector<float> in = x.to_floats(), out = dropout(x, p, 99).to_floats();
  int64_t kept = 0;
  for (size_t i = 0; i < in.size(); i++) {
    if (out[i] != 0.0f) {
      kept++;
      CHECK(out[i] == doctest::Approx(in[i] / (1 - p)).epsilon(1e-6));
    }
  }
  CHECK(double(kept) / in.size() == doctest::Approx(1 - p).epsilon(0.03));
  CHECK(dropout(x, p, 99).to_floats() == out);  // the same seed: the same mask
  CHECK(dropout(x, p, 100).to_floats() != out);
  CHECK(dropout(x, 0.0f, 99).shares_storage(x));
  CHECK_THROWS(dropout(x, 1.0f, 99));
  // The backward uses the forward's mask: exact, so the finite differences agree everywhere.
  check_gradients([](const std::vector<Tensor>& in) { return dropout(in[0], 0.5f, 7); }, {randn({7, 13})});
}

TEST_CASE("add_uniform_noise: NEFTune's uniform(-m, m) per element, one draw per seed; the gradient passes") {
  Tensor x = randn({64, 50});
  const std::vector<float> xv = x.to_floats(), y = add_uniform_noise(x, 0.25f, 5).to_floats();
  double sum = 0, sum_sq = 0;
  float largest = 0;
  for (size_t i = 0; i < y.size(); i++) {
    const double d = double(y[i]) - xv[i];
    sum += d, sum_sq += d * d;
    largest = std::max(largest, float(std::fabs(d)));
  }
  const double n = double(y.size());
  CHECK(largest <= 0.25f);
  CHECK(std::fabs(sum / n) < 0.01);                              // mean 0 (sd of the mean 0.0020)
  CHECK(sum_sq / n == doctest::Approx(0.25 * 0.25 / 3).epsilon(0.05));  // the variance of uniform(-m, m)
  CHECK(add_uniform_noise(x, 0.25f, 5).to_floats() == y);
  CHECK(add_uniform_noise(x, 0.25f, 6).to_floats() != y);
  CHECK(add_uniform_noise(x, 0.0f, 5).shares_storage(x));
  check_gradients([](const std::vector<Tensor>& in) { return add_uniform_noise(in[0], 0.5f, 3); }, {randn({5, 7})});
}

TEST_CASE("sum, sum_squares and scale_") {
  Tensor a = randn({33});
  std::vector<float> x = a.to_floats();
  double s = 0, ss = 0;
  for (float v : x) s += v, ss += double(v) * v;
  CHECK(sum(a).item() == doctest::Approx(s).epsilon(1e-6));
  CHECK(sum_squares(a) == doctest::Approx(ss).epsilon(1e-12));
  check_gradients([](const std::vector<Tensor>& in) { return sum(in[0]); }, {a});
  Tensor c = a.clone();
  scale_(c, 0.5f);
  CHECK(c.to_floats()[3] == x[3] * 0.5f);
  // By a factor held in a tensor (a device scalar on a GPU).
  Tensor d = a.clone();
  scale_(d, Tensor::full({}, -1.5f, DType::f32));
  CHECK(d.to_floats()[5] == x[5] * -1.5f);
  CHECK_THROWS(scale_(d, Tensor::full({2}, 1.0f, DType::f32)));
  // Many tensors' sum of squares: the single sums added, in f64, with one host read.
  Tensor b = randn({7, 5});
  const uint64_t reads = host_reads();
  const double both = sum_squares(std::vector<Tensor>{a, b});
  CHECK(host_reads() - reads == 1);
  CHECK(both == doctest::Approx(ss + sum_squares(b)).epsilon(1e-12));
  // A HostRead counts one read and the host's time inside it (llm_bench step's waits on a GPU).
  const uint64_t reads_before = host_reads();
  const double seconds = host_read_seconds();
  {
    const HostRead read;
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  CHECK(host_reads() - reads_before == 1);
  CHECK(host_read_seconds() - seconds >= 0.003);
  CHECK(sum_squares(std::vector<Tensor>{}) == 0.0);
  // All tensors' chunks summed in one parallel loop (the global gradient norm's), each tensor's
  // total then added in order: the bits of the tensors summed one by one.
  Tensor big = randn({3, 70000});  // four 65536-element chunks
  const std::vector<Tensor> many{b, big, a, big.narrow(0, 1, 1)};
  double one_by_one = 0.0;
  for (const Tensor& t : many) one_by_one += sum_squares(t);
  CHECK(sum_squares(many) == one_by_one);
}

TEST_CASE("scale_columns: x * s column by column over any leading dims; gradients for both") {
  Tensor x = randn({3, 4, 5}), s = randn({5});
  const std::vector<float> xv = x.to_floats(), sv = s.to_floats(), y = scale_columns(x, s).to_floats();
  for (size_t i = 0; i < xv.size(); i++) CHECK(y[i] == xv[i] * sv[i % 5]);
  check_gradients([](const std::vector<Tensor>& in) { return scale_columns(in[0], in[1]); }, {x, s});
  CHECK_THROWS(scale_columns(x, randn({4})));
  CHECK_THROWS(scale_columns(x, s.to(DType::bf16)));
}

TEST_CASE("row_inverse_norms: 1 / the L2 norm of every row, in f64") {
  Tensor w = randn({6, 9});
  const std::vector<float> v = w.to_floats(), got = row_inverse_norms(w).to_floats();
  REQUIRE(got.size() == 6);
  for (int r = 0; r < 6; r++) {
    double ss = 0;
    for (int c = 0; c < 9; c++) ss += double(v[r * 9 + c]) * v[r * 9 + c];
    CHECK(got[r] == doctest::Approx(1.0 / std::sqrt(ss)).epsilon(1e-7));
  }
}

TEST_CASE("fast_exp: within 2^-23 relative of exp on normal results; -inf, inf, NaN, subnormals") {
  // The sweep runs through exp_sub, the SIMD loop the kernels call, and through fast_exp itself.
  const int64_t n = 2000001;
  std::vector<float> x(n), y(n);
  for (int64_t i = 0; i < n; i++) x[i] = -87.3f + 176.0f * static_cast<float>(i) / (n - 1);
  exp_sub(x.data(), 0.0f, y.data(), n);
  double worst_loop = 0, worst_scalar = 0;  // the loop may run FMA code, the scalar not
  for (int64_t i = 0; i < n; i++) {
    const double want = std::exp(static_cast<double>(x[i]));
    if (want < 1.1754943508222875e-38 || want > 3.4028234663852886e38) continue;  // normal results
    worst_loop = std::max(worst_loop, std::fabs(y[i] - want) / want);
    worst_scalar = std::max(worst_scalar, std::fabs(fast_exp(x[i]) - want) / want);
  }
  CHECK(worst_loop < std::ldexp(1.0, -23));
  CHECK(worst_scalar < std::ldexp(1.0, -23));
  CHECK(fast_exp(-INFINITY) == 0.0f);
  CHECK(fast_exp(-104.0f) == 0.0f);
  CHECK(fast_exp(INFINITY) == INFINITY);
  CHECK(fast_exp(89.0f) == INFINITY);
  CHECK(std::isnan(fast_exp(NAN)));
  CHECK(fast_exp(0.0f) == 1.0f);
  for (float s : {-88.0f, -95.0f, -103.0f})  // subnormal results: within the smallest step
    CHECK(std::fabs(fast_exp(s) - std::exp(s)) <= std::ldexp(1.0f, -149));
  CHECK(fast_sigmoid(-INFINITY) == 0.0f);
  CHECK(fast_sigmoid(INFINITY) == 1.0f);
  CHECK(fast_sigmoid(0.0f) == 0.5f);
}

TEST_CASE("max_of and exp_sub_sum: a softmax row's SIMD reductions, any length, masked entries") {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int64_t n : {0, 1, 7, 8, 31, 64, 513}) {
    CAPTURE(n);
    std::vector<float> x(n), y(n);
    for (float& v : x) v = normal(rng);
    for (int64_t i = 0; i < n; i += 3) x[i] = -INFINITY;  // masked scores
    float want_max = -INFINITY;
    for (float v : x) want_max = std::max(want_max, v);
    CHECK(max_of(x.data(), n) == want_max);
    const float c = n > 1 ? want_max : 0.0f;
    double want_sum = 0;
    for (float v : x) want_sum += std::exp(static_cast<double>(v) - c);
    const float sum = exp_sub_sum(x.data(), c, y.data(), n);
    CHECK(sum == doctest::Approx(want_sum).epsilon(1e-6));
    for (int64_t i = 0; i < n; i++) {  // exact 0 where masked
      const float e = std::exp(x[i] - c);
      CHECK(std::fabs(y[i] - e) <= 1e-6f * e);
    }
  }
  const float peak[] = {-INFINITY, 3.0f, -INFINITY, 2.0f, 9.5f, -1.0f, 0.0f, 9.25f, 1.0f};
  CHECK(max_of(peak, 9) == 9.5f);  // lanes and the remainder both hold candidates
  CHECK(max_of(peak, 4) == 3.0f);
}

TEST_CASE("reshape and cast: differentiable, and a bf16 round trip keeps 8 bits of mantissa") {
  Tensor a = randn({6, 7});
  check_gradients([](const std::vector<Tensor>& in) { return reshape(in[0], {7, 3, 2}); }, {a});
  // Rounding to bf16 is piecewise constant, so finite differences say nothing: the backward of a
  // cast is the cast of the incoming gradient back to the input's dtype.
  Tensor leaf = a.clone();
  leaf.set_requires_grad(true);
  Tensor seed = randn({6, 7}).to(DType::bf16);
  backward(cast(leaf, DType::bf16), seed);
  CHECK(max_abs_diff(leaf.grad(), seed.to(DType::f32)) == 0.0f);
  std::vector<float> x = a.to_floats(), y = cast(a, DType::bf16).to_floats();
  for (size_t i = 0; i < x.size(); i++) CHECK(std::fabs(x[i] - y[i]) <= std::fabs(x[i]) / 256.0f);
}

TEST_CASE("embedding: gathers rows; backward adds repeated ids") {
  Tensor table = randn({11, 5});
  Tensor ids = Tensor::from_ints({3, 0, 3, 10, 7, 3}, {2, 3});
  Tensor out = embedding(ids, table);
  CHECK(out.shape() == Shape{2, 3, 5});
  std::vector<float> t = table.to_floats(), o = out.to_floats();
  for (int c = 0; c < 5; c++) CHECK(o[3 * 5 + c] == t[10 * 5 + c]);
  check_gradients([&](const std::vector<Tensor>& in) { return embedding(in[0], in[1]); }, {ids, table});
  CHECK_THROWS(embedding(Tensor::from_ints({11}, {1}), table));
}

TEST_CASE("replace_rows: the rows set, the rest the table's; gradients of both") {
  const Tensor table = randn({11, 5}), rows = randn({3, 5});
  const Tensor index = Tensor::from_ints({7, 0, 10}, {3});
  const std::vector<float> out = replace_rows(table, index, rows).to_floats(), t = table.to_floats(),
                           r = rows.to_floats();
  for (int64_t v = 0; v < 11; v++)
    for (int64_t c = 0; c < 5; c++) {
      const int64_t slot = v == 7 ? 0 : v == 0 ? 1 : v == 10 ? 2 : -1;
      CHECK(out[v * 5 + c] == (slot < 0 ? t[v * 5 + c] : r[slot * 5 + c]));
    }
  check_gradients([&](const std::vector<Tensor>& in) { return replace_rows(in[0], index, in[1]); }, {table, rows});
  CHECK_THROWS(replace_rows(table, index, randn({2, 5})));
  CHECK_THROWS(replace_rows(table, Tensor::from_ints({11}, {1}), randn({1, 5})));
}

// A table that already has a gradient (a tied lm_head's use, an earlier micro-batch) gets the
// rows added into it in place (grad_to_add_into): the same gradient as an untied copy's, summed;
// with padding_idx the padding row keeps the other use's gradient and gets nothing from the lookup.
TEST_CASE("embedding: a tied table's gradient adds both uses; padding_idx keeps the other one's") {
  const Tensor start = randn({11, 5}), x = randn({4, 5});
  const Tensor ids = Tensor::from_ints({3, 0, 3, 10, 2, 3}, {6});
  const Tensor rows_seed = randn({6, 5}), logits_seed = randn({4, 11});
  for (int64_t padding : {-1, 2}) {
    CAPTURE(padding);
    Tensor tied = start.clone(), as_head = start.clone(), as_table = start.clone();
    for (Tensor* t : {&tied, &as_head, &as_table}) t->set_requires_grad(true);
    backward(linear(x, tied), logits_seed);  // lm_head's use first, as in a step's backward
    const void* buffer = tied.grad().data_ptr();
    backward(embedding(ids, tied, padding), rows_seed);
    if (padding < 0) CHECK(tied.grad().data_ptr() == buffer);  // added in place
    backward(linear(x, as_head), logits_seed);
    backward(embedding(ids, as_table, padding), rows_seed);
    const std::vector<float> got = tied.grad().to_floats(), head = as_head.grad().to_floats(),
                             table = as_table.grad().to_floats();
    for (size_t i = 0; i < got.size(); i++) CHECK(got[i] == doctest::Approx(head[i] + table[i]).epsilon(1e-6));
    for (int c = 0; c < 5; c++) {
      if (padding == 2) CHECK(table[2 * 5 + c] == 0.0f);  // token 2 is the padding row
      else CHECK(table[2 * 5 + c] != 0.0f);
    }
  }
}

TEST_CASE("rmsnorm: matches the formula; gradients for x and weight") {
  const float eps = 1e-5f;
  Tensor x = randn({2, 7, 33}), w = randn({33});
  std::vector<float> xv = x.to_floats(), wv = w.to_floats(), want(xv.size());
  for (int r = 0; r < 14; r++) {
    double ss = 0;
    for (int c = 0; c < 33; c++) ss += double(xv[r * 33 + c]) * xv[r * 33 + c];
    double inv = 1.0 / std::sqrt(ss / 33 + eps);
    for (int c = 0; c < 33; c++) want[r * 33 + c] = float(xv[r * 33 + c] * inv * wv[c]);
  }
  check_close(rmsnorm(x, w, eps).to_floats(), want, 1e-5f);
  check_gradients([&](const std::vector<Tensor>& in) { return rmsnorm(in[0], in[1], eps); }, {x, w});
}

TEST_CASE("add_rmsnorm: the sum and its rmsnorm as add then rmsnorm; exact gradients") {
  const float eps = 1e-5f;
  Tensor x = randn({3, 5, 33}), r = randn({3, 5, 33}), w = randn({33});
  // Both outputs feed the result, so x's gradient is the sum's own plus the norm's.
  auto fused = [&](const std::vector<Tensor>& in) {
    AddNorm o = add_rmsnorm(in[0], in[1], in[2], eps);
    return add_scaled(o.normed, o.sum, 0.7f);
  };
  auto unfused = [&](const std::vector<Tensor>& in) {
    Tensor h = add(in[0], in[1]);
    return add_scaled(rmsnorm(h, in[2], eps), h, 0.7f);
  };
  check_gradients(fused, {x, r, w});
  check_gradients([&](const std::vector<Tensor>& in) { return add_rmsnorm(in[0], in[1], in[2], eps).normed; },
                  {x, r, w});  // the sum unused: its gradient arrives as zeros
  // Against the unfused ops: the same values and gradients, bit for bit (the fused backward rounds
  // the norm's part as autograd's separate accumulation does).
  std::vector<Tensor> a{x.clone(), r.clone(), w.clone()}, b{x.clone(), r.clone(), w.clone()};
  for (std::vector<Tensor>* in : {&a, &b})
    for (Tensor& t : *in) t.set_requires_grad(true);
  Tensor seed = randn(x.shape());
  Tensor out_a = fused(a);
  backward(out_a, seed);  // one graph at a time: a backward runs the whole tape
  Tensor out_b = unfused(b);
  backward(out_b, seed);
  check_close(out_a.to_floats(), out_b.to_floats(), 0.0f);
  for (int i = 0; i < 3; i++) {
    CAPTURE(i);
    check_close(a[i].grad().to_floats(), b[i].grad().to_floats(), 0.0f);
  }
  CHECK_THROWS(add_rmsnorm(x, randn({3, 5, 32}), w, eps));
}

TEST_CASE("rope_inv_freq: Llama 3.1 scaling (factor 8, low 1, high 4, original 8192)") {
  RopeConfig c{500000.0f, 8.0f, 1.0f, 4.0f, 8192};
  std::vector<float> plain = rope_inv_freq({500000.0f}, 128), scaled = rope_inv_freq(c, 128);
  REQUIRE(scaled.size() == 64);
  for (int i = 0; i < 64; i++) {
    double base = 1.0 / std::pow(500000.0, 2.0 * i / 128.0);
    CHECK(plain[i] == doctest::Approx(base).epsilon(1e-6));
    double wavelen = 2 * M_PI / base, want = base;
    if (wavelen > 8192.0) want = base / 8;  // long wavelengths: slowed by the factor
    else if (wavelen >= 2048.0) {         // the band between: smooth interpolation
      double smooth = (8192.0 / wavelen - 1.0) / 3.0;
      want = (1 - smooth) * base / 8 + smooth * base;
    }
    CHECK(scaled[i] == doctest::Approx(want).epsilon(1e-5));
  }
  CHECK(scaled[0] == plain[0]);            // the fastest frequency is untouched
  CHECK(scaled[63] == plain[63] / 8.0f);  // the slowest is divided by the factor
}

TEST_CASE("rope_inv_freq: linear and YaRN scaling as HF's (YaRN: factor 4, beta 32 / 1, original 8192)") {
  std::vector<float> plain = rope_inv_freq({500000.0f}, 128);
  RopeConfig linear{500000.0f, 4.0f};
  linear.type = RopeType::linear;
  RopeConfig yarn = linear;
  yarn.type = RopeType::yarn;
  const std::vector<float> slowed = rope_inv_freq(linear, 128), ramped = rope_inv_freq(yarn, 128);
  // HF's correction range: dims floor(128 ln(8192 / (32 2pi)) / (2 ln 500000)) = 18 to
  // ceil(128 ln(8192 / (1 2pi)) / (2 ln 500000)) = 35; below it a frequency is kept, above it slowed.
  for (int i = 0; i < 64; i++) {
    CAPTURE(i);
    CHECK(slowed[i] == doctest::Approx(plain[i] / 4.0).epsilon(1e-6));
    const double ramp = std::clamp((i - 18.0) / (35.0 - 18.0), 0.0, 1.0);
    CHECK(ramped[i] == doctest::Approx(plain[i] / 4.0 * ramp + plain[i] * (1 - ramp)).epsilon(1e-5));
  }
  CHECK(ramped[18] == plain[18]);
  CHECK(ramped[35] == doctest::Approx(plain[35] / 4.0f).epsilon(1e-6));
  // The attention factor: 0.1 ln(factor) + 1, or mscale's ratio, or as given; 1 for the others.
  CHECK(rope_attention_factor(yarn) == doctest::Approx(0.1 * std::log(4.0) + 1.0).epsilon(1e-6));
  CHECK(rope_attention_factor(linear) == 1.0f);
  yarn.mscale = 0.707f, yarn.mscale_all_dim = 0.707f;
  CHECK(rope_attention_factor(yarn) == doctest::Approx(1.0).epsilon(1e-6));
  yarn.attention_factor = 1.5f;
  CHECK(rope_attention_factor(yarn) == 1.5f);
  // truncate false: the ramp's ends are the correction dims themselves, not rounded (transformers
  // 5); beta_fast 16 and beta_slow 2 over an original 8192 at head_dim 64.
  RopeConfig exact{500000.0f, 2.0f};
  exact.type = RopeType::yarn, exact.truncate = false, exact.beta_fast = 16.0f, exact.beta_slow = 2.0f;
  const std::vector<float> base64 = rope_inv_freq({500000.0f}, 64), exact_freqs = rope_inv_freq(exact, 64);
  const auto correction_dim = [](double rotations) {
    return 64.0 * std::log(8192.0 / (rotations * 2.0 * M_PI)) / (2.0 * std::log(500000.0));
  };
  const double low = correction_dim(16.0), high = correction_dim(2.0);
  REQUIRE(low != std::floor(low));  // a ramp that rounding would move
  for (int i = 0; i < 32; i++) {
    CAPTURE(i);
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    CHECK(exact_freqs[i] == doctest::Approx(base64[i] / 2.0 * ramp + base64[i] * (1 - ramp)).epsilon(1e-6));
  }
}

TEST_CASE("rope: YaRN's attention factor scales the rotation and its gradient") {
  RopeConfig yarn{10000.0f, 4.0f, 1.0f, 4.0f, 16};
  yarn.type = RopeType::yarn;
  RopeConfig same_freqs = yarn;
  same_freqs.attention_factor = 1.0f;  // the same frequencies, no factor
  Tensor x = randn({1, 4, 2, 8});
  const Tensor pos = Tensor::from_ints({0, 1, 5, 9}, {1, 4});
  const std::vector<float> scaled = rope(x, pos, yarn).to_floats(), plain = rope(x, pos, same_freqs).to_floats();
  const float m = rope_attention_factor(yarn);
  REQUIRE(m > 1.0f);
  for (size_t i = 0; i < plain.size(); i++) CHECK(scaled[i] == doctest::Approx(m * plain[i]).epsilon(1e-6));
  check_gradients([&](const std::vector<Tensor>& in) { return rope(in[0], pos, yarn); }, {x});
}

TEST_CASE("rope: HF rotate_half layout, positions per token, llama3 scaling; gradients") {
  RopeConfig c{10000.0f, 8.0f, 1.0f, 4.0f, 32};
  const int64_t B = 2, S = 5, H = 3, D = 8;
  Tensor x = randn({B, S, H, D});
  Tensor pos = Tensor::from_ints({0, 1, 2, 3, 4, 7, 0, 1, 2, 3}, {B, S});
  std::vector<float> f = rope_inv_freq(c, D), xv = x.to_floats(), want(xv.size());
  std::vector<int32_t> p = pos.to_ints();
  for (int64_t bs = 0; bs < B * S; bs++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < D / 2; i++) {
        const float* in = xv.data() + (bs * H + h) * D;
        double a = double(float(p[bs]) * f[i]);
        want[(bs * H + h) * D + i] = float(in[i] * std::cos(a) - in[i + D / 2] * std::sin(a));
        want[(bs * H + h) * D + i + D / 2] = float(in[i + D / 2] * std::cos(a) + in[i] * std::sin(a));
      }
  check_close(rope(x, pos, c).to_floats(), want, 1e-5f);
  check_gradients([&](const std::vector<Tensor>& in) { return rope(in[0], in[1], c); }, {x, pos});
}

TEST_CASE("ssmax_scale and scale_rows: SSMax's factor s * log(max(pos + 1, 2)) + b per query row") {
  Tensor pos = Tensor::from_ints({0, 1, 2, 9, 0, 4095}, {2, 3});
  const std::vector<float> f = ssmax_scale(pos, 0.43f, 0.25f).to_floats();
  const std::vector<int32_t> p = pos.to_ints();
  REQUIRE(f.size() == 6);
  // Positions 0 and 1 both read n = 2 (Axolotl clamps n at 2: log 1 = 0 would zero the scores).
  CHECK(f[0] == f[1]);
  for (size_t i = 0; i < p.size(); i++)
    CHECK(f[i] == 0.43f * std::log(std::max(float(p[i]) + 1.0f, 2.0f)) + 0.25f);
  CHECK_THROWS(ssmax_scale(Tensor::from_floats({1, 2}, {1, 2}), 0.43f, 0.0f));
  Tensor x = randn({6, 3, 4});
  const std::vector<float> xv = x.to_floats(), y = scale_rows(x, ssmax_scale(pos, 0.43f, 0.25f)).to_floats();
  for (size_t i = 0; i < xv.size(); i++) CHECK(y[i] == xv[i] * f[i / 12]);
  const Tensor factors = ssmax_scale(pos, 0.43f, 0.25f);
  check_gradients([&](const std::vector<Tensor>& in) { return scale_rows(in[0], factors); }, {x});
  CHECK_THROWS(scale_rows(x, randn({5})));
}

TEST_CASE("swiglu: silu(gate) * up; gradients") {
  Tensor g = randn({7, 13}), u = randn({7, 13});
  std::vector<float> gv = g.to_floats(), uv = u.to_floats(), want(gv.size());
  for (size_t i = 0; i < gv.size(); i++) want[i] = float(gv[i] / (1 + std::exp(-double(gv[i]))) * uv[i]);
  check_close(swiglu(g, u).to_floats(), want, 1e-5f);
  check_gradients([](const std::vector<Tensor>& in) { return swiglu(in[0], in[1]); }, {g, u});
}

// Naive attention in f64 for the forward check.
std::vector<float> naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  int64_t B = q.size(0), S = q.size(1), H = q.size(2), D = q.size(3), Hkv = k.size(2);
  std::vector<float> Q = q.to_floats(), K = k.to_floats(), V = v.to_floats(), O(Q.size());
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < S; i++) {
        int64_t kh = h / (H / Hkv);
        std::vector<double> s(S, -INFINITY);
        double mx = -INFINITY;
        for (int64_t j = 0; j < S; j++) {
          if (causal && j > i) continue;
          double acc = 0;
          for (int64_t d = 0; d < D; d++)
            acc += double(Q[((b * S + i) * H + h) * D + d]) * K[((b * S + j) * Hkv + kh) * D + d];
          s[j] = acc / std::sqrt(double(D));
          mx = std::max(mx, s[j]);
        }
        double denom = 0;
        for (int64_t j = 0; j < S; j++) denom += std::exp(s[j] - mx);
        for (int64_t d = 0; d < D; d++) {
          double acc = 0;
          for (int64_t j = 0; j < S; j++) acc += std::exp(s[j] - mx) / denom * V[((b * S + j) * Hkv + kh) * D + d];
          O[((b * S + i) * H + h) * D + d] = float(acc);
        }
      }
  return O;
}

TEST_CASE("attention (eager): GQA ratios 1, 2 and 4, causal and not; gradients for q, k, v") {
  for (int64_t ratio : {1, 2, 4})
    for (bool causal : {false, true}) {
      CAPTURE(ratio);
      CAPTURE(causal);
      const int64_t B = 2, S = 7, Hkv = 2, H = Hkv * ratio, D = 6;
      Tensor q = randn({B, S, H, D}), k = randn({B, S, Hkv, D}), v = randn({B, S, Hkv, D});
      check_close(attention(q, k, v, causal).to_floats(), naive_attention(q, k, v, causal), 1e-5f);
      check_gradients([&](const std::vector<Tensor>& in) { return attention(in[0], in[1], in[2], causal); },
                      {q, k, v});
    }
}
