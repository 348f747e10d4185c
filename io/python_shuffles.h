// defines: numpy_permutation, torch_randperm: the two seeded orders an Axolotl run draws its data
// in, reproduced bit for bit so that the same seed gives the same rows in the same order here.
// - numpy_permutation(n, seed) is `np.random.default_rng(seed).permutation(n)`: HF datasets'
//   Dataset.shuffle(seed), which Axolotl's merge_datasets (and shuffle_before_merging_datasets)
//   calls. numpy's SeedSequence, PCG64 (XSL-RR 128/64) and Generator.shuffle's bounded draws.
// - torch_randperm(n, seed) is `torch.randperm(n, generator=torch.Generator().manual_seed(seed))`:
//   each epoch's order under HF's Trainer, whose accelerate SeedableRandomSampler seeds it with
//   seed + epoch. torch's CPU mt19937 (std::mt19937's stream) and randperm's swap loop.
#pragma once
#include <cstdint>
#include <vector>

namespace llm {

std::vector<int64_t> numpy_permutation(int64_t n, uint64_t seed);
std::vector<int64_t> torch_randperm(int64_t n, uint64_t seed);

}  // namespace llm
