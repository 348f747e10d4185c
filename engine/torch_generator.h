// defines: TorchGenerator, torch's CPU generator (torch.Generator().manual_seed(seed)) drawn from
// as torch draws, bit for bit where it matters:
// - randperm and int64 random_(): HF's Trainer's epoch orders and samplers (io/python_shuffles.h);
// - randn and randint: APOLLO's random projections (engine/apollo.h), which apollo_torch draws
//   from a fresh CPU generator seeded per parameter, the next seed being a randint of the last.
// torch's mt19937 is std::mt19937's stream, seeded with the seed's low 32 bits.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace llm {

class TorchGenerator {
 public:
  explicit TorchGenerator(uint64_t seed);   // torch.manual_seed(seed)
  std::vector<int64_t> randperm(int64_t n);  // torch.randperm(n)
  int64_t random_int64();                    // torch.empty((), dtype=torch.int64).random_()
  // list(RandomSampler(range(n))): a generator seeded with random_int64(), then its randperm(n).
  std::vector<int64_t> random_sampler_order(int64_t n);
  // torch.randn(n) in f32 (any shape of n elements: the draws fill it in row-major order).
  std::vector<float> randn(int64_t n);
  // torch.randint(0, high, (n,)) for high >= 2^32 (the 64-bit draws).
  std::vector<int64_t> randint(int64_t high, int64_t n);

 private:
  uint64_t random64();  // two draws, the first the high half
  std::mt19937 engine_;
};

// apollo_torch's next_seed(seed): the last of 15 randint(0, 2^63 - 1) draws of a generator seeded
// with `seed`.
int64_t apollo_next_seed(int64_t seed);

}  // namespace llm
