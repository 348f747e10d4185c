// Arrow IPC data files and save_to_disk directories: io/arrow_ipc.h's rows against the rows pyarrow
// and HF's load_from_disk read from the same files (test/data/arrow, tools/make_arrow_fixtures.py):
// the stream format with several record batches, the file format, zstd buffers, every type the
// reader takes nested with nulls; a saved Dataset and DatasetDict found as Axolotl finds them;
// files the reader refuses, each in one line.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/arrow_ipc.h"
#include "io/documents.h"
#include "io/saved_dataset.h"
#include "io/tokenizer.h"
#include "test/compress_fixture.h"
#include "test/table_rows.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {
const TableFixtures kFixtures("arrow");
}  // namespace

// (temporal.arrow's dates and times as pyarrow casts them to their integers: JSON has no dates)
TEST_CASE("rows as pyarrow reads them: stream and file formats, zstd buffers, every type nested with nulls") {
  for (const char* name : {"chat.arrow", "kinds.arrow", "kinds_zstd.arrow", "temporal.arrow"}) {
    CAPTURE(name);
    check_rows(read_arrow_rows(kFixtures.file(name)), kFixtures.expected(name));
  }
  TempDir dir;  // gzip around a whole file, as HF's loaders extract one
  check_rows(read_arrow_rows(dir.write("chat.arrow.gz", gzip(read_file(kFixtures.file("chat.arrow"))))),
             kFixtures.expected("chat.arrow"));
}

// A DatasetDict's split by name; a Dataset whatever the split's name, as Axolotl takes
// load_from_disk's Dataset whole.
std::vector<std::string> saved_files(const std::string& dir, const std::string& split = "train") {
  std::vector<std::string> splits;
  std::optional<std::vector<std::string>> files = saved_dataset_files(dir, split, splits);
  return files ? *files : splits;
}

TEST_CASE("save_to_disk directories read as load_from_disk reads them: a Dataset, a DatasetDict's split") {
  const std::vector<std::string> files = saved_files(kFixtures.file("saved"));
  REQUIRE(files.size() == 1);
  CHECK(saved_files(kFixtures.file("saved"), "test") == files);
  CHECK(fs::path(files[0]).filename() == "data-00000-of-00001.arrow");
  check_rows(read_arrow_rows(files[0]), kFixtures.expected("saved"));
  const std::vector<std::string> train = saved_files(kFixtures.file("saved_dict"));
  REQUIRE(train.size() == 1);
  CHECK(fs::path(train[0]).parent_path().filename() == "train");
  check_rows(read_arrow_rows(train[0]), kFixtures.expected("saved_dict"));
  const std::vector<std::string> test = saved_files(kFixtures.file("saved_dict"), "test");
  REQUIRE(test.size() == 1);
  CHECK(fs::path(test[0]).parent_path().filename() == "test");
  CHECK(saved_files(kFixtures.file("saved_dict"), "validation") == std::vector<std::string>{"train", "test"});
  std::vector<std::string> splits;
  CHECK(!saved_dataset_files(kFixtures.dir.string(), "train", splits));  // no state.json: not a saved dataset
  CHECK(splits.empty());

  // As datasets: the saved directory's documents are its JSONL twin's; ds_type arrow reads any name.
  TempDir dir;
  const std::vector<std::string> want = document_pieces({kFixtures.jsonl_twin(dir, "saved"), "alpaca"});
  REQUIRE(want.size() > 15);
  CHECK(document_pieces({kFixtures.file("saved"), "alpaca"}) == want);
  DatasetSpec renamed{dir.write("rows.bin", read_file(files[0])), "alpaca"};
  renamed.ds_type = "arrow";
  CHECK(document_pieces(renamed) == want);
  // Another loader named for an Arrow file: the two disagree, which the line says.
  DatasetSpec json{dir.write("rows.arrow", read_file(files[0])), "alpaca"};
  json.ds_type = "json";
  CHECK(error_of([&] { document_pieces(json); }) ==
        json.path + ": ds_type: json, but a .arrow file holds arrow rows; drop ds_type (or give ds_type: arrow)");
}

TEST_CASE("what the reader does not read, and damaged files and directories, are one line naming the file") {
  CHECK(error_of([] { read_arrow_rows(kFixtures.file("lz4.arrow")); }) ==
        kFixtures.file("lz4.arrow") + ": an Arrow file of LZ4-compressed buffers, which are not read here (zstd "
                                      "and uncompressed ones are; or convert the file to JSONL)");
  CHECK(error_of([] { read_arrow_rows(kFixtures.file("binary.arrow")); }) ==
        kFixtures.file("binary.arrow") + ": column blob holds Binary values, which are not read here (convert the "
                                         "file to JSONL)");
  CHECK(error_of([] { read_arrow_rows(kFixtures.file("latin1.arrow")); }) ==  // pyarrow raises on the row too
        kFixtures.file("latin1.arrow") + ": column instruction holds a text value that is no UTF-8 (the byte 0xE9 at "
                                         "its byte 3), which pyarrow refuses to decode for HF's loaders; expected "
                                         "UTF-8 strings");
  CHECK(error_of([] { read_arrow_rows(kFixtures.file("dictionary.arrow")); }) ==
        kFixtures.file("dictionary.arrow") + ": column tag is dictionary-encoded, which is not read here (convert "
                                             "the file to JSONL)");
  TempDir dir;
  const std::string text = dir.write("rows.arrow", "{\"text\": \"not arrow\"}\n");
  CHECK(error_of([&] { read_arrow_rows(text); }) ==
        text + ": not an Arrow IPC file (expected the stream format's 0xFFFFFFFF or the file format's ARROW1 at its "
               "start)");
  const std::string bytes = read_file(kFixtures.file("chat.arrow"));
  const std::string cut = dir.write("cut.arrow", bytes.substr(0, bytes.size() / 2));
  CHECK(error_of([&] { read_arrow_rows(cut); }).find(cut + ": Arrow message at byte ") == 0);

  // A saved dataset whose state.json lists a missing file or one outside it; a DatasetDict without
  // the split asked for.
  fs::create_directories(dir.path / "saved");
  const std::string state = dir.write("saved/state.json", R"({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]})");
  CHECK(error_of([&] { saved_files((dir.path / "saved").string()); }) ==
        state + ": lists data file data-00000-of-00001.arrow, which is missing");
  dir.write("saved/state.json", R"({"_data_files": [{"filename": "../secret.arrow"}]})");
  CHECK(error_of([&] { saved_files((dir.path / "saved").string()); }) ==
        state + ": expected data files inside " + (dir.path / "saved").string() + ", got '../secret.arrow'");
  dir.write("saved/dataset_dict.json", R"({"splits": ["test", "validation"]})");
  CHECK(error_of([&] { load_documents(DatasetSpec{(dir.path / "saved").string(), "alpaca"}, ByteTokenizer()); }) ==
        (dir.path / "saved").string() + ": expected split 'train', got splits test, validation; name one of them");
  DatasetSpec test{(dir.path / "saved").string(), "alpaca"};
  test.split = "test";
  CHECK(error_of([&] { load_documents(test, ByteTokenizer()); }) ==
        (dir.path / "saved" / "test").string() + ": expected the DatasetDict's test split saved by save_to_disk (a "
                                                 "state.json), got none");
}
