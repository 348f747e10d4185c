// defines: TorchGenerator, apollo_next_seed (see the header)
#include "engine/torch_generator.h"

#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

#include "engine/check.h"

namespace llm {

TorchGenerator::TorchGenerator(uint64_t seed) : engine_(static_cast<uint32_t>(seed)) {}

// randperm below 2^32 / 20 draws 32 bits a swap, modulo the rest's count.
std::vector<int64_t> TorchGenerator::randperm(int64_t n) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = 0; i + 1 < n; i++)
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(i + static_cast<int64_t>(engine_() % static_cast<uint64_t>(n - i)))]);
  return order;
}

uint64_t TorchGenerator::random64() {
  const uint64_t high = engine_(), low = engine_();
  return (high << 32) | low;
}

// An int64's random_() is random64() modulo 2^63.
int64_t TorchGenerator::random_int64() { return static_cast<int64_t>(random64() & ~(uint64_t{1} << 63)); }

std::vector<int64_t> TorchGenerator::random_sampler_order(int64_t n) {
  return TorchGenerator(static_cast<uint64_t>(random_int64())).randperm(n);
}

// torch's CPU normal kernel. From 16 elements on (f32, contiguous): every element a uniform f32
// (24 bits of one draw), then Box-Muller in blocks of 16, the first 8 giving the logs' radii and
// the last 8 the angles; a tail short of a block redraws the last 16 elements' uniforms and
// transforms them again. Below 16: each element a double Box-Muller of two 53-bit uniforms, the
// second sample of a pair (its sine) kept for the next element.
std::vector<float> TorchGenerator::randn(int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  constexpr double kTwoPi = 2.0 * 3.14159265358979323846;
  if (n < 16) {
    bool cached = false;
    double next = 0.0;
    for (float& x : out) {
      if (cached) {
        x = static_cast<float>(next);
        cached = false;
        continue;
      }
      const double u1 = static_cast<double>(random64() & ((uint64_t{1} << 53) - 1)) * std::ldexp(1.0, -53);
      const double u2 = static_cast<double>(random64() & ((uint64_t{1} << 53) - 1)) * std::ldexp(1.0, -53);
      const double radius = std::sqrt(-2.0 * std::log1p(-u2)), theta = kTwoPi * u1;
      next = radius * std::sin(theta);
      cached = true;
      x = static_cast<float>(radius * std::cos(theta));
    }
    return out;
  }
  const auto uniform = [this] { return static_cast<float>(engine_() & ((1u << 24) - 1)) * std::ldexp(1.0f, -24); };
  const auto box_muller_16 = [&](float* block) {
    for (int j = 0; j < 8; j++) {
      const float radius = std::sqrt(-2.0f * std::log(1.0f - block[j]));
      const float theta = static_cast<float>(kTwoPi * block[j + 8]);
      block[j] = radius * std::cos(theta);
      block[j + 8] = radius * std::sin(theta);
    }
  };
  for (float& x : out) x = uniform();
  for (int64_t i = 0; i + 16 <= n; i += 16) box_muller_16(out.data() + i);
  if (n % 16 != 0) {
    float* tail = out.data() + n - 16;
    for (int j = 0; j < 16; j++) tail[j] = uniform();
    box_muller_16(tail);
  }
  return out;
}

// A range of 2^32 or more takes one 64-bit draw an element, modulo the range.
std::vector<int64_t> TorchGenerator::randint(int64_t high, int64_t n) {
  LLM_CHECK(high >= (int64_t{1} << 32), "TorchGenerator::randint: a range of 2^32 or more (its 64-bit draws)");
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t& x : out) x = static_cast<int64_t>(random64() % static_cast<uint64_t>(high));
  return out;
}

int64_t apollo_next_seed(int64_t seed) {
  return TorchGenerator(static_cast<uint64_t>(seed)).randint(std::numeric_limits<int64_t>::max(), 15).back();
}

}  // namespace llm
