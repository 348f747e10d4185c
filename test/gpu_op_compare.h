// The GPU op suites' harness (test_gpu_ops, _loss, _optimizers, _low_precision): an op run on the CPU in
// f32 and on cuda:0 in f32 or bf16 on the same values, forward and gradients compared within a
// tolerance relative to the reference's largest magnitude (see test_gpu_ops.cpp's header).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/tensor.h"
#include "test/test_util.h"

namespace llm::testing {

inline const Device kGpu = Device::cuda(0);
constexpr float kTolF32 = 1e-4f, kTolBf16 = 2e-2f;

inline float tolerance(DType dtype) { return dtype == DType::f32 ? kTolF32 : kTolBf16; }

// max |got - want| <= tol * max |want|, and nothing non-finite where the reference is finite.
inline void check_close(const std::string& what, const Tensor& got, const Tensor& want, float tol) {
  REQUIRE_MESSAGE(got.shape() == want.shape(), what << ": " << got.str() << " vs " << want.str());
  std::vector<float> g = got.to_floats(), w = want.to_floats();
  float err = 0.0f, scale = 0.0f;
  bool finite = true;
  for (size_t i = 0; i < g.size(); i++) {
    finite = finite && (std::isfinite(g[i]) || !std::isfinite(w[i]));
    err = std::max(err, std::fabs(g[i] - w[i]));
    scale = std::max(scale, std::fabs(w[i]));
  }
  INFO(what << ": max |cuda - cpu| = " << err << ", max |cpu| = " << scale);
  CHECK(finite);
  CHECK(err <= tol * std::max(scale, 1e-6f));
}

inline bool bit_identical(const Tensor& a, const Tensor& b) {
  Tensor x = a.to(Device::cpu()), y = b.to(Device::cpu());
  return x.shape() == y.shape() && x.dtype() == y.dtype() &&
         std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0;
}

// Runs f on the CPU in f32 and on cuda:0 in `dtype` on the same values (float inputs rounded to
// dtype first; i32 inputs as they are), backpropagates the same upstream gradient through both,
// and compares the output and the gradient of every float input. Each graph is backpropagated
// before the next is recorded: one backward runs the whole tape. `bf16_tol`: the bf16 tolerance,
// for an op whose own math amplifies bf16's rounding (the caller says by how much, and why).
inline void compare_op(const std::string& name, const Fn& f, const std::vector<Tensor>& inputs,
                DType dtype, float bf16_tol = kTolBf16) {
  const std::string dtype_str = dtype_name(dtype);  // CAPTURE prints a const char* as an address
  CAPTURE(name);
  CAPTURE(dtype_str);
  std::vector<Tensor> cpu_in, gpu_in;
  for (const Tensor& t : inputs) {
    if (t.dtype() == DType::i32) {
      cpu_in.push_back(t);
      gpu_in.push_back(t.to(kGpu));
      continue;
    }
    Tensor rounded = t.to(dtype).to(DType::f32);
    Tensor c = rounded.clone(), g = rounded.to(kGpu).to(dtype);
    c.set_requires_grad(true);
    g.set_requires_grad(true);
    cpu_in.push_back(c);
    gpu_in.push_back(g);
  }
  // The upstream gradient rounded to `dtype`: the values the CUDA side is given exactly.
  Tensor out_c = f(cpu_in);
  Tensor seed_c = randn(out_c.shape()).to(dtype).to(DType::f32);
  backward(out_c, seed_c);
  Tensor out_g = f(gpu_in);
  REQUIRE(out_g.device() == kGpu);
  backward(out_g, seed_c.to(kGpu).to(out_g.dtype()));
  const float tol = dtype == DType::bf16 ? bf16_tol : tolerance(dtype);
  check_close(name + " output", out_g, out_c, tol);
  for (size_t i = 0; i < inputs.size(); i++) {
    if (inputs[i].dtype() == DType::i32) continue;
    REQUIRE_MESSAGE(gpu_in[i].grad().defined(), name << ": input " << i << " got no gradient");
    REQUIRE(gpu_in[i].grad().device() == kGpu);
    check_close(name + " grad of input " + std::to_string(i), gpu_in[i].grad(),
                cpu_in[i].grad(), tol);
  }
}

inline const DType kDtypes[] = {DType::f32, DType::bf16};

// A GPU suite's main: without a CUDA device it says so and returns 77, which ctest reports as
// skipped (the suites carry the label gpu); otherwise doctest runs its cases.
inline int run_gpu_suite(int argc, char** argv) {
  if (device_count(DeviceType::cuda) == 0) {
    std::printf("skipped: no CUDA device visible\n");
    return 77;
  }
  return doctest::Context(argc, argv).run();
}

}  // namespace llm::testing
