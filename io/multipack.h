// defines: MultipackOptions, multipack, row_length, packing_efficiency: Axolotl's sample packing
// (its MultipackBatchSampler) of examples into bins, each bin one row of a batch whose examples
// attend only within themselves.
#pragma once
#include <cstdint>
#include <vector>

namespace llm {

struct ExampleSet;
using Row = std::vector<int64_t>;  // the examples one row of a batch holds, in order

struct MultipackOptions {
  // Tokens a bin holds: micro_batch_size x sequence_len (Axolotl's default with a varlen
  // attention: one bin is a micro-batch), or sequence_len with multipack_real_batches.
  int64_t capacity = 0;
  int64_t bin_size = 200;      // sample_packing_bin_size: examples a bin holds at most
  int64_t group_size = 100000;  // sample_packing_group_size: examples packed at a time
  bool sequential = false;     // sample_packing_sequentially
};

// The examples, in the order given (the sampler's: an epoch's random order, or curriculum_
// sampling's fixed one), packed as Axolotl packs them. By default its pack_parallel: each run of
// group_size examples on its own, each example into the first bin (in opening order) with room
// for it and fewer than bin_size examples, else into a new bin; so no example is split or lost,
// and the bins come in the order they were opened. sequential: its allocate_sequentially, next
// fit (each example into the newest bin while it fits, else a new one), keeping the order.
// Throws std::invalid_argument when an example is longer than the capacity.
std::vector<Row> multipack(const ExampleSet& data, const std::vector<int64_t>& examples,
                           const MultipackOptions& options);

// The tokens of a row's examples.
int64_t row_length(const ExampleSet& data, const Row& row);
// Tokens held / (rows x capacity).
double packing_efficiency(const ExampleSet& data, const std::vector<Row>& rows, int64_t capacity);

}  // namespace llm
