// llm_bench kernel's cases (tools/bench_kernel.cpp): an op at one shape, its inputs and the least
// it must move and compute; the optimizers' updates in tools/bench_kernel_optimizers.cpp.
#pragma once
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace llm {

// One op at one shape: its inputs (host f32, moved to the device by the harness), what it
// computes from them (differentiable ops run their backward too with `backward` set), and what
// it must cost at the least.
struct Case {
  std::string name, shape;
  std::vector<Tensor> inputs;  // on the host; i32 ids stay i32
  std::function<std::vector<Tensor>(std::vector<Tensor>&, bool backward)> run;
  bool differentiable = true;
  double flops_fwd = 0, bytes_fwd = 0;  // per forward
  double flops_bwd = 0, bytes_bwd = 0;  // added by the backward
  std::string reference;  // cases that name the same one share its CPU result (empty: the name)
  // The largest relative error the check accepts where a case's arithmetic allows more than the
  // run's --tolerance (0: the run's).
  double tolerance = 0;
};

// The optimizers' updates of an (F, C) matrix: AdamW (f32 and 8-bit), Lion (both), AdEMAMix (both),
// Adafactor, CAME and Muon's Newton-Schulz.
void add_optimizer_cases(std::vector<Case>& cases, int64_t F, int64_t C, std::mt19937& rng);

}  // namespace llm
