// Shared by the tests of the binary table readers (test_parquet, test_arrow): their rows against
// the rows pyarrow reads from the same fixture, and the documents a dataset of them gives.
#pragma once
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/documents.h"
#include "io/tokenizer.h"

namespace llm::testing {

// Row for row, numbered from 1, with the columns in the file's order too.
inline void check_rows(const std::vector<JsonRecord>& got, const nlohmann::ordered_json& rows) {
  REQUIRE(got.size() == rows.size());
  for (size_t r = 0; r < got.size(); r++) {
    CAPTURE(r);
    CHECK(got[r].line == static_cast<int64_t>(r) + 1);
    CHECK(got[r].value == rows[r]);
    CHECK(got[r].value.dump() == rows[r].dump());
  }
}

// Each piece of each document of `spec` as "text|loss", byte-tokenized.
inline std::vector<std::string> document_pieces(const DatasetSpec& spec) {
  std::vector<std::string> out;
  for (const Document& d : load_documents(spec, ByteTokenizer()))
    for (const Piece& p : d.pieces) out.push_back(p.text + "|" + std::to_string(int(p.loss)));
  return out;
}

}  // namespace llm::testing
