// Parquet data files: io/parquet.h's rows against the rows pyarrow (HF datasets' parquet loader)
// reads from the same files (test/data/parquet, tools/make_parquet_fixtures.py): pyarrow's default
// dictionary + snappy pages, plain uncompressed v2 pages over several pages and row groups, and
// nested lists and structs with nulls at every level, gzip and zstd pages, the delta and
// byte-stream-split encodings. Snappy's block format by hand, gzip and zstd streams (io/decompress.h),
// files the reader refuses, and Parquet datasets (alpaca rows, DPO pairs) reading as their JSONL twins.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/user_error.h"
#include "io/decompress.h"
#include "io/documents.h"
#include "io/parquet.h"
#include "io/preference.h"
#include "io/snappy.h"
#include "io/tokenizer.h"
#include "test/compress_fixture.h"
#include "test/table_rows.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;
using json = nlohmann::ordered_json;

namespace {
const TableFixtures kFixtures("parquet");
}  // namespace

TEST_CASE("rows as pyarrow reads them: dictionary and plain pages, v1 and v2, nested lists and structs, nulls") {
  const json expected = kFixtures.all_expected();
  REQUIRE(expected.size() == 11);
  for (const auto& [name, rows] : expected.items()) {
    CAPTURE(name);
    check_rows(read_parquet_rows(kFixtures.file(name)), rows);
  }
}

TEST_CASE("snappy: literals and overlapping copies; a damaged block is one line") {
  // "abcabcabcabcX": a 3-byte literal, a copy of 9 bytes from 3 back (it overlaps what it writes),
  // then a 1-byte literal.
  const std::string block = std::string("\x0d\x08" "abc" "\x15\x03" "\x00" "X", 9);
  CHECK(snappy_decompress(block, "t") == "abcabcabcabcX");
  CHECK(error_of([] { snappy_decompress(std::string("\x05\x08" "ab", 4), "t"); }) ==
        "t: damaged snappy block: a literal runs past its end");
  CHECK(error_of([] { snappy_decompress(std::string("\x04\x05\x04", 3), "t"); }) ==
        "t: damaged snappy block: a copy reaches before its start");
  CHECK(error_of([] { snappy_decompress(std::string("\x09\x08" "abc", 5), "t"); }) ==
        "t: damaged snappy block: it holds 3 bytes, its header says 9");
}

TEST_CASE("gzip and zstd: several members or frames, growing output; damaged, cut or oversized data is one line") {
  std::string text;
  for (int i = 0; i < 40000; i++) text += "row " + std::to_string(i * 7919 % 10007) + " of the dataset\n";
  CHECK(gzip_decompress(gzip(text), "t") == text);
  CHECK(gzip_decompress(gzip("first\n") + gzip("second\n"), "t") == "first\nsecond\n");  // as Python's gzip
  CHECK(zstd_decompress(zstd(text), "t") == text);
  CHECK(zstd_decompress(zstd("first\n") + zstd("second\n"), "t") == "first\nsecond\n");
  const std::string gz = gzip(text), zs = zstd(text);
  CHECK(error_of([&] { gzip_decompress(gz.substr(0, gz.size() / 2), "f.gz"); }) ==
        "f.gz: damaged gzip data: it ends inside its stream (a truncated file?)");
  CHECK(error_of([&] { zstd_decompress(zs.substr(0, zs.size() / 2), "f.zst"); }) ==
        "f.zst: damaged Zstandard data: it ends inside a frame (a truncated file?)");
  CHECK(error_of([] { gzip_decompress("not gzip at all", "f.gz"); }) == "f.gz: damaged gzip data: incorrect header check");
  CHECK(error_of([] { zstd_decompress("not zstd at all", "f.zst"); }).find("f.zst: damaged Zstandard data: ") == 0);
  CHECK(error_of([&] { gzip_decompress(gz, "page", 1000); }) ==
        "page: damaged compressed data: more than the 1000 bytes its header says");
  CHECK(error_of([&] { zstd_decompress(zs, "page", 1000); }) ==
        "page: damaged compressed data: more than the 1000 bytes its header says");
  CHECK(gzip_decompress(gz, "page", text.size()) == text);  // exactly the limit is allowed
  CHECK(zstd_decompress(zs, "page", text.size()) == text);
  CHECK(zstd_decompress(zstd(text, true), "page", text.size()) == text);  // its checksum read after the limit's bytes
  const std::string one_over = "page: damaged compressed data: more than the " + std::to_string(text.size() - 1) +
                               " bytes its header says";
  CHECK(error_of([&] { gzip_decompress(gz, "page", text.size() - 1); }) == one_over);
  CHECK(error_of([&] { zstd_decompress(zs, "page", text.size() - 1); }) == one_over);
}

TEST_CASE("what the reader does not read is refused in one line naming the file and column") {
  CHECK(error_of([] { read_parquet_rows(kFixtures.file("brotli.parquet")); }).find(
            ": column instruction page at byte 4 is compressed with BROTLI, which is not read here (snappy, gzip and "
            "zstd are; or convert the file to JSONL)") != std::string::npos);
  CHECK(error_of([] { read_parquet_rows(kFixtures.file("binary.parquet")); }) ==
        kFixtures.file("binary.parquet") + ": column blob holds binary values, not text, which are not read here "
                                           "(convert the file to JSONL)");
  // A Latin-1 byte in a string column: pyarrow's to_pylist raises UnicodeDecodeError on the row.
  CHECK(error_of([] { read_parquet_rows(kFixtures.file("latin1.parquet")); }) ==
        kFixtures.file("latin1.parquet") + ": column instruction holds a text value that is no UTF-8 (the byte 0xE9 "
                                           "at its byte 3), which pyarrow refuses to decode for HF's loaders; "
                                           "expected UTF-8 strings");
  TempDir dir;
  const std::string text = dir.write("rows.parquet", "{\"text\": \"not parquet\"}\n");
  CHECK(error_of([&] { read_parquet_rows(text); }) == text + ": not a Parquet file (expected PAR1 at its start and end)");
  // Cut short: the footer's length runs past the file, or a page past its chunk.
  std::string bytes = read_file(kFixtures.file("alpaca.parquet"));
  const std::string cut = dir.write("cut.parquet", bytes.substr(0, 200) + bytes.substr(bytes.size() - 8));
  CHECK(error_of([&] { read_parquet_rows(cut); }).find(cut + ": ") == 0);
  uint32_t footer;
  std::memcpy(&footer, bytes.data() + bytes.size() - 8, 4);
  std::fill_n(bytes.end() - 8 - footer, footer, '\0');  // a footer that stops at once: no schema
  const std::string empty_footer = dir.write("footer.parquet", bytes);
  CHECK(error_of([&] { read_parquet_rows(empty_footer); }) == empty_footer + ": damaged Parquet file: no schema");
}

TEST_CASE("a Parquet dataset gives the documents of its JSONL twin; ds_type parquet reads any name") {
  TempDir dir;
  const std::string jsonl = kFixtures.jsonl_twin(dir, "alpaca.parquet");
  const std::vector<std::string> want = document_pieces({jsonl, "alpaca"});
  CHECK(document_pieces({kFixtures.file("alpaca.parquet"), "alpaca"}) == want);
  CHECK(document_pieces({kFixtures.file("alpaca_v2_plain.parquet"), "alpaca"}) == want);
  const std::string renamed = dir.write("rows.bin", read_file(kFixtures.file("alpaca.parquet")));
  DatasetSpec spec{renamed, "alpaca"};
  spec.ds_type = "parquet";
  CHECK(document_pieces(spec) == want);
}

TEST_CASE("DPO pairs from Parquet, as the hub stores them, are the pairs of their JSONL twin") {
  TempDir dir;
  const std::string jsonl = kFixtures.jsonl_twin(dir, "pairs.parquet");
  const ByteTokenizer tokenizer;
  auto texts = [&](const std::string& path) {
    DatasetSpec spec{path, "chatml.intel"};
    std::vector<PreferenceText> pairs;
    load_preference_file(path, spec, tokenizer, pairs);
    std::vector<std::string> out;
    for (const PreferenceText& p : pairs) out.push_back(p.prompt.str() + "|" + p.chosen.str() + "|" + p.rejected.str());
    return out;
  };
  const std::vector<std::string> want = texts(jsonl);
  REQUIRE(want.size() == 3);
  CHECK(texts(kFixtures.file("pairs.parquet")) == want);
}
