// The tiled attentions on the CPU: flash, S2 and memory-efficient against eager attention and a
// double-precision masked reference, forward and gradients; finite differences; edge tiles
// (S = 1, 63, 65, 130 with 64-wide tiles), GQA 1/4/8, rows that see no key, S2's causality and
// shifted group edges, the allocator's peak at S = 4096, and deterministic backward; the shared
// key spans of engine/attention_mask.h against the reference masks. cuDNN attention on the CPU is
// the flash tiles, bit for bit; masks it has not got are refused.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "engine/attention_mask.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/ops/attention_padding.h"
#include "test/attention_reference.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {

using AttnFn = std::function<Tensor(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& bias)>;

struct Result {
  Tensor out, dq, dk, dv, dbias;
};

// Runs fn on fresh leaves (the bias too, when given) and backpropagates dout.
Result run(const AttnFn& fn, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout,
           const Tensor& bias = Tensor()) {
  Tensor lq = q.clone(), lk = k.clone(), lv = v.clone(), lb;
  for (Tensor* t : {&lq, &lk, &lv}) t->set_requires_grad(true);
  if (bias.defined()) lb = bias.clone().set_requires_grad(true);
  Tensor out = fn(lq, lk, lv, lb);
  backward(out, dout);
  return {out.detach(), lq.grad(), lk.grad(), lv.grad(), lb.defined() ? lb.grad() : Tensor()};
}

void check_close(const Tensor& got, const std::vector<double>& want, double tol) {
  std::vector<float> g = got.to_floats();
  REQUIRE(g.size() == want.size());
  double worst = 0;
  for (size_t i = 0; i < g.size(); i++) worst = std::max(worst, std::fabs(g[i] - want[i]));
  CHECK(worst <= tol);
}

void check_result(const Result& got, const Reference& want) {
  check_close(got.out, want.out, 2e-5);
  check_close(got.dq, want.dq, 1e-4);
  check_close(got.dk, want.dk, 1e-4);
  check_close(got.dv, want.dv, 1e-4);
  if (got.dbias.defined()) check_close(got.dbias, want.dbias, 1e-4);
}

AttnFn eager_fn(bool causal) {
  return [=](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor&) {
    return attention(q, k, v, causal);
  };
}
AttnFn flash_fn(bool causal) {
  return [=](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor&) {
    return flash_attention(q, k, v, causal);
  };
}
AttnFn cudnn_fn(bool causal) {
  return [=](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor&) {
    return cudnn_attention(q, k, v, causal);
  };
}
AttnFn mem_efficient_fn(bool causal, const Tensor& doc_ids = Tensor()) {
  return [=](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias) {
    return mem_efficient_attention(q, k, v, causal, bias, doc_ids);
  };
}
AttnFn s2_fn(int64_t group) {
  return [=](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor&) {
    return s2_attention(q, k, v, group);
  };
}

}  // namespace

TEST_CASE("flash and mem-efficient match eager: causal or not, GQA 1/4/8, edge tiles, D 64/128") {
  for (bool causal : {false, true})
    for (int64_t ratio : {1, 4, 8})
      for (int64_t S : {1, 63, 65, 130})
        for (int64_t D : {64, 128}) {
          CAPTURE(causal);
          CAPTURE(ratio);
          CAPTURE(S);
          CAPTURE(D);
          const int64_t Hkv = ratio == 1 ? 2 : 1, H = Hkv * ratio;
          Tensor q = randn({1, S, H, D}), k = randn({1, S, Hkv, D}), v = randn({1, S, Hkv, D});
          Tensor dout = randn({1, S, H, D});
          Result want = run(eager_fn(causal), q, k, v, dout);
          for (const AttnFn& fn : {flash_fn(causal), mem_efficient_fn(causal)}) {
            Result got = run(fn, q, k, v, dout);
            CHECK(max_abs_diff(got.out, want.out) <= 2e-5f);
            CHECK(max_abs_diff(got.dq, want.dq) <= 1e-4f);
            CHECK(max_abs_diff(got.dk, want.dk) <= 1e-4f);
            CHECK(max_abs_diff(got.dv, want.dv) <= 1e-4f);
          }
        }
}

// CUDA's tiled kernels exist for head_dim 32, 64 and 128: the op pads any other head_dim up to
// one (the small test models' 8, for rl's and sample packing's document masks on a GPU).
TEST_CASE("padded head_dim: the same attention and gradients as the unpadded call") {
  const int64_t B = 2, S = 40, H = 4, Hkv = 2;
  std::vector<int32_t> docs(B * S);
  for (int64_t i = 0; i < B * S; i++) docs[i] = int32_t(i % S < 15 ? 0 : 1);
  const Tensor doc_ids = Tensor::from_ints(docs, {B, S});
  for (const auto& [D, padded] : {std::pair<int64_t, int64_t>{8, 32}, {48, 64}, {100, 128}}) {
    CAPTURE(D);  // 8 -> 32 scales q by exactly 2; 48 -> 64 and 100 -> 128 by an inexact root
    Tensor q = randn({B, S, H, D}), k = randn({B, S, Hkv, D}), v = randn({B, S, Hkv, D});
    Tensor dout = randn({B, S, H, D}), bias = randn({1, H, S, S});
    for (const AttnFn& fn : {flash_fn(true), mem_efficient_fn(true, doc_ids), s2_fn(S / 4)}) {
      const AttnFn at_padded = [&](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& b) {
        return attend_at_head_dim([&](const Tensor& pq, const Tensor& pk, const Tensor& pv) { return fn(pq, pk, pv, b); },
                                  q, k, v, padded);
      };
      const Result want = run(fn, q, k, v, dout, bias), got = run(at_padded, q, k, v, dout, bias);
      REQUIRE(got.out.shape() == q.shape());
      CHECK(max_abs_diff(got.out, want.out) <= 2e-6f);
      CHECK(max_abs_diff(got.dq, want.dq) <= 1e-5f);
      CHECK(max_abs_diff(got.dk, want.dk) <= 1e-5f);
      CHECK(max_abs_diff(got.dv, want.dv) <= 1e-5f);
      if (want.dbias.defined()) CHECK(max_abs_diff(got.dbias, want.dbias) <= 1e-5f);
    }
  }
}

TEST_CASE("eager matches a double-precision reference: causal or not, GQA 1/4, row blocks") {
  for (bool causal : {false, true})
    for (int64_t ratio : {1, 4})
      for (int64_t S : {1, 64, 65, 130}) {  // eager works in blocks of 64 query rows
        CAPTURE(causal);
        CAPTURE(ratio);
        CAPTURE(S);
        const int64_t Hkv = 2, H = Hkv * ratio, D = 64;
        Tensor q = randn({2, S, H, D}), k = randn({2, S, Hkv, D}), v = randn({2, S, Hkv, D});
        Tensor dout = randn({2, S, H, D});
        auto allowed = [&](int64_t, int64_t, int64_t i, int64_t j) { return !causal || j <= i; };
        Reference want = attention_reference(q, k, v, dout, allowed);
        check_result(run(eager_fn(causal), q, k, v, dout), want);
      }
}

TEST_CASE("s2 matches a masked double-precision reference: GQA 1/4/8, groups across tiles") {
  struct Case {
    int64_t S, G;
  };
  for (int64_t ratio : {1, 4, 8})
    for (Case c : {Case{12, 4}, Case{20, 5}, Case{130, 26}, Case{140, 35}, Case{192, 96}, Case{256, 64}})
      for (int64_t D : {64, 128}) {
        CAPTURE(ratio);
        CAPTURE(c.S);
        CAPTURE(c.G);
        CAPTURE(D);
        // Hkv = 1 with ratio 4 or 8: one kv head serves plain and shifted query heads.
        const int64_t Hkv = ratio == 1 ? 2 : 1, H = Hkv * ratio, S = c.S, G = c.G;
        Tensor q = randn({1, S, H, D}), k = randn({1, S, Hkv, D}), v = randn({1, S, Hkv, D});
        Tensor dout = randn({1, S, H, D});
        auto allowed = [&](int64_t, int64_t h, int64_t i, int64_t j) {
          return s2_allowed(H, G, h, i, j);
        };
        Reference want = attention_reference(q, k, v, dout, allowed);
        check_result(run(s2_fn(G), q, k, v, dout), want);
      }
}

// The span arithmetic itself (engine/attention_mask.h, which the CUDA kernels run too): for every
// query, keys() must be exactly the keys the reference mask allows, tiles_meet() must skip
// exactly the (query tile, key tile) pairs with no allowed key, and tiles_inside() must say
// exactly which pairs have every key allowed (the v3 kernel masks only the others), at sizes with
// edge tiles.
TEST_CASE("key spans equal the reference masks: causal, S2 groups, documents, edge tiles") {
  const int64_t B = 2, H = 4;
  for (int64_t S : {1, 8, 20, 28, 63, 64, 65, 128, 192}) {  // 20, 28: S2's odd groups of 5 and 7
    // Row 0: documents of 3, then 5, ... tokens; row 1: one document of the whole row.
    std::vector<int32_t> docs(B * S, 0);
    for (int64_t i = 0, doc = 0, len = 3, left = 3; i < S; i++, left--) {
      if (left == 0) doc++, len += 2, left = len;
      docs[i] = static_cast<int32_t>(doc);
    }
    const Tensor doc_ids = Tensor::from_ints(docs, {B, S});
    for (int kind = 0; kind < 5; kind++) {  // full, causal, S2, documents, causal documents
      AttentionMask mask;
      mask.causal = kind == 1 || kind == 2 || kind == 4;
      const int64_t G = S % 4 == 0 ? S / 4 : 0;
      if (kind == 2) {
        if (G == 0) continue;  // s2_attention refuses such lengths
        mask.s2_group = G;
      }
      if (kind >= 3) mask.doc_ids = doc_ids;
      const MaskView view = mask_view(mask, S, H);
      auto allowed = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
        if (kind == 2) return s2_allowed(H, G, h, i, j);
        const bool same_doc = kind < 3 || docs[b * S + i] == docs[b * S + j];
        return same_doc && (!mask.causal || j <= i);
      };
      CAPTURE(S);
      CAPTURE(kind);
      int64_t wrong_keys = 0, wrong_tiles = 0;
      for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
          for (int64_t i = 0; i < S; i++)
            for (int64_t j = 0; j < S; j++)
              wrong_keys += view.keys(b, h, i).contains(j) != allowed(b, h, i, j);
          CHECK(view.keys(b, h, S).lo == view.keys(b, h, S).hi);  // padding rows see nothing
          for (int64_t i0 = 0; i0 < S; i0 += kAttnBlockM)
            for (int64_t j0 = 0; j0 < S; j0 += kAttnBlockN) {
              const int64_t m = std::min(kAttnBlockM, S - i0), n = std::min(kAttnBlockN, S - j0);
              bool any = false;
              for (int64_t i = i0; i < i0 + m; i++)
                for (int64_t j = j0; j < j0 + n; j++) any = any || allowed(b, h, i, j);
              wrong_tiles += view.tiles_meet(b, h, i0, m, j0, n) != any;
            }
          // tiles_inside at the v2 and v3 query tiles (64, 128 rows) and whole 64-key tiles: a
          // key past the sequence is never seen, so an edge key tile is never inside.
          for (int64_t rows : {kAttnBlockM, 2 * kAttnBlockM})
            for (int64_t i0 = 0; i0 < S; i0 += rows)
              for (int64_t j0 = 0; j0 < S; j0 += kAttnBlockN) {
                const int64_t m = std::min(rows, S - i0);
                bool all = true;
                for (int64_t i = i0; i < i0 + m; i++)
                  for (int64_t j = j0; j < j0 + kAttnBlockN; j++)
                    all = all && j < S && allowed(b, h, i, j);
                wrong_tiles += view.tiles_inside(b, h, i0, m, j0, kAttnBlockN) != all;
              }
        }
      CHECK(wrong_keys == 0);
      CHECK(wrong_tiles == 0);
    }
  }
}

TEST_CASE("mem-efficient: bias broadcast over batch and heads, document masks, bias gradient") {
  const int64_t B = 2, S = 70, H = 4, Hkv = 2, D = 64;
  // Documents of lengths 5, 60, 5 in row 0 and 30, 1, 39 in row 1 (a one-token document too).
  std::vector<int32_t> docs(B * S);
  for (int64_t i = 0; i < S; i++) {
    docs[i] = i < 5 ? 0 : i < 65 ? 1 : 2;
    docs[S + i] = i < 30 ? 0 : i < 31 ? 1 : 2;
  }
  Tensor doc_ids = Tensor::from_ints(docs, {B, S});
  for (bool causal : {false, true})
    for (Shape bias_shape : {Shape{}, Shape{1, 1, S, S}, Shape{B, 1, S, S}, Shape{1, H, S, S},
                             Shape{B, H, S, S}}) {
      CAPTURE(causal);
      CAPTURE(shape_str(bias_shape));
      Tensor q = randn({B, S, H, D}), k = randn({B, S, Hkv, D}), v = randn({B, S, Hkv, D});
      Tensor dout = randn({B, S, H, D}), bias = bias_shape.empty() ? Tensor() : randn(bias_shape);
      auto allowed = [&](int64_t b, int64_t, int64_t i, int64_t j) {
        return docs[b * S + i] == docs[b * S + j] && (!causal || j <= i);
      };
      Reference want = attention_reference(q, k, v, dout, allowed, bias);
      Result got = run(mem_efficient_fn(causal, doc_ids), q, k, v, dout, bias);
      check_result(got, want);
      CHECK(got.dbias.defined() == bias.defined());
    }
  Tensor q = randn({B, S, H, D}), k = randn({B, S, Hkv, D});
  CHECK_THROWS(mem_efficient_attention(q, k, k, true, randn({1, 3, S, S})));
  CHECK_THROWS(mem_efficient_attention(q, k, k, true, Tensor(), Tensor::from_ints(
      std::vector<int32_t>(S, 0), {1, S})));
  docs[3] = 1;
  docs[4] = 0;  // decreasing: documents must be contiguous runs
  CHECK_THROWS(mem_efficient_attention(q, k, k, true, Tensor(), Tensor::from_ints(docs, {B, S})));
}

TEST_CASE("the bf16 eager baseline: the exact reference with every op's output rounded") {
  // The GPU tests judge bf16 kernels against this baseline; here it must be the same function
  // as the exact reference, off by bf16 rounding: more than f32 noise, less than a few percent.
  const int64_t B = 2, S = 70, H = 4, Hkv = 1, D = 64;
  auto bf16_valued = [](const Shape& shape) { return randn(shape).to(DType::bf16).to(DType::f32); };
  Tensor q = bf16_valued({B, S, H, D}), k = bf16_valued({B, S, Hkv, D});
  Tensor v = bf16_valued({B, S, Hkv, D}), dout = bf16_valued({B, S, H, D});
  Tensor bias = randn({1, H, S, S});
  auto causal = [](int64_t, int64_t, int64_t i, int64_t j) { return j <= i; };
  const Reference exact = attention_reference(q, k, v, dout, causal, bias);
  const Reference ops = attention_reference(q, k, v, dout, causal, bias, RefMode::bf16_ops);
  auto fields = [](const Reference& r) {
    return std::vector<const std::vector<double>*>{&r.out, &r.dq, &r.dk, &r.dv, &r.dbias};
  };
  for (size_t f = 0; f < 5; f++) {
    CAPTURE(f);
    const std::vector<double>& x = *fields(exact)[f];
    const std::vector<double>& y = *fields(ops)[f];
    double err = 0, scale = 0;
    bool bf16_values = true;
    for (size_t i = 0; i < x.size(); i++) {
      err = std::max(err, std::fabs(x[i] - y[i]));
      scale = std::max(scale, std::fabs(x[i]));
      bf16_values &= float(y[i]) == bf16_to_f32(f32_to_bf16(float(y[i])));
    }
    INFO("field " << f << ": max |bf16 ops - exact| " << err << ", max |exact| " << scale);
    CHECK(bf16_values);
    CHECK(err > 1e-4 * scale);
    CHECK(err < 3e-2 * scale);
  }
}

TEST_CASE("finite differences: flash, s2, mem-efficient with bias and documents, tile edges") {
  const int64_t S = 72, H = 2, Hkv = 1, D = 8;
  Tensor q = randn({2, S, H, D}), k = randn({2, S, Hkv, D}), v = randn({2, S, Hkv, D});
  using In = std::vector<Tensor>;
  for (bool causal : {false, true})
    check_gradients([&](const In& in) { return flash_attention(in[0], in[1], in[2], causal); },
                    {q, k, v});
  check_gradients([](const In& in) { return s2_attention(in[0], in[1], in[2], 24); }, {q, k, v});
  std::vector<int32_t> docs(2 * S);
  for (int64_t i = 0; i < 2 * S; i++) docs[i] = i % S < 40 ? 0 : 1;
  check_gradients([](const In& in) {
    return mem_efficient_attention(in[0], in[1], in[2], true, in[3], in[4]);
  }, {q, k, v, randn({1, H, S, S}), Tensor::from_ints(docs, {2, S})});
}

TEST_CASE("a row that sees no key gives zero output and zero gradients, never NaN") {
  const int64_t S = 70, H = 2, D = 64, dead = 66;  // row 66 masked by the bias in every head
  std::vector<float> bias_v = randn({1, 1, S, S}).to_floats();
  for (int64_t j = 0; j < S; j++) bias_v[dead * S + j] = -INFINITY;
  Tensor bias = Tensor::from_floats(bias_v, {1, 1, S, S});
  Tensor q = randn({1, S, H, D}), k = randn({1, S, H, D}), v = randn({1, S, H, D});
  Tensor dout = randn({1, S, H, D});
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    Result got = run(mem_efficient_fn(causal), q, k, v, dout, bias);
    for (const Tensor& t : {got.out, got.dq, got.dk, got.dv, got.dbias})
      for (float x : t.to_floats()) REQUIRE(std::isfinite(x));
    std::vector<float> out = got.out.to_floats(), dq = got.dq.to_floats();
    std::vector<float> db = got.dbias.to_floats();
    for (int64_t c = dead * H * D; c < (dead + 1) * H * D; c++)
      CHECK((out[c] == 0.0f && dq[c] == 0.0f));
    for (int64_t j = 0; j < S; j++) CHECK(db[dead * S + j] == 0.0f);
    auto allowed = [&](int64_t, int64_t, int64_t i, int64_t j) { return !causal || j <= i; };
    check_result(got, attention_reference(q, k, v, dout, allowed, bias));
  }
}

TEST_CASE("s2: causal in every head (no wrap-around) and the shifted groups' edges") {
  struct Case {
    int64_t S, G;
  };
  for (Case c : {Case{64, 16}, Case{60, 15}}) {  // an odd group: the shift is G // 2, as LongLoRA's
    CAPTURE(c.G);
    const int64_t S = c.S, G = c.G, H = 4, Hkv = 2, D = 16;
    Tensor q = randn({1, S, H, D}), k = randn({1, S, Hkv, D}), v = randn({1, S, Hkv, D});
    std::vector<float> base = s2_attention(q, k, v, G).to_floats();
    // Output of s2 with the keys and values of tokens [t0, t1) replaced by new random ones.
    auto perturbed = [&](int64_t t0, int64_t t1) {
      std::vector<float> kv = k.to_floats(), vv = v.to_floats();
      std::vector<float> noise = randn({S * Hkv * D}).to_floats();
      for (int64_t x = t0 * Hkv * D; x < t1 * Hkv * D; x++) kv[x] += noise[x], vv[x] -= noise[x];
      Tensor k2 = Tensor::from_floats(kv, k.shape()), v2 = Tensor::from_floats(vv, v.shape());
      return s2_attention(q, k2, v2, G).to_floats();
    };
    // Whether output (i, h) moved.
    auto moved = [&](const std::vector<float>& out, int64_t i, int64_t h) {
      for (int64_t d = 0; d < D; d++)
        if (out[(i * H + h) * D + d] != base[(i * H + h) * D + d]) return true;
      return false;
    };
    for (int64_t t : {int64_t{1}, int64_t{8}, int64_t{20}, int64_t{40}, int64_t{56}, S - 1}) {  // the roll-based S2 lets tokens < G/2 see S - G/2..
      CAPTURE(t);
      std::vector<float> out = perturbed(t, t + 1);
      for (int64_t i = 0; i < t; i++)
        for (int64_t h = 0; h < H; h++) CHECK_FALSE(moved(out, i, h));
    }
    // The first shifted group is [0, G/2): later shifted queries never see it, plain ones do.
    std::vector<float> out = perturbed(0, G / 2);
    for (int64_t i = G / 2; i < S; i++) CHECK_FALSE((moved(out, i, 2) || moved(out, i, 3)));
    for (int64_t i = G / 2; i < G; i++) CHECK((moved(out, i, 0) && moved(out, i, 1)));
    // The last shifted group is what the first leaves of a group: [S - (G - G/2), S).
    const int64_t last = S - (G - G / 2);
    out = perturbed(0, last);
    for (int64_t i = last; i < S; i++) {
      CHECK_FALSE((moved(out, i, 2) || moved(out, i, 3)));
      CHECK((moved(out, i, 0) && moved(out, i, 1)));  // plain heads' last group is [S - G, S)
    }
  }
}

TEST_CASE("cudnn attention on the CPU runs the flash tiles: the same bits; other masks refused") {
  for (bool causal : {false, true})
    for (int64_t ratio : {1, 4}) {
      CAPTURE(causal);
      CAPTURE(ratio);
      const int64_t S = 70, Hkv = 2, H = Hkv * ratio, D = 64;
      Tensor q = randn({2, S, H, D}), k = randn({2, S, Hkv, D}), v = randn({2, S, Hkv, D});
      Tensor dout = randn({2, S, H, D});
      Result want = run(flash_fn(causal), q, k, v, dout);
      Result got = run(cudnn_fn(causal), q, k, v, dout);
      CHECK(max_abs_diff(got.out, want.out) == 0.0f);
      CHECK(max_abs_diff(got.dq, want.dq) == 0.0f);
      CHECK(max_abs_diff(got.dk, want.dk) == 0.0f);
      CHECK(max_abs_diff(got.dv, want.dv) == 0.0f);
    }
  Tensor q = randn({1, 8, 2, 16}), k = randn({1, 8, 2, 16});
  Tensor out = Tensor::empty(q.shape(), DType::f32, Device::cpu());
  Tensor lse = Tensor::empty({1, 2, 8}, DType::f32, Device::cpu());
  Backend& cpu = backend(Device::cpu());
  AttentionMask s2;
  s2.s2_group = 4;
  CHECK_THROWS_WITH(cpu.cudnn_attention_forward(q, k, k, s2, out, lse),
                    doctest::Contains("s2_attention"));
  AttentionMask docs;
  docs.doc_ids = Tensor::from_ints({0, 0, 0, 1, 1, 1, 1, 1}, {1, 8});
  CHECK_THROWS_WITH(cpu.cudnn_attention_forward(q, k, k, docs, out, lse),
                    doctest::Contains("mem_efficient_attention"));
}

TEST_CASE("s2: a sequence length that is not a multiple of the group size is refused") {
  Tensor q = randn({1, 10, 2, 8}), k = randn({1, 10, 1, 8});
  CHECK_THROWS_WITH(s2_attention(q, k, k, 4), doctest::Contains("s2_group_size_ratio"));
  CHECK_THROWS(s2_attention(q, k, k, 0));
}

TEST_CASE("memory at S = 4096: the tiled attentions stay O(S); eager holds (H, S, S)") {
  const int64_t S = 4096, H = 2, D = 64;
  const size_t scores = size_t(S) * S * 4;  // one head's f32 score matrix: 64 MiB
  Tensor q = randn({1, S, H, D}, 0.5f), k = randn({1, S, H, D}, 0.5f), v = randn({1, S, H, D});
  Tensor dout = randn({1, S, H, D});
  CachingAllocator& alloc = backend(Device::cpu()).allocator();
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);  // per-thread tile scratch (under 0.3 MiB a thread) counts in the peak
  // Peak bytes above what was in use before: forward, then backward when grad is on.
  auto peak = [&](const AttnFn& fn, bool grad) {
    Tensor lq = q.clone(), lk = k.clone(), lv = v.clone();
    if (grad)
      for (Tensor* t : {&lq, &lk, &lv}) t->set_requires_grad(true);
    const size_t before = alloc.stats().in_use_bytes;
    alloc.reset_peak();
    {
      Tensor out = fn(lq, lk, lv, Tensor());
      if (grad) backward(out, dout);
    }
    return alloc.stats().peak_bytes - before;
  };
  const size_t flash = peak(flash_fn(true), true), s2 = peak(s2_fn(S / 4), true);
  const size_t mem_efficient = peak(mem_efficient_fn(true), true);
  const size_t eager = peak(eager_fn(true), false);
  omp_set_num_threads(threads);
  MESSAGE("peak MiB at S = 4096, H = 2, D = 64: flash fwd+bwd " << flash / 1048576.0 << ", s2 "
          << s2 / 1048576.0 << ", mem-efficient " << mem_efficient / 1048576.0
          << ", eager forward " << eager / 1048576.0);
  // q, k, v, out and their gradients are 2 MiB each here; nothing else may be large.
  CHECK(flash < scores / 4);
  CHECK(s2 < scores / 4);
  CHECK(mem_efficient < scores / 4);
  CHECK(eager >= scores * H);
}

TEST_CASE("backward is deterministic: bit-identical gradients on 1 thread and on all") {
  const int64_t B = 2, S = 130, H = 8, Hkv = 2, D = 64;
  Tensor q = randn({B, S, H, D}), k = randn({B, S, Hkv, D}), v = randn({B, S, Hkv, D});
  Tensor dout = randn({B, S, H, D}), bias = randn({B, 1, S, S});  // dbias sums over heads
  const int threads = omp_get_max_threads();
  for (const AttnFn& fn : {flash_fn(true), s2_fn(26), mem_efficient_fn(false)}) {
    omp_set_num_threads(1);
    Result one = run(fn, q, k, v, dout, bias);
    omp_set_num_threads(threads);
    Result all = run(fn, q, k, v, dout, bias), again = run(fn, q, k, v, dout, bias);
    for (const Result* r : {&all, &again}) {
      CHECK(max_abs_diff(r->out, one.out) == 0.0f);
      CHECK(max_abs_diff(r->dq, one.dq) == 0.0f);
      CHECK(max_abs_diff(r->dk, one.dk) == 0.0f);
      CHECK(max_abs_diff(r->dv, one.dv) == 0.0f);
      if (one.dbias.defined()) CHECK(max_abs_diff(r->dbias, one.dbias) == 0.0f);
    }
  }
}
