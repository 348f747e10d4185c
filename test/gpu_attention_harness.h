// The GPU attention suites' harness (test_gpu_attention, test_gpu_attention_hopper): inputs,
// the attentions run on a device and dtype with their gradients, the f32 and bf16 criteria
// (test_gpu_attention.cpp's header), the masks of the references, and the cases the tensor-core
// kernels take.
#pragma once
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "engine/backend.h"
#include "engine/ops.h"
#include "test/attention_reference.h"
#include "test/test_util.h"

namespace llm::testing {


inline const Device kGpu = Device::cuda(0);

// CPU f32 tensors whose values are bf16-representable, so f32 and bf16 runs see the same inputs.
struct Inputs {
  Tensor q, k, v, dout;
  Tensor bias, doc;  // optional: f32 (Bb, Hb, S, S) and i32 (B, S)
};

inline Tensor bf16_valued(const Shape& shape, float stddev = 1.0f) {
  return randn(shape, stddev).to(DType::bf16).to(DType::f32);
}

inline Inputs make_inputs(int64_t B, int64_t S, int64_t H, int64_t Hkv, int64_t D) {
  return {bf16_valued({B, S, H, D}), bf16_valued({B, S, Hkv, D}), bf16_valued({B, S, Hkv, D}),
          bf16_valued({B, S, H, D}), Tensor(), Tensor()};
}

struct Outputs {
  Tensor out, dq, dk, dv, dbias;  // CPU f32; dbias only when the bias asked for a gradient
};

// in = {q, k, v, bias, doc_ids}; bias and doc_ids may be undefined.
using Attn = std::function<Tensor(const std::vector<Tensor>&)>;

// A new tensor on `device` in `dtype` (never an alias of t, so its autograd state is its own).
inline Tensor fresh(const Tensor& t, Device device, DType dtype) {
  return device.is_cpu() ? t.to(dtype).clone() : t.to(device).to(dtype);
}

inline Outputs run(const Attn& f, const Inputs& in, Device device, DType dtype,
                   bool bias_grad = false) {
  auto leaf = [&](const Tensor& t) {
    Tensor x = fresh(t, device, dtype);
    x.set_requires_grad(true);
    return x;
  };
  Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v), bias, doc;
  if (in.bias.defined()) {
    bias = fresh(in.bias, device, DType::f32);
    if (bias_grad) bias.set_requires_grad(true);
  }
  if (in.doc.defined()) doc = in.doc.to(device);
  Tensor out = f({q, k, v, bias, doc});
  backward(out, fresh(in.dout, device, dtype));
  auto host = [](const Tensor& t) {
    return t.defined() ? t.to(Device::cpu()).to(DType::f32) : Tensor();
  };
  return {host(out), host(q.grad()), host(k.grad()), host(v.grad()),
          bias_grad ? host(bias.grad()) : Tensor()};
}

inline bool all_finite(const Tensor& t) {
  for (float x : t.to_floats())
    if (!std::isfinite(x)) return false;
  return true;
}

// Each output tensor with its name, for the comparisons below.
inline std::vector<std::pair<const char*, const Tensor*>> fields(const Outputs& o) {
  std::vector<std::pair<const char*, const Tensor*>> f{
      {"out", &o.out}, {"dq", &o.dq}, {"dk", &o.dk}, {"dv", &o.dv}};
  if (o.dbias.defined()) f.push_back({"dbias", &o.dbias});
  return f;
}

inline void check_f32(const std::string& what, const Outputs& got, const Outputs& want) {
  auto g = fields(got), w = fields(want);
  REQUIRE(g.size() == w.size());
  for (size_t i = 0; i < g.size(); i++) {
    const float err = max_abs_diff(*g[i].second, *w[i].second), scale = max_abs(*w[i].second);
    INFO(what << " " << g[i].first << ": max |err| " << err << ", max |ref| " << scale);
    CHECK(all_finite(*g[i].second));
    CHECK(err <= 1e-4f * std::max(scale, 1e-6f));
  }
}

inline void check_bf16(const std::string& what, const Outputs& ours, const Outputs& baseline,
                const Outputs& ref) {
  auto o = fields(ours), b = fields(baseline), r = fields(ref);
  REQUIRE((o.size() == r.size() && b.size() == r.size()));
  for (size_t i = 0; i < o.size(); i++) {
    const float err = max_abs_diff(*o[i].second, *r[i].second);
    const float base = max_abs_diff(*b[i].second, *r[i].second);
    INFO(what << " " << o[i].first << " (bf16): ours " << err << ", baseline " << base);
    CHECK(all_finite(*o[i].second));
    CHECK(err <= 2.0f * base + 1e-5f);
  }
}

// The bf16 criterion's baseline: eager attention as PyTorch runs it in bf16, under `allowed`
// and the inputs' bias (its gradient when asked for).
inline Outputs eager_bf16(const Inputs& in, const Allowed& allowed, bool bias_grad = false) {
  const Reference r = attention_reference(in.q, in.k, in.v, in.dout, allowed, in.bias,
                                          RefMode::bf16_ops);
  auto tensor = [](const std::vector<double>& x, const Tensor& like) {
    return Tensor::from_floats(std::vector<float>(x.begin(), x.end()), like.shape());
  };
  return {tensor(r.out, in.q), tensor(r.dq, in.q), tensor(r.dk, in.k), tensor(r.dv, in.v),
          bias_grad ? tensor(r.dbias, in.bias) : Tensor()};
}

// The masks of the kernels under test, for the baseline.
inline Allowed causal_mask(bool causal) {
  return [causal](int64_t, int64_t, int64_t i, int64_t j) { return !causal || j <= i; };
}
inline Allowed s2_mask(int64_t H, int64_t group) {
  return [H, group](int64_t, int64_t h, int64_t i, int64_t j) {
    return s2_allowed(H, group, h, i, j);
  };
}
inline Allowed document_mask(const Tensor& doc_ids, bool causal) {
  const int64_t S = doc_ids.size(1);
  return [docs = doc_ids.to_ints(), S, causal](int64_t b, int64_t, int64_t i, int64_t j) {
    return docs[b * S + i] == docs[b * S + j] && (!causal || j <= i);
  };
}

inline bool bit_identical(const Outputs& a, const Outputs& b) {
  auto x = fields(a), y = fields(b);
  for (size_t i = 0; i < x.size(); i++)
    if (std::memcmp(x[i].second->data_ptr(), y[i].second->data_ptr(), x[i].second->nbytes()))
      return false;
  return x.size() == y.size();
}

inline Attn flash(bool causal) {
  return [causal](const std::vector<Tensor>& in) {
    return flash_attention(in[0], in[1], in[2], causal);
  };
}
inline Attn eager(bool causal) {
  return [causal](const std::vector<Tensor>& in) {
    return attention(in[0], in[1], in[2], causal);
  };
}
inline Attn cudnn(bool causal) {
  return [causal](const std::vector<Tensor>& in) {
    return cudnn_attention(in[0], in[1], in[2], causal);
  };
}
inline Attn mem_efficient(bool causal) {
  return [causal](const std::vector<Tensor>& in) {
    return mem_efficient_attention(in[0], in[1], in[2], causal, in[3], in[4]);
  };
}
inline Attn s2(int64_t group) {
  return [group](const std::vector<Tensor>& in) {
    return s2_attention(in[0], in[1], in[2], group);
  };
}

// Holds the tiled attentions on one kernel variant while it lives, then restores what was set:
// LLM_ATTENTION_SIMT=1, the CUDA-core kernels; LLM_ATTENTION_KERNEL=v2 ... v5, that tensor-core
// variant (cuda/attention/flash_variants.h). test_gpu_attention's main() holds v3; the Hopper
// variants (v4, v5) are tried in test_gpu_attention_hopper, so that a fault of one, which ends
// the process, costs no other suite its cases.
struct KernelVariant {
  explicit KernelVariant(const char* var, const char* value = "1") : var(var) {
    if (const char* old = std::getenv(var)) before = old;
    setenv(var, value, 1);
  }
  ~KernelVariant() {
    if (before.empty()) unsetenv(var);
    else setenv(var, before.c_str(), 1);
  }
  const char* var;
  std::string before;
};

// Document ids (B, S): batch 0 in three documents that start inside 64-row tiles, batch 1 in
// documents of 9 tokens, so whole key tiles are masked for some rows of a query tile.
inline Tensor documents(int64_t B, int64_t S) {
  std::vector<int32_t> docs;
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < S; i++)
      docs.push_back(b % 2 == 0 ? (i < 50 ? 0 : i < 110 ? 1 : 2) : int32_t(7 + i / 9));
  return Tensor::from_ints(docs, {B, S});
}


// The calls the tensor-core kernels take: flash (causal or not), memory-efficient with documents
// and S2, bf16 at head_dim 64 and 128, GQA ratios 1 and 4, seqs off the tile sizes; f(case, ref,
// baseline) for each.
struct TensorCoreCase {
  std::string name;
  Attn f;
  Inputs in;
  Allowed mask;
  bool causal;
};
template <class F>
inline void for_each_tensor_core_case(F&& f) {
  for (int64_t D : {64, 128})
    for (int64_t ratio : {1, 4})
      for (int64_t S : {37, 129, 200}) {
        const Inputs plain = make_inputs(2, S, 2 * ratio, 2, D);
        Inputs with_docs = plain;
        with_docs.doc = documents(2, S);
        std::vector<TensorCoreCase> cases;
        for (bool causal : {false, true}) {
          cases.push_back({"flash", flash(causal), plain, causal_mask(causal), causal});
          cases.push_back({"mem_efficient+docs", mem_efficient(causal), with_docs,
                           document_mask(with_docs.doc, causal), causal});
        }
        if (S % 4 == 0)
          cases.push_back({"s2", s2(S / 4), plain, s2_mask(2 * ratio, S / 4), true});
        for (const TensorCoreCase& c : cases) {
          CAPTURE(c.name);
          CAPTURE(c.causal);
          CAPTURE(D);
          CAPTURE(ratio);
          CAPTURE(S);
          f(c, run(c.f, c.in, Device::cpu(), DType::f32), eager_bf16(c.in, c.mask));
        }
      }
}

}  // namespace llm::testing
