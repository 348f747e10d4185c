// defines: fake_quantize_int4 (weights per group, min-max), fake_quantize_int4_symmetric,
// fake_quantize_int8_rows (activations per token), fake_quantize_fp8_rows, fake_quantize_mxfp4,
// fake_quantize_ternary, fake_quantize_int8_absmax and ternarize: quantisation-aware training's
// ops, forward and backward
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/fake_quantize_math.h"
#include "engine/ops.h"

namespace llm {

namespace {
// One fake quantiser as an op: forward(backend, x, out), and a backward that recomputes from x
// what it needs (each group's or row's scale): backward(backend, x, dout, dx). Nothing else is kept.
template <class Forward, class Backward>
Tensor fake_quantize_op(const char* name, const Tensor& x_in, Forward forward, Backward backward_of) {
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  forward(backend(x.device()), x, out);
  if (any_requires_grad({x_in})) {
    record_node(name, {x_in}, {&out}, [x, backward_of](const Grads& g) -> Grads {
      Tensor dout = g[0].contiguous();
      Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
      backward_of(backend(x.device()), x, dout, dx);
      return {dx};
    });
  }
  return out;
}

void check_groups(const char* name, const Tensor& w, int64_t group) {
  LLM_CHECK(w.dim() == 2 && group > 0 && w.size(1) % group == 0,
            std::string(name) + ": w " + w.str() + " must be (R, C) with C a multiple of the group size " +
                std::to_string(group));
}

// A fake quantiser whose gradient passes straight through: forward(backend, x, out) only.
template <class Forward>
Tensor straight_through_op(const char* name, const Tensor& x_in, Forward forward) {
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  forward(backend(x.device()), x, out);
  if (any_requires_grad({x_in})) record_node(name, {x_in}, {&out}, [](const Grads& g) -> Grads { return {g[0]}; });
  return out;
}

void check_rows(const char* name, const Tensor& x) {
  LLM_CHECK(x.dim() >= 1 && x.size(-1) > 0, std::string(name) + ": x " + x.str() + " must have non-empty rows");
}
}  // namespace

Tensor fake_quantize_int4(const Tensor& w, int64_t group) {
  check_groups("fake_quantize_int4", w, group);
  return fake_quantize_op(
      "fake_quantize_int4", w,
      [group](Backend& b, const Tensor& x, Tensor& out) { b.fake_quant_int4_forward(x, group, out); },
      [group](Backend& b, const Tensor& x, const Tensor& dout, Tensor& dx) {
        b.fake_quant_int4_backward(x, dout, group, dx);
      });
}

Tensor fake_quantize_int4_symmetric(const Tensor& w, int64_t group) {
  check_groups("fake_quantize_int4_symmetric", w, group);
  return fake_quantize_op(
      "fake_quantize_int4_symmetric", w,
      [group](Backend& b, const Tensor& x, Tensor& out) { b.fake_quant_int4_symmetric_forward(x, group, out); },
      [group](Backend& b, const Tensor& x, const Tensor& dout, Tensor& dx) {
        b.fake_quant_int4_symmetric_backward(x, dout, group, dx);
      });
}

Tensor fake_quantize_fp8_rows(const Tensor& x, float lower_bound) {
  LLM_CHECK(x.dim() >= 1, "fake_quantize_fp8_rows: x " + x.str() + " must have rows");
  return fake_quantize_op(
      "fake_quantize_fp8_rows", x,
      [lower_bound](Backend& b, const Tensor& in, Tensor& out) { b.fake_quant_fp8_rows_forward(in, lower_bound, out); },
      [lower_bound](Backend& b, const Tensor& in, const Tensor& dout, Tensor& dx) {
        b.fake_quant_fp8_rows_backward(in, dout, lower_bound, dx);
      });
}


Tensor fake_quantize_mxfp4(const Tensor& x) {
  LLM_CHECK(x.dim() >= 1 && x.size(-1) % kMxBlock == 0,
            "fake_quantize_mxfp4: x " + x.str() + " must have rows of a multiple of " + std::to_string(kMxBlock));
  return straight_through_op("fake_quantize_mxfp4", x, [](Backend& b, const Tensor& in, Tensor& out) {
    b.fake_quant_mxfp4(in, out);
  });
}

Tensor fake_quantize_ternary(const Tensor& w) {
  check_rows("fake_quantize_ternary", w);
  return straight_through_op("fake_quantize_ternary", w, [](Backend& b, const Tensor& in, Tensor& out) {
    b.fake_quant_ternary(in, true, out);
  });
}

Tensor fake_quantize_int8_absmax(const Tensor& x) {
  check_rows("fake_quantize_int8_absmax", x);
  return straight_through_op("fake_quantize_int8_absmax", x, [](Backend& b, const Tensor& in, Tensor& out) {
    b.fake_quant_int8_absmax(in, out);
  });
}

Tensor ternarize(const Tensor& w_in) {
  check_rows("ternarize", w_in);
  Tensor w = w_in.contiguous();
  Tensor out = Tensor::empty(w.shape(), w.dtype(), w.device());
  backend(w.device()).fake_quant_ternary(w, false, out);
  return out;
}

Tensor fake_quantize_int8_rows(const Tensor& x) {
  LLM_CHECK(x.dim() == 2, "fake_quantize_int8_rows: x " + x.str() + " must be (N, C)");
  return fake_quantize_op(
      "fake_quantize_int8_rows", x,
      [](Backend& b, const Tensor& in, Tensor& out) { b.fake_quant_int8_forward(in, out); },
      [](Backend& b, const Tensor& in, const Tensor& dout, Tensor& dx) { b.fake_quant_int8_backward(in, dout, dx); });
}

}  // namespace llm
