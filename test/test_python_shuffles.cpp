// io/python_shuffles: numpy's and torch's seeded orders, bit for bit. Expected values printed by
// tools/make_shuffle_reference.py (numpy 2.4, torch 2.15).
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

// Axolotl's pretraining_dataset streams: HF datasets 4.8's IterableDataset.shuffle(seed,
// buffer_size) after set_epoch(epoch). A stream within its buffer is one numpy shuffle; a longer
// one draws 1000 indices at a time (2500 items through a buffer of 7: three batches, the final
// shuffle after the last whole batch); later epochs reseed from the original generator's first draw.
TEST_CASE("hf_stream_shuffle is datasets' IterableDataset.shuffle(seed, buffer_size) in an epoch") {
  CHECK(hf_stream_shuffle(10, 100, 42, 0) == numpy_permutation(10, 42));
  CHECK(hf_stream_shuffle(12, 12, 4294967301ULL, 0) == Order{6, 9, 5, 8, 2, 4, 7, 0, 11, 10, 3, 1});
  const auto check = [](const Order& order, const Order& head_and_spread, const Order& tail) {
    CHECK(is_permutation_of_iota(order));
    const int64_t n = static_cast<int64_t>(order.size());
    Order head(order.begin(), order.begin() + 5);
    for (int64_t k = 1; k <= 5; k++) head.push_back(order[static_cast<size_t>(n / 7 * k)]);
    CHECK(head == head_and_spread);
    CHECK(Order(order.end() - static_cast<int64_t>(tail.size()), order.end()) == tail);
  };
  check(hf_stream_shuffle(25, 8, 42, 0), {0, 6, 5, 3, 11, 3, 8, 14, 15, 21}, {22, 12, 17, 19, 16, 24, 23, 2});
  check(hf_stream_shuffle(25, 8, 42, 1), {5, 2, 1, 8, 9, 8, 11, 15, 4, 10}, {19, 22, 23, 24, 13, 3, 18, 16});
  check(hf_stream_shuffle(25, 8, 42, 2), {3, 8, 4, 7, 6, 7, 5, 14, 18, 16}, {19, 23, 17, 21, 10, 24, 20, 13});
  check(hf_stream_shuffle(2500, 7, 3, 0), {5, 0, 1, 9, 10, 361, 718, 1067, 1430, 1784},
        {2496, 2493, 2498, 2497, 2471, 2499, 2491});
  check(hf_stream_shuffle(2500, 7, 3, 1), {5, 4, 2, 6, 0, 362, 715, 1070, 1430, 1790},
        {2496, 2499, 2494, 2498, 2495, 2492, 2480});
}
