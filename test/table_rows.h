// Shared by the tests of the table readers (test_parquet, test_arrow, test_csv): their fixtures,
// their rows against the rows pyarrow reads from the same fixture, and the documents a dataset of
// them gives.
#pragma once
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/documents.h"
#include "io/tokenizer.h"
#include "test/test_files.h"

namespace llm::testing {

// One format's fixtures in test/data/<format> (tools/make_<format>_fixtures.py): a file's path,
// and from expected.json the rows pyarrow reads from each file, by file name.
struct TableFixtures {
  std::filesystem::path dir;
  explicit TableFixtures(const char* format) : dir(std::filesystem::path(__FILE__).parent_path() / "data" / format) {}
  std::string file(const std::string& name) const { return (dir / name).string(); }
  nlohmann::ordered_json all_expected() const {
    return nlohmann::ordered_json::parse(read_file(file("expected.json")));
  }
  nlohmann::ordered_json expected(const std::string& name) const { return all_expected().at(name); }
  // Those rows written to `dir` as JSON Lines: the file's twin, which must give the same data.
  std::string jsonl_twin(const TempDir& dir, const std::string& name) const {
    std::string lines;
    for (const auto& row : expected(name)) lines += row.dump() + "\n";
    return dir.write(name + ".jsonl", lines);
  }
};

// Row for row, with the columns in the file's order too; numbered from 1 where the format has no
// lines (Parquet, Arrow: `numbered`), a CSV row by the line it starts on (test_csv checks those).
inline void check_rows(const std::vector<JsonRecord>& got, const nlohmann::ordered_json& rows, bool numbered = true) {
  REQUIRE(got.size() == rows.size());
  for (size_t r = 0; r < got.size(); r++) {
    CAPTURE(r);
    if (numbered) CHECK(got[r].line == static_cast<int64_t>(r) + 1);
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
