// defines: ExampleSplit, split_examples, deduplicate_split, split_items: which examples train and
// which validate (val_set_size, test_datasets), after Axolotl's dataset_exact_deduplication.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/data_config.h"

namespace llm {

struct ExampleSet;
using LogFn = std::function<void(const std::string&)>;  // where start-up lines go

struct ExampleSplit {
  // Example (or item) indices, each list in the order of Axolotl's merged dataset: the datasets
  // concatenated, then, where DataConfig::merged_shuffled, HF's Dataset.shuffle(seed) of them.
  std::vector<int64_t> train, val;
};

// Positions [0, n) split as Axolotl's train_test_split(shuffle=False): the last ones validate.
// val_set_size < 1: that fraction of the examples (rounded up, at least 1 when > 0); > 1: that
// many (Axolotl's int(val_set_size)). Throws UserError ("val_set_size: ...") for 1 (Axolotl's
// fraction 1.0, which HF refuses) and when no training example would be left.
ExampleSplit split_examples(int64_t num_examples, double val_set_size);

// Axolotl's dataset_exact_deduplication on a split of items of `per_item` examples each (1; a
// preference pair or KTO row: 2): training items equal (tokens, labels, KTO's label) to an earlier
// training item are dropped, then validation items equal to any kept one (training or an earlier
// validation item). Each list keeps its order, so "earlier" is in that order.
void deduplicate_split(const ExampleSet& data, ExampleSplit& split, int64_t per_item = 1);

// The training and validation items (examples, or pairs and KTO rows of per_item 2) of `data`,
// whose last num_test examples are test_datasets', in their merged orders (ExampleSplit). As
// Axolotl: dataset_shard_num first keeps one contiguous shard of each merged order
// (DataConfig::shard_num); dataset_exact_deduplication then drops every item equal
// to an earlier one (test_datasets' within themselves, as its SFT
// preparation does, or also against the training ones under rl, as its RL loader does); then
// val_set_size splits what is left (split_examples).
ExampleSplit split_items(const ExampleSet& data, int64_t num_test, int64_t per_item,
                         const DataConfig& config, uint64_t seed, const LogFn& log);

}  // namespace llm
