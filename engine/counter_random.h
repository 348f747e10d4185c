// defines: counter_bits, uniform01 (a draw in [0, 1) for element i of the draw `seed`) and dropout_keep. A
// counter-based hash (splitmix64's finaliser), written once for the host and CUDA kernels: every
// draw is a function of (seed, index), so the backward, a recompute segment and a resumed run all
// see the same dropout mask or embedding noise without it ever being stored.
#pragma once
#include <cstdint>

#include "engine/host_device.h"

namespace llm {

// 64 random bits for element i of the draw `seed`.
LLM_HOST_DEVICE uint64_t counter_bits(uint64_t seed, int64_t i) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (static_cast<uint64_t>(i) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

LLM_HOST_DEVICE float uniform01(uint64_t seed, int64_t i) {
  // The top 24 bits, exact in a float.
  return static_cast<float>(counter_bits(seed, i) >> 40) * (1.0f / 16777216.0f);
}

LLM_HOST_DEVICE bool dropout_keep(uint64_t seed, int64_t i, float p) { return uniform01(seed, i) >= p; }

}  // namespace llm
