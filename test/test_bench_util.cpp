// llm_bench's shared arithmetic (tools/bench_util.h): the median of its timings and the error that
// decides a kernel's FAIL.
#include <cmath>

#include "test/test_util.h"
#include "tools/bench_util.h"

using namespace llm;

TEST_CASE("median: the middle value, or the mean of the two middle values of an even count") {
  CHECK(median({30, 10, 20}) == 20);
  CHECK(median({10, 30}) == 20);
  CHECK(median({40, 10, 30, 20}) == 25);
  CHECK(median({7}) == 7);
}

TEST_CASE("a NaN anywhere in a kernel's output is its error, so the check `err <= limit` fails") {
  const Tensor want = Tensor::from_floats({1, 1, 2}, {3});
  CHECK(max_abs_diff(Tensor::from_floats({1, 1.5f, 2}, {3}), want) == 0.5f);
  CHECK(std::isnan(max_abs_diff(Tensor::from_floats({NAN, 1, 2}, {3}), want)));
  CHECK(std::isnan(max_abs_diff(Tensor::from_floats({1, NAN, NAN}, {3}), want)));
  CHECK(std::isnan(worse_error(0.5, static_cast<double>(NAN))));
  CHECK(std::isnan(worse_error(static_cast<double>(NAN), 0.5)));
  CHECK(worse_error(0.25, 0.5) == 0.5);
}
