// Axolotl's diffusion sample generation (train/diffusion_samples.h): which rows it takes, what it
// masks, and the reverse diffusion's order of filling, against a model of known logits.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "engine/ops.h"
#include "train/diffusion_samples.h"

using namespace llm;

namespace {

constexpr int32_t kMask = 4;
constexpr int64_t kVocab = 5;

// Row j's logits: token (j + 1) % 4 at j + 1 (so later rows are more confident), the mask token
// at 100 (never chosen), the rest 0. A masked position i reads row i - 1: it gets i % 4.
std::vector<float> known_logits(const std::vector<int32_t>& ids) {
  std::vector<float> out(ids.size() * kVocab, 0.0f);
  for (size_t j = 0; j < ids.size(); j++) {
    out[j * kVocab + (j + 1) % 4] = static_cast<float>(j + 1);
    out[j * kVocab + kMask] = 100.0f;
  }
  return out;
}

}  // namespace

TEST_CASE("diffusion_sample_row: at least 10 tokens; the prompt whole, then the answers that fit") {
  std::vector<int32_t> ids(20), labels(20);
  std::iota(ids.begin(), ids.end(), 0);
  for (int i = 0; i < 20; i++) labels[i] = i < 6 ? kIgnoreIndex : ids[i];
  const auto cut = diffusion_sample_row(ids.data(), labels.data(), 20, 12);
  REQUIRE(cut);
  CHECK(cut->ids == std::vector<int32_t>(ids.begin(), ids.begin() + 12));
  CHECK(cut->labels == std::vector<int32_t>(labels.begin(), labels.begin() + 12));
  CHECK(diffusion_sample_row(ids.data(), labels.data(), 20, 100)->ids.size() == 20);
  CHECK_FALSE(diffusion_sample_row(ids.data(), labels.data(), 9, 100));  // too short
  CHECK_FALSE(diffusion_sample_row(ids.data(), labels.data(), 20, 6));   // the prompt fills the cap
  const std::vector<int32_t> prompt_only(20, kIgnoreIndex);
  CHECK_FALSE(diffusion_sample_row(ids.data(), prompt_only.data(), 20, 100));
}

TEST_CASE("diffusion_sample_mask: every answer token of a prompted row; else a drawn share in [0.1, 0.7)") {
  DiffusionSampleRow sft{{1, 2, 3, 4, 5, 6}, {kIgnoreIndex, kIgnoreIndex, 3, 4, 5, 6}};
  CHECK(diffusion_sample_mask(sft, 7) == std::vector<uint8_t>{0, 0, 1, 1, 1, 1});
  DiffusionSampleRow text;
  text.ids.resize(100);
  std::iota(text.ids.begin(), text.ids.end(), 0);
  text.labels = text.ids;
  std::vector<int64_t> counts;
  for (uint64_t seed = 0; seed < 20; seed++) {
    const std::vector<uint8_t> m = diffusion_sample_mask(text, seed);
    CHECK(m == diffusion_sample_mask(text, seed));  // a function of the seed
    counts.push_back(std::count(m.begin(), m.end(), 1));
    CHECK(counts.back() >= 10);
    CHECK(counts.back() < 70);
  }
  CHECK(*std::max_element(counts.begin(), counts.end()) > *std::min_element(counts.begin(), counts.end()));
  text.ids.resize(3), text.labels.resize(3);  // at least one token, however short
  const std::vector<uint8_t> m = diffusion_sample_mask(text, 1);
  CHECK(std::count(m.begin(), m.end(), 1) >= 1);
}

TEST_CASE("denoise: the most confident max(1, remaining / steps left) first, from the logits to the left") {
  std::vector<int32_t> ids = {0, kMask, kMask, kMask, 9, kMask, 9, kMask, kMask, 9};  // masks at 1, 2, 3, 5, 7, 8
  std::vector<std::vector<int32_t>> seen;
  const std::vector<int32_t> out = denoise(ids, kMask, kVocab, 3, 0.0, 1, [&](const std::vector<int32_t>& now) {
    seen.push_back(now);
    return known_logits(now);
  });
  CHECK(out == std::vector<int32_t>{0, 1, 2, 3, 9, 1, 9, 3, 0, 9});
  // 6 masks over 3 steps: 2 (int(6 / 3)), then 2 (int(4 / 2)), then the last 2; the rows further
  // right are more confident, so 8 and 7 come first, then 5 and 3.
  REQUIRE(seen.size() == 3);
  CHECK(seen[1] == std::vector<int32_t>{0, kMask, kMask, kMask, 9, kMask, 9, 3, 0, 9});
  CHECK(seen[2] == std::vector<int32_t>{0, kMask, kMask, 3, 9, 1, 9, 3, 0, 9});
  // More steps than masks: one a step, and no pass once none is left.
  seen.clear();
  denoise(ids, kMask, kVocab, 50, 0.0, 1, [&](const std::vector<int32_t>& now) {
    seen.push_back(now);
    return known_logits(now);
  });
  CHECK(seen.size() == 6);
}

TEST_CASE("denoise at a temperature: Gumbel draws from the seed, never the mask token") {
  const std::vector<int32_t> ids(12, kMask);
  const auto flat = [](const std::vector<int32_t>& now) {  // every token alike but the mask's
    std::vector<float> out(now.size() * kVocab, 0.0f);
    for (size_t j = 0; j < now.size(); j++) out[j * kVocab + kMask] = 100.0f;
    return out;
  };
  const std::vector<int32_t> a = denoise(ids, kMask, kVocab, 4, 1.0, 5, flat);
  CHECK(a == denoise(ids, kMask, kVocab, 4, 1.0, 5, flat));
  CHECK(a != denoise(ids, kMask, kVocab, 4, 1.0, 6, flat));
  CHECK(std::none_of(a.begin(), a.end(), [](int32_t t) { return t == kMask; }));
  CHECK(std::set<int32_t>(a.begin(), a.end()).size() > 1);  // drawn, not the argmax of a tie
}
