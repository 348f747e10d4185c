// The binary table formats of datasets, seeded with pyarrow-written files: Parquet (io/parquet.h,
// test/data/parquet: the footer's Thrift, page headers, levels, dictionary indices, delta blocks
// and snappy, gzip and zstd pages all come from the file) and Arrow IPC (io/arrow_ipc.h,
// test/data/arrow: FlatBuffers metadata, field nodes, buffers, offsets, zstd buffers). An accepted
// file's rows must be objects numbered from 1. CSV (io/csv.h, test/data/csv: quoting, line ends,
// pandas' NA strings and types) as well.
#include <filesystem>

// defines: read_arrow_rows
#include "io/arrow_ipc.h"
// defines: read_csv_rows
#include "io/csv.h"
// defines: read_parquet_rows
#include "io/parquet.h"
// defines: Target, PropertyFailure
#include "test/fuzz/fuzz.h"

namespace llm::fuzz {

namespace {
void require_numbered_objects(const std::vector<JsonRecord>& rows) {
  for (size_t r = 0; r < rows.size(); r++)
    require(rows[r].value.is_object() && rows[r].line == static_cast<int64_t>(r) + 1,
            "a row that is not an object, or numbered out of order");
}
}  // namespace

Target parquet_target() {
  // Parquet's magic, Thrift's field headers and stops, small varints, snappy tags.
  std::vector<std::string> dict = {"PAR1", std::string(1, '\0'), "\x15", "\x16", "\x18", "\x19", "\x1c", "\x2c",
                                   "\x00\x00\x00\x00", "\xff\xff\xff\x7f", "\x01", "\x03", "\x08", "\x15\x03"};
  return {"parquet", "parquet", dict,
          [](const std::string&) {
            std::vector<std::string> seeds;
            const std::filesystem::path fixtures = std::filesystem::path(__FILE__).parent_path().parent_path() / "data" / "parquet";
            for (const char* name : {"alpaca.parquet", "alpaca_v2_plain.parquet", "chat.parquet", "chat_v2.parquet",
                                     "chat_gzip_v2.parquet", "zstd.parquet", "numbers_delta.parquet",
                                     "numbers_delta_v2.parquet"})
              seeds.push_back(read_bytes((fixtures / name).string()));
            return seeds;
          },
          [](const std::string& input, const std::string& scratch) {
            const std::string path = scratch + "/rows.parquet";
            write_bytes(path, input);
            require_numbered_objects(read_parquet_rows(path));
          }};
}

Target arrow_target() {
  // The stream's continuation marker and end, FlatBuffers' small offsets, Type and MessageHeader ids.
  std::vector<std::string> dict = {"\xff\xff\xff\xff", "ARROW1", std::string(4, '\0'), "\x01", "\x03", "\x05",
                                   "\x0c", "\x0d", "\x10", "\x14", "\x15", "\x08\x00", "\xff\xff\xff\xff\xff\xff\xff\xff"};
  return {"arrow", "arrow", dict,
          [](const std::string&) {
            std::vector<std::string> seeds;
            const std::filesystem::path fixtures = std::filesystem::path(__FILE__).parent_path().parent_path() / "data" / "arrow";
            for (const char* name : {"chat.arrow", "kinds.arrow", "kinds_zstd.arrow", "saved/data-00000-of-00001.arrow"})
              seeds.push_back(read_bytes((fixtures / name).string()));
            return seeds;
          },
          [](const std::string& input, const std::string& scratch) {
            const std::string path = scratch + "/rows.arrow";
            write_bytes(path, input);
            require_numbered_objects(read_arrow_rows(path));
          }};
}

Target csv_target() {
  // Quotes, separators and line ends; pandas' NA strings, numbers at int64's edge, booleans.
  std::vector<std::string> dict = {"\"", ",", "\n", "\r\n", "\r", "\"\"", "NA", "None", "", "9223372036854775808",
                                   "-", "1e3", "inf", "True", "false", " ", "\xEF\xBB\xBF"};
  return {"csv", "csv", dict,
          [](const std::string&) {
            std::vector<std::string> seeds;
            const std::filesystem::path fixtures = std::filesystem::path(__FILE__).parent_path().parent_path() / "data" / "csv";
            for (const char* name : {"alpaca.csv", "types.csv", "ints_with_nulls.csv", "index_kept.csv"})
              seeds.push_back(read_bytes((fixtures / name).string()));
            return seeds;
          },
          [](const std::string& input, const std::string& scratch) {
            const std::string path = scratch + "/rows.csv";
            write_bytes(path, input);
            require_numbered_objects(read_csv_rows(path));
          }};
}

}  // namespace llm::fuzz
