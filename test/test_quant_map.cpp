// The 8-bit optimizers' quantisation maps (engine/quant_map.h): bitsandbytes' dynamic map, the
// round trip of a block, and the guide that finds where a value falls in a map: the same entry
// as a binary search for every float tried, and refused where a bucket would need more steps.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/quant_map.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

TEST_CASE("dynamic quantisation maps: bitsandbytes' 256 values, sorted, 0 and 1 exact") {
  for (bool is_signed : {true, false}) {
    CAPTURE(is_signed);
    const std::array<float, 256> values = dynamic_quant_map(is_signed);
    CHECK(std::is_sorted(values.begin(), values.end()));
    CHECK(std::adjacent_find(values.begin(), values.end()) == values.end());  // no repeated value
    CHECK(values[255] == 1.0f);
    CHECK(std::count(values.begin(), values.end(), 0.0f) == 1);
    // The smallest non-zero magnitude: the first decade's midpoint, 1e-6 x 0.55 (signed).
    CHECK(values[0] == doctest::Approx(is_signed ? -0.99297 : 0.0).epsilon(1e-4));
    const QuantMap<256> map = make_quant_map(values);
    CHECK(quantize_nearest(map, 1.0f) == 255);
    CHECK(values[quantize_nearest(map, 0.0f)] == 0.0f);
  }
  // Signed: 127 negative values; unsigned: the sign bit spent on fractions, 254 above 0.
  const std::array<float, 256> s = dynamic_quant_map(true), u = dynamic_quant_map(false);
  CHECK(std::count_if(s.begin(), s.end(), [](float x) { return x < 0; }) == 127);
  CHECK(std::count_if(u.begin(), u.end(), [](float x) { return x > 0 && x < 1; }) == 254);
}

TEST_CASE("blockwise 8-bit round trip: each value within half a code gap of its block's absmax") {
  // Values spanning six decades, in blocks of kQuantBlock with their own absmax.
  const QuantMap<256> map = make_quant_map(dynamic_quant_map(true));
  std::vector<float> x = randn({3 * kQuantBlock}).to_floats();
  for (size_t i = 0; i < x.size(); i++) x[i] *= std::pow(10.0f, -float(i % 6));
  float worst_rel = 0.0f;
  for (size_t b = 0; b < 3; b++) {
    float absmax = 0.0f;
    for (int64_t j = 0; j < kQuantBlock; j++) absmax = std::max(absmax, std::fabs(x[b * kQuantBlock + j]));
    for (int64_t j = 0; j < kQuantBlock; j++) {
      const float v = x[b * kQuantBlock + j], q = map.value[quantize_nearest(map, v / absmax)] * absmax;
      // The coarsest gap, in [0.1, 1] of absmax, is 0.9 / 64: half of it bounds every error.
      CHECK(std::fabs(q - v) <= 0.5f * 0.9f / 64 * absmax * 1.0001f);
      if (std::fabs(v) >= 0.1f * absmax) worst_rel = std::max(worst_rel, std::fabs(q - v) / std::fabs(v));
    }
  }
  // In the top decade the relative error is at most that half gap over 0.1: 7%.
  MESSAGE("max relative error of values above 0.1 absmax: " << worst_rel);
  CHECK(worst_rel <= 0.5f * 0.9f / 64 / 0.1f * 1.0001f);
}

namespace {

// What the guide must agree with: the last entry at or below x by halving steps, 0 where none is.
template <int kEntries>
int searched_last_at_or_below(const QuantMap<kEntries>& map, float x) {
  int lo = 0;
  for (int step = kEntries / 2; step > 0; step >>= 1) lo += map.value[lo + step] <= x ? step : 0;
  return lo;
}

float float_of_bits(uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
}

// The guided and the searched entry for the floats a map can meet: every 509th bit pattern of the
// whole line (both signs, subnormals, infinities, NaNs), each entry and its neighbours, the ends
// of the guide's exponent range and the zeros. Returns how many floats disagreed.
template <size_t kEntries>
int64_t guide_disagreements(const std::array<float, kEntries>& values, int64_t& tried) {
  const QuantMap<static_cast<int>(kEntries)> map = make_quant_map(values);
  std::vector<float> xs = {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                           std::nanf(""), -std::nanf(""), 0x1p-22f, -0x1p-22f, 0x1p-23f, 2.0f, -2.0f, 1e30f};
  for (float v : values) {
    xs.push_back(v);
    xs.push_back(std::nextafter(v, -INFINITY));
    xs.push_back(std::nextafter(v, INFINITY));
  }
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 509) xs.push_back(float_of_bits(static_cast<uint32_t>(bits)));
  int64_t off = 0;
  for (float x : xs) off += map.last_at_or_below(x) != searched_last_at_or_below(map, x);
  tried = static_cast<int64_t>(xs.size());
  return off;
}

}  // namespace

TEST_CASE("the guide finds the binary search's entry for every float tried, in every map that has one") {
  int64_t tried = 0;
  CHECK(guide_disagreements(dynamic_quant_map(true), tried) == 0);
  CHECK(tried > 8000000);
  CHECK(guide_disagreements(dynamic_quant_map(false), tried) == 0);
  CHECK(guide_disagreements(torchao_4bit_map(true), tried) == 0);
  CHECK(guide_disagreements(torchao_4bit_map(false), tried) == 0);
  // A guide with one step too few would part from the search: the unsigned map needs both steps.
  const QuantMap<256> map = make_quant_map(dynamic_quant_map(false));
  int needs_two = 0;
  for (int b = 0; b < kGuideBuckets; b++) {
    const float x = map.value[std::min(map.start[b] + 2, 255)];
    needs_two += guide_bucket(x) == b && searched_last_at_or_below(map, x) == map.start[b] + 2;
  }
  CHECK(needs_two > 0);
}

TEST_CASE("guide buckets rise with x; -0 and +0 share one, a NaN takes the first") {
  CHECK(guide_bucket(-0.0f) == guide_bucket(0.0f));
  CHECK(guide_bucket(std::nanf("")) == 0);
  CHECK(guide_bucket(-std::nanf("")) == 0);
  CHECK(guide_bucket(-INFINITY) == 0);
  CHECK(guide_bucket(INFINITY) == kGuideBuckets - 1);
  std::vector<float> xs;
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 4093) {
    const float x = float_of_bits(static_cast<uint32_t>(bits));
    if (!std::isnan(x)) xs.push_back(x);
  }
  std::sort(xs.begin(), xs.end());
  int previous = 0;
  for (float x : xs) {
    const int b = guide_bucket(x);
    REQUIRE(b >= previous);
    previous = b;
  }
  CHECK(previous == kGuideBuckets - 1);
}

TEST_CASE("make_quant_map refuses values out of order and a bucket with more entries than the guide steps") {
  CHECK_THROWS_WITH(make_quant_map(std::array<float, 4>{0.0f, 0.5f, 0.25f, 1.0f}), doctest::Contains("make_quant_map: values not ascending"));
  CHECK_THROWS_WITH(make_quant_map(std::array<float, 4>{0.0f, 0.5f, 0.5f + 0x1p-20f, 0.5f + 0x1p-19f}),
                    doctest::Contains("make_quant_map: a guide bucket holds more than kGuideSteps entries"));
  CHECK_NOTHROW(make_quant_map(std::array<float, 4>{0.0f, 0.5f, 0.5f + 0x1p-20f, 1.0f}));
}
