// io/python_shuffles: numpy's and torch's seeded orders, bit for bit. Expected values printed by
// tools/make_shuffle_reference.py (numpy 2.4, torch 2.15).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>

#include "io/python_shuffles.h"

using namespace llm;
using Order = std::vector<int64_t>;

namespace {

// The first five entries and five spread ones, as the script prints long orders.
Order sampled(const Order& order) {
  const int64_t n = static_cast<int64_t>(order.size());
  Order out(order.begin(), order.begin() + 5);
  for (int64_t k = 1; k <= 5; k++) out.push_back(order[static_cast<size_t>(n / 7 * k)]);
  return out;
}

bool is_permutation_of_iota(Order order) {
  std::sort(order.begin(), order.end());
  for (size_t i = 0; i < order.size(); i++)
    if (order[i] != static_cast<int64_t>(i)) return false;
  return true;
}

}  // namespace

TEST_CASE("numpy_permutation is np.random.default_rng(seed).permutation(n)") {
  CHECK(numpy_permutation(10, 42) == Order{5, 6, 0, 7, 3, 2, 4, 9, 1, 8});
  CHECK(numpy_permutation(12, 0) == Order{9, 2, 7, 4, 5, 11, 0, 3, 6, 10, 8, 1});
  // A seed of two 32-bit words (SeedSequence hashes both).
  CHECK(numpy_permutation(12, 4294967301ULL) == Order{6, 9, 5, 8, 2, 4, 7, 0, 11, 10, 3, 1});
  CHECK(numpy_permutation(1, 3) == Order{0});
  CHECK(numpy_permutation(0, 3).empty());
  const Order long_order = numpy_permutation(100003, 18446744073709551557ULL);
  CHECK(sampled(long_order) == Order{83679, 21825, 76607, 55397, 4405, 82900, 81843, 66038, 61949, 52779});
  CHECK(is_permutation_of_iota(long_order));
}

TEST_CASE("torch_randperm is torch.randperm(n) from Generator().manual_seed(seed)") {
  CHECK(torch_randperm(10, 42) == Order{2, 6, 1, 8, 4, 5, 0, 9, 3, 7});
  CHECK(torch_randperm(10, 43) == Order{8, 4, 9, 0, 5, 1, 6, 7, 2, 3});
  CHECK(torch_randperm(1, 9) == Order{0});
  CHECK(torch_randperm(0, 9).empty());
  // torch's mt19937 keeps the seed's low 32 bits: 2^40 + 3 draws as 3 would.
  const Order long_order = torch_randperm(100003, 1099511627779ULL);
  CHECK(sampled(long_order) == Order{88021, 54975, 41325, 53670, 38858, 72459, 82326, 15675, 61944, 89434});
  CHECK(long_order == torch_randperm(100003, 3));
  CHECK(is_permutation_of_iota(long_order));
}

TEST_CASE("TorchGenerator is torch's global generator: randperm after int64 random_() draws") {
  TorchGenerator global(11);
  CHECK(global.randperm(10) == torch_randperm(10, 11));
  TorchGenerator stream(11);
  stream.random_int64();
  CHECK(stream.randperm(10) == Order{0, 9, 3, 6, 1, 5, 7, 4, 8, 2});
  stream.random_int64();
  stream.random_int64();
  CHECK(stream.randperm(10) == Order{5, 9, 7, 4, 0, 8, 3, 1, 2, 6});
}

TEST_CASE("TorchGenerator: random_() of an int64, and RandomSampler's orders without a generator") {
  CHECK(TorchGenerator(11).random_int64() == 3325388913236545215);
  TorchGenerator global(11);  // torch.manual_seed(11); list(RandomSampler(range(10))) twice
  CHECK(global.random_sampler_order(10) == Order{1, 8, 6, 5, 7, 4, 9, 2, 3, 0});
  CHECK(global.random_sampler_order(10) == Order{4, 3, 2, 6, 7, 9, 8, 5, 1, 0});
}
