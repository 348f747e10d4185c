// engine/torch_generator: torch's CPU randn and randint as apollo_torch draws its projections and
// seeds. Expected values printed by tools/make_torch_random_reference.py (torch 2.15, AVX512 CPU).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/torch_generator.h"

using namespace llm;

namespace {

struct Draw {
  int64_t n;
  uint64_t seed;
  float head[3], tail[3];
};

// Below 16 elements torch's kernel is scalar double Box-Muller: bit for bit. From 16 on, its
// vectorised f32 kernel takes its own polynomial log, sine and cosine where these take libm's:
// the same uniforms, to within a few units in the last place.
void check_draw(const Draw& d) {
  const std::vector<float> got = TorchGenerator(d.seed).randn(d.n);
  REQUIRE(static_cast<int64_t>(got.size()) == d.n);
  const float tolerance = d.n < 16 ? 0.0f : 2e-6f;
  for (int k = 0; k < 3; k++) {
    CAPTURE(k);
    CHECK(std::fabs(got[static_cast<size_t>(k)] - d.head[k]) <= tolerance * std::fabs(d.head[k]));
    CHECK(std::fabs(got[static_cast<size_t>(d.n - 3 + k)] - d.tail[k]) <= tolerance * std::fabs(d.tail[k]));
  }
}

}  // namespace

TEST_CASE("randn is torch.randn from a seeded CPU generator, tails of a partial block redrawn") {
  check_draw({16, 1, {-0x1.868d74p+0f, -0x1.801e62p-1f, -0x1.4ed696p-1f}, {0x1.afe6aap+0f, 0x1.d3d094p-3f, 0x1.dedbd8p-2f}});
  check_draw({20, 7, {-0x1.a3e8acp-1f, 0x1.952056p-2f, 0x1.cc3dbcp-1f}, {-0x1.20c57cp-1f, -0x1.073a2ap+1f, -0x1.6d48acp-2f}});
  check_draw({6, 3, {0x1.9b47p-1f, 0x1.660f0cp-3f, 0x1.6c744cp-4f}, {-0x1.3a394p-1f, 0x1.7a539ep-5f, -0x1.5e463cp+0f}});
  check_draw({33, 5, {0x1.d7a2eep+0f, 0x1.09ab94p-1f, -0x1.b6407ap+0f}, {-0x1.0d497ap-1f, -0x1.b29eap+0f, -0x1.0955e8p+0f}});
  check_draw({1024, 12345, {-0x1.7ad4aep+0f, 0x1.f30058p-2f, -0x1.81a33ap+1f}, {0x1.0424c2p-1f, -0x1.e78b8p-2f, 0x1.36f8eep+0f}});
}

TEST_CASE("apollo_next_seed is apollo_torch's next_seed: the last of 15 int64 randint draws") {
  int64_t seed = 1;
  for (int64_t expected : {505211975917066638LL, 7574884091489552460LL, 430731051963529425LL, 8673971657109261924LL}) {
    seed = apollo_next_seed(seed);
    CHECK(seed == expected);
  }
}

TEST_CASE("randint refuses a range its 32-bit draws would serve") {
  CHECK_THROWS_WITH(TorchGenerator(1).randint(100, 2),
                    doctest::Contains("a range of 2^32 or more"));
}
