// A dataset entry's `split` (Axolotl passes it to HF's load_dataset): which split, and which rows
// of it, train, in HF's syntax. A local file has one split, "train"; a directory or a hub dataset
// the splits its paths name (io/dataset_directory.h). "train[:20%]", "test[100:]", "train[-10%:]"
// and "train[5:50]" take rows as Python slices do, a percentage rounded to the nearest row (half
// to even, as HF's default "closest" rounding).
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

namespace llm {

struct RowSlice {
  std::string split = "train";          // the split's name
  std::optional<long long> begin, end;  // absent: the start / the end
  bool percent = false;                 // both bounds in % of the rows
};

// nullopt unless `split` is NAME or NAME[A:B]: NAME one of HF's split names (\w+(\.\w+)*, as
// Unicode word characters), A and B optional, integers, both % or neither.
std::optional<RowSlice> parse_split(const std::string& split);

// [first, last) of `rows` rows.
std::pair<size_t, size_t> slice_rows(const RowSlice& slice, size_t rows);

}  // namespace llm
