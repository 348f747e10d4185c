// CSV data files: io/csv.h's rows against the rows HF's csv loader (pandas' read_csv, then
// pyarrow) reads from the same files (test/data/csv, tools/make_csv_fixtures.py): pandas' quoting,
// line ends, blank lines, header names, NA strings and type inference; an alpaca CSV gives its
// JSONL twin's documents; a damaged file is one line naming it.
#include <doctest/doctest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "io/csv.h"
#include "test/compress_fixture.h"
#include "test/table_rows.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;
using json = nlohmann::ordered_json;

namespace {
const TableFixtures kFixtures("csv");
}  // namespace

TEST_CASE("rows as HF's csv loader reads them: quoting, names, NA strings, pandas' types, an index column") {
  for (const char* name : {"alpaca.csv", "types.csv", "ints_with_nulls.csv", "index.csv", "index_kept.csv"}) {
    CAPTURE(name);
    check_rows(read_csv_rows(kFixtures.file(name)), kFixtures.expected(name), false);
  }
  TempDir dir;  // pandas' infinities (JSON has none, so not in expected.json), and a gzip file
  const std::vector<JsonRecord> inf = read_csv_rows(dir.write("inf.csv", "a\ninf\n-Infinity\n+INF\n1e500\n"));
  REQUIRE(inf.size() == 4);
  CHECK(inf[0].value["a"].get<double>() == INFINITY);
  CHECK(inf[1].value["a"].get<double>() == -INFINITY);
  CHECK(inf[2].value["a"].get<double>() == INFINITY);
  CHECK(inf[3].value["a"].get<double>() == INFINITY);
  check_rows(read_csv_rows(dir.write("alpaca.csv.gz", gzip(read_file(kFixtures.file("alpaca.csv"))))),
             kFixtures.expected("alpaca.csv"), false);
  // A uint64 index is no RangeIndex (HF keeps it); steps past int64 are none either (found by fuzzing).
  check_rows(read_csv_rows(dir.write("uint_index.csv", "a,b\n9223372036854775808,x,1\n5,y,z\n")),
             json::parse(R"([{"a": "x", "b": "1", "__index_level_0__": 9223372036854775808},
                             {"a": "y", "b": "z", "__index_level_0__": 5}])"), false);
  check_rows(read_csv_rows(dir.write("far_index.csv", "a\n-9223372036854775808,x\n5,y\n")),
             json::parse(R"([{"a": "x", "__index_level_0__": -9223372036854775808}, {"a": "y", "__index_level_0__": 5}])"),
             false);
}

TEST_CASE("an alpaca CSV gives its JSONL twin's documents; ds_type csv reads any name") {
  TempDir dir;
  const std::vector<std::string> want = document_pieces({kFixtures.jsonl_twin(dir, "alpaca.csv"), "alpaca"});
  REQUIRE(want.size() >= 8);
  CHECK(document_pieces({kFixtures.file("alpaca.csv"), "alpaca"}) == want);
  DatasetSpec renamed{dir.write("rows.data", read_file(kFixtures.file("alpaca.csv"))), "alpaca"};
  renamed.ds_type = "csv";
  CHECK(document_pieces(renamed) == want);
}

TEST_CASE("a damaged CSV file is one line naming the file and line; each row's line is its own") {
  TempDir dir;
  const std::string open_quote = dir.write("open.csv", "a,b\n1,2\n\"never closed,3\n");
  CHECK(error_of([&] { read_csv_rows(open_quote); }) ==
        open_quote + ":3: a quoted field that never ends (EOF inside it)");
  const std::string wide = dir.write("wide.csv", "a,b\n1,2\n3,4,5\n");
  CHECK(error_of([&] { read_csv_rows(wide); }) == wide + ":3: expected 2 fields, as the header says, saw 3");
  const std::string latin1 = dir.write("latin1.csv", "a,b\n1,caf\xe9\n");  // pandas decodes strictly too
  CHECK(error_of([&] { read_csv_rows(latin1); }) ==
        latin1 + ":2: expected UTF-8 text, as HF's loaders decode the file, got the byte 0xE9, which no UTF-8 "
                 "character holds there (convert the file, e.g. iconv -f latin1 -t utf-8)");
  // A row's line is where it starts in the file (past the header, blank lines and quoted line breaks),
  // which a document's error names (a numeric text column: its first row, not the header).
  const std::vector<JsonRecord> rows = read_csv_rows(dir.write("lines.csv", "text\n12\n\n\"a\nb\"\n13\n"));
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].line == 2);
  CHECK(rows[1].line == 4);
  CHECK(rows[2].line == 6);
  CHECK(read_csv_rows(dir.write("empty.csv", "")).empty());
  CHECK(read_csv_rows(dir.write("header.csv", "a,b\n")).empty());
}
