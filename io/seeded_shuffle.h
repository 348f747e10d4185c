// defines: shuffle_in_place, shuffle_seeded: the data pipeline's seeded shuffles (the validation
// split, each epoch's rows, curriculum_sampling's fixed order, shuffle_before_merging_datasets),
// the same on every standard library.
#pragma once
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace llm {

// Fisher-Yates with our own index draw: std::shuffle's draws differ between standard libraries,
// and a seed must give the same order everywhere. The modulo bias is below 2^-40 for any
// realistic number of rows.
inline void shuffle_in_place(std::vector<int64_t>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; i--) std::swap(v[i - 1], v[rng() % i]);
}

// The shuffle of (seed, key): an epoch's rows, or (key 0) curriculum_sampling's one fixed order.
inline void shuffle_seeded(std::vector<int64_t>& v, uint64_t seed, int64_t key) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(key),
                    static_cast<uint32_t>(key >> 32)};
  std::mt19937_64 rng(seq);
  shuffle_in_place(v, rng);
}

}  // namespace llm
