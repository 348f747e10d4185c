// defines: numpy_permutation, torch_randperm: the two seeded orders an Axolotl run draws its data
// in, reproduced bit for bit so that the same seed gives the same rows in the same order here.
// - numpy_permutation(n, seed) is `np.random.default_rng(seed).permutation(n)`: HF datasets'
//   Dataset.shuffle(seed), which Axolotl's merge_datasets (and shuffle_before_merging_datasets)
//   calls. numpy's SeedSequence, PCG64 (XSL-RR 128/64) and Generator.shuffle's bounded draws.
// - torch_randperm(n, seed) is `torch.randperm(n, generator=torch.Generator().manual_seed(seed))`:
//   each epoch's order under HF's Trainer, whose accelerate SeedableRandomSampler seeds it with
//   seed + epoch. torch's CPU mt19937 (std::mt19937's stream) and randperm's swap loop.
// - TorchGenerator (engine/torch_generator.h) is torch's CPU generator as a stream: HF's
//   LengthGroupedSampler (group_by_length) draws its permutation from torch's global generator,
//   which set_seed(seed) seeds and every DataLoader iteration (training epochs and evaluations
//   alike) advances by one int64 base seed; a RandomSampler without a generator of its own
//   (Axolotl's multipack count) seeds one from it.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/torch_generator.h"

namespace llm {

std::vector<int64_t> numpy_permutation(int64_t n, uint64_t seed);
// HF datasets 4.8's IterableDataset.shuffle(seed, buffer_size) on a stream of n items, in epoch
// `epoch` (set_epoch): the order the items come out in. A buffer of buffer_size items, each next
// item replacing the one drawn (numpy's integers(0, buffer_size), 1000 at a time) and the rest
// shuffled at the end; from epoch 1 on the generator is default_rng(default_rng(seed).integers(0,
// 2^63) - epoch), as its shift_rngs makes it. in_worker: iterated in torch's dataloader worker 0,
// which shifts that generator once more (by its id, 0).
std::vector<int64_t> hf_stream_shuffle(int64_t n, int64_t buffer_size, uint64_t seed, int64_t epoch,
                                       bool in_worker = false);

std::vector<int64_t> torch_randperm(int64_t n, uint64_t seed);

}  // namespace llm
