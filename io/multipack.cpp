// defines: multipack, row_length, packing_efficiency (see the header)
#include "io/multipack.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "io/dataset.h"

namespace llm {

namespace {

// First fit over the bins opened so far in O(log bins) an example: a max tree over each bin's
// room (-1 once it holds bin_size examples, or before it opens), searched for the leftmost bin
// whose room is at least the example's length.
class FirstFitBins {
 public:
  explicit FirstFitBins(int64_t most_bins) {
    while (leaves_ < most_bins) leaves_ *= 2;
    room_.assign(static_cast<size_t>(2 * leaves_), -1);
  }
  // The leftmost open bin with room >= n, or -1.
  int64_t find(int64_t n) const {
    if (room_[1] < n) return -1;
    size_t node = 1;
    while (node < static_cast<size_t>(leaves_)) node = room_[2 * node] >= n ? 2 * node : 2 * node + 1;
    return static_cast<int64_t>(node) - leaves_;
  }
  void set(int64_t bin, int64_t room) {
    size_t node = static_cast<size_t>(bin + leaves_);
    room_[node] = room;
    for (node /= 2; node >= 1; node /= 2) room_[node] = std::max(room_[2 * node], room_[2 * node + 1]);
  }

 private:
  int64_t leaves_ = 1;
  std::vector<int64_t> room_;
};

// Axolotl's pack_group on one group of examples.
void first_fit(const ExampleSet& data, const int64_t* examples, int64_t count, const MultipackOptions& o,
               std::vector<Row>& bins) {
  FirstFitBins open(count);
  std::vector<int64_t> room;
  const size_t first = bins.size();
  for (int64_t k = 0; k < count; k++) {
    const int64_t e = examples[k], n = data.length(e);
    int64_t bin = open.find(n);
    if (bin < 0) {
      bin = static_cast<int64_t>(room.size());
      room.push_back(o.capacity);
      bins.emplace_back();
    }
    Row& row = bins[first + static_cast<size_t>(bin)];
    row.push_back(e);
    room[static_cast<size_t>(bin)] -= n;
    open.set(bin, static_cast<int64_t>(row.size()) < o.bin_size ? room[static_cast<size_t>(bin)] : -1);
  }
}

// Axolotl's allocate_sequentially: next fit.
void next_fit(const ExampleSet& data, const std::vector<int64_t>& examples, int64_t capacity, std::vector<Row>& bins) {
  int64_t room = 0;
  for (int64_t e : examples) {
    const int64_t n = data.length(e);
    if (bins.empty() || n > room) {
      bins.emplace_back();
      room = capacity;
    }
    bins.back().push_back(e);
    room -= n;
  }
}

}  // namespace

std::vector<Row> multipack(const ExampleSet& data, const std::vector<int64_t>& examples,
                           const MultipackOptions& options) {
  if (options.capacity <= 0 || options.bin_size <= 0 || options.group_size <= 0)
    throw std::invalid_argument("multipack: needs capacity, bin_size and group_size > 0");
  for (int64_t e : examples)
    if (data.length(e) > options.capacity)
      throw std::invalid_argument("multipack: example " + std::to_string(e) + " of " + std::to_string(data.length(e)) +
                                  " tokens is longer than a bin of " + std::to_string(options.capacity));
  std::vector<Row> bins;
  if (options.sequential) {
    next_fit(data, examples, options.capacity, bins);
    return bins;
  }
  const int64_t n = static_cast<int64_t>(examples.size());
  for (int64_t begin = 0; begin < n; begin += options.group_size)
    first_fit(data, examples.data() + begin, std::min(options.group_size, n - begin), options, bins);
  return bins;
}

int64_t row_length(const ExampleSet& data, const Row& row) {
  int64_t n = 0;
  for (int64_t e : row) n += data.length(e);
  return n;
}

double packing_efficiency(const ExampleSet& data, const std::vector<Row>& rows, int64_t capacity) {
  int64_t used = 0;
  for (const Row& row : rows) used += row_length(data, row);
  return rows.empty() ? 0.0 : static_cast<double>(used) / (static_cast<double>(rows.size()) * capacity);
}

}  // namespace llm
