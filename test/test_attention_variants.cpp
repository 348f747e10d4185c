// How flash attention picks its kernel variant on a device (cuda/attention/variant_choice.h),
// with fake variants: the fastest that passed validation wins, a failing or unavailable one never
// does (even when fastest), nothing is re-tried for a shape class already decided, classes are
// decided apart, and the fallback is taken when none passes. Runs without CUDA.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "cuda/attention/variant_choice.h"

using namespace llm;

namespace {

struct Fake {
  std::string name;
  bool available, passes;
  double ms;
};

// Trials that count how often the device is asked about each variant.
struct Bench {
  std::map<std::string, int> validated, timed;
  std::vector<std::string> logged;

  std::vector<VariantTrial> trials(const std::vector<Fake>& fakes) {
    std::vector<VariantTrial> out;
    for (const Fake& f : fakes)
      out.push_back({f.name, [f] { return f.available; },
                     [this, f] {
                       validated[f.name]++;
                       return f.passes;
                     },
                     [this, f] {
                       timed[f.name]++;
                       return f.ms;
                     }});
    return out;
  }
  std::function<void(const std::string&)> log() {
    return [this](const std::string& line) { logged.push_back(line); };
  }
};

const ShapeClass kCausal128{128, true, MaskKind::plain};

}  // namespace

TEST_CASE("the fastest variant that passed validation is chosen, and logged once") {
  VariantChoice choice("simt");
  Bench bench;
  const auto trials =
      bench.trials({{"v4", true, true, 0.5}, {"v3", true, true, 1.0}, {"v2", true, true, 3.0}});
  CHECK(choice.choose(kCausal128, trials, bench.log()) == "v4");
  REQUIRE(bench.logged.size() == 1);
  CHECK(bench.logged[0].rfind("v4 (", 0) == 0);
  // Cached: the same class again asks the device nothing and logs nothing.
  CHECK(choice.choose(kCausal128, trials, bench.log()) == "v4");
  CHECK(bench.validated["v4"] == 1);
  CHECK(bench.timed["v3"] == 1);
  CHECK(bench.logged.size() == 1);
}

TEST_CASE("a failing variant is never chosen, even the fastest; nor one not available") {
  VariantChoice choice("simt");
  Bench bench;
  CHECK(choice.choose(
            kCausal128,
            bench.trials(
                {{"v4", true, false, 0.1}, {"v3", true, true, 1.0}, {"v2", true, true, 3.0}}),
            bench.log()) == "v3");
  CHECK(bench.timed.count("v4") == 0);  // failed: never timed
  CHECK(bench.logged[0].find("v4 FAIL") != std::string::npos);
  const ShapeClass docs{64, false, MaskKind::documents};
  CHECK(choice.choose(
            docs,
            bench.trials(
                {{"v4", false, true, 0.1}, {"v3", true, false, 1.0}, {"v2", true, true, 3.0}}),
            bench.log()) == "v2");
  CHECK(bench.validated["v4"] == 1);  // by the first class only: unavailable, not validated
  CHECK(bench.logged[1].find("v4 n/a") != std::string::npos);
}

TEST_CASE("classes are decided apart; none passing gives the fallback; ties keep the order") {
  VariantChoice choice("simt");
  Bench bench;
  CHECK(choice.choose(kCausal128, bench.trials({{"v4", true, false, 0.1}, {"v3", true, false, 1}}),
                      bench.log()) == "simt");
  const ShapeClass s2{128, true, MaskKind::s2};
  CHECK(choice.choose(s2, bench.trials({{"v4", true, true, 1.0}, {"v3", true, true, 1.0}}),
                      bench.log()) == "v4");
  // The first class keeps its decision though its trials would now pass.
  CHECK(choice.choose(kCausal128, bench.trials({{"v4", true, true, 0.1}}), bench.log()) == "simt");
  CHECK(bench.logged.size() == 2);
}

TEST_CASE("a later variant displaces a preferred one only when clearly faster") {
  VariantChoice choice("simt");
  Bench bench;
  // 5% faster: timing noise between processes could say either, so the preferred one stays.
  CHECK(choice.choose(kCausal128, bench.trials({{"v4", true, true, 1.0}, {"v3", true, true, 0.95}}),
                      bench.log()) == "v4");
  // 20% faster: a real difference.
  const ShapeClass d64{64, true, MaskKind::plain};
  CHECK(choice.choose(d64, bench.trials({{"v4", true, true, 1.0}, {"v3", true, true, 0.8}}),
                      bench.log()) == "v3");
}
