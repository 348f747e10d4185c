// defines: add, add_scaled, mul, scale_ (forward and backward side by side)
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

static void check_same(const char* op, const Tensor& a, const Tensor& b) {
  LLM_CHECK(a.shape() == b.shape() && a.dtype() == b.dtype() && a.device() == b.device(),
            std::string(op) + ": operands " + a.str() + " and " + b.str() + " differ");
}

Tensor add(const Tensor& a, const Tensor& b) { return add_scaled(a, b, 1.0f); }

Tensor add_scaled(const Tensor& a_in, const Tensor& b_in, float s) {
  check_same("add", a_in, b_in);
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  backend(a.device()).axpby(1.0f, a, s, b, out);
  if (any_requires_grad({a_in, b_in})) {
    record_node("add", {a_in, b_in}, {&out}, [s](const Grads& g) -> Grads {
      if (s == 1.0f) return {g[0], g[0]};
      Tensor db = g[0].contiguous().clone();
      scale_(db, s);
      return {g[0], db};
    });
  }
  return out;
}

Tensor mul(const Tensor& a_in, const Tensor& b_in) {
  check_same("mul", a_in, b_in);
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  backend(a.device()).mul(a, b, out);
  if (any_requires_grad({a_in, b_in})) {
    bool need_a = a_in.requires_grad(), need_b = b_in.requires_grad();
    record_node("mul", {a_in, b_in}, {&out}, [a, b, need_a, need_b](const Grads& g) -> Grads {
      Backend& be = backend(a.device());
      Tensor da, db;
      if (need_a) {
        da = Tensor::empty(a.shape(), a.dtype(), a.device());
        be.mul(g[0], b, da);
      }
      if (need_b) {
        db = Tensor::empty(b.shape(), b.dtype(), b.device());
        be.mul(g[0], a, db);
      }
      return {da, db};
    });
  }
  return out;
}

void scale_(Tensor& x, float s) {
  LLM_CHECK(x.is_contiguous(), "scale_ of a non-contiguous " + x.str());
  backend(x.device()).scale(x, s);
}

void scale_(Tensor& x, const Tensor& s, float expected) {
  LLM_CHECK(x.is_contiguous() && s.device() == x.device(),
            "scale_ of " + x.str() + " by " + s.str() + ": contiguous, same device expected");
  backend(x.device()).scale_by(x, s.contiguous(), expected);
}

}  // namespace llm
