// defines: lisa_layers (numpy's legacy choice without replacement, for Axolotl's LISA callback)
#include "train/lisa.h"

#include <numeric>
#include <random>

namespace llm {

namespace {
// numpy's random_interval: a value in [0, max], drawing 32-bit words through the smallest
// all-ones mask covering max and rejecting those above it.
uint32_t random_interval(std::mt19937& rng, uint32_t max) {
  if (max == 0) return 0;
  uint32_t mask = max;
  for (int shift = 1; shift <= 16; shift *= 2) mask |= mask >> shift;
  uint32_t value;
  do value = static_cast<uint32_t>(rng()) & mask;
  while (value > max);
  return value;
}
}  // namespace

std::vector<int64_t> lisa_layers(int64_t total, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);  // numpy seeds an integer as MT19937's init_genrand, as std::mt19937 does
  std::vector<int64_t> order(static_cast<size_t>(total));
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = total - 1; i >= 1; i--)  // numpy's shuffle: from the end
    std::swap(order[i], order[random_interval(rng, static_cast<uint32_t>(i))]);
  order.resize(static_cast<size_t>(n));
  return order;
}

}  // namespace llm
