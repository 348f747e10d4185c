// Small datasets and readers of batches shared by the data pipeline's tests (test_data,
// test_data_cache, test_data_loader).
#pragma once
#include <cctype>
#include <memory>
#include <string>
#include <vector>

#include "io/dataset.h"
#include "test/test_files.h"

namespace llm::testing {

// A completion dataset at `data_path` (under `dir`, its token cache too), sequence_len 8.
inline DataConfig config_for(const TempDir& dir, const std::string& data_path) {
  DataConfig c;
  c.source = "test.yaml";
  c.datasets = {{data_path, "completion"}};
  c.dataset_prepared_path = (dir.path / "prepared").string();
  c.sequence_len = 8;
  return c;
}

inline std::vector<int32_t> ids(const Tensor& t) { return t.to_ints(); }

// n examples of `length` tokens; every token of example e is e, so rows are easy to recognise.
inline std::shared_ptr<const ExampleSet> counting_data(int64_t n, int64_t length) {
  auto data = std::make_shared<ExampleSet>();
  for (int64_t e = 0; e < n; e++) {
    const std::vector<int32_t> t(length, static_cast<int32_t>(e));
    data->add({t, t});
  }
  return data;
}

inline std::vector<int64_t> iota_windows(int64_t n) {
  std::vector<int64_t> w(n);
  for (int64_t i = 0; i < n; i++) w[i] = i;
  return w;
}

inline std::vector<Row> rows(int64_t n) { return one_example_per_row(iota_windows(n)); }
inline RowLayout layout(int64_t L) { return {L, false, false, 258}; }

// An example from text pieces: "x" untrained, "Y" trained (one byte token each).
inline Example example_of(const std::string& mask) {
  Example ex;
  for (char c : mask) {
    ex.tokens.push_back(c);
    ex.labels.push_back(std::isupper(static_cast<unsigned char>(c)) ? c : kIgnoreIndex);
  }
  return ex;
}

// The window index a batch row came from, read back from its first input token.
inline std::vector<int64_t> rows_of(const Batch& b, int64_t sequence_len) {
  std::vector<int32_t> in = ids(b.inputs);
  std::vector<int64_t> rows;
  for (size_t r = 0; r < in.size(); r += sequence_len) rows.push_back(in[r]);
  return rows;
}

}  // namespace llm::testing
