// The table formats of datasets, each target seeded with its fixture files: Parquet (io/parquet.h,
// test/data/parquet, pyarrow-written: the footer's Thrift, page headers, levels, dictionary
// indices, delta blocks and snappy, gzip and zstd pages all come from the file), Arrow IPC
// (io/arrow_ipc.h, test/data/arrow: FlatBuffers metadata, field nodes, buffers, offsets, zstd
// buffers) and CSV (io/csv.h, test/data/csv: quoting, line ends, pandas' NA strings and types).
// An accepted file's rows must be objects in order: Parquet's and Arrow's numbered from 1, a CSV
// row by the line it starts on (after the header's, and a quoted field may span lines).
#include <algorithm>
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

// A table format's target, named as its fixture folder (test/data/NAME) and its files' extension:
// seeded with `seed_files` there, each input written as rows.NAME and read by `read`. `by_line`:
// rows carry the line they start on rather than their number.
Target table_target(const std::string& name, std::vector<std::string> dict, std::vector<std::string> seed_files,
                    std::vector<JsonRecord> (*read)(const std::string&), bool by_line = false) {
  return {name, name, std::move(dict),
          [name, seed_files](const std::string&) {
            const std::filesystem::path fixtures = std::filesystem::path(__FILE__).parent_path().parent_path() / "data" / name;
            std::vector<std::string> seeds;
            for (const std::string& file : seed_files) seeds.push_back(read_bytes((fixtures / file).string()));
            return seeds;
          },
          [name, read, by_line](const std::string& input, const std::string& scratch) {
            const std::string path = scratch + "/rows." + name;
            write_bytes(path, input);
            const std::vector<JsonRecord> rows = read(path);
            int64_t previous = 0;
            for (size_t r = 0; r < rows.size(); r++) {
              const int64_t line = rows[r].line;
              const bool in_order = by_line ? line > std::max<int64_t>(previous, 1) : line == static_cast<int64_t>(r) + 1;
              require(rows[r].value.is_object() && in_order, "a row that is not an object, or numbered out of order");
              previous = line;
            }
          }};
}

}  // namespace

Target parquet_target() {
  // Parquet's magic, Thrift's field headers and stops, small varints, snappy tags.
  return table_target("parquet",
                      {"PAR1", std::string(1, '\0'), "\x15", "\x16", "\x18", "\x19", "\x1c", "\x2c", "\x00\x00\x00\x00",
                       "\xff\xff\xff\x7f", "\x01", "\x03", "\x08", "\x15\x03"},
                      {"alpaca.parquet", "alpaca_v2_plain.parquet", "chat.parquet", "chat_v2.parquet",
                       "chat_gzip_v2.parquet", "zstd.parquet", "numbers_delta.parquet", "numbers_delta_v2.parquet"},
                      read_parquet_rows);
}

Target arrow_target() {
  // The stream's continuation marker and end, FlatBuffers' small offsets, Type and MessageHeader ids.
  return table_target("arrow",
                      {"\xff\xff\xff\xff", "ARROW1", std::string(4, '\0'), "\x01", "\x03", "\x05", "\x0c", "\x0d",
                       "\x10", "\x14", "\x15", "\x08\x00", "\xff\xff\xff\xff\xff\xff\xff\xff"},
                      {"chat.arrow", "kinds.arrow", "kinds_zstd.arrow", "saved/data-00000-of-00001.arrow"},
                      read_arrow_rows);
}

Target csv_target() {
  // Quotes, separators and line ends; pandas' NA strings, numbers at int64's edge, booleans.
  return table_target("csv",
                      {"\"", ",", "\n", "\r\n", "\r", "\"\"", "NA", "None", "", "9223372036854775808", "-", "1e3",
                       "inf", "True", "false", " ", "\xEF\xBB\xBF"},
                      {"alpaca.csv", "types.csv", "ints_with_nulls.csv", "index_kept.csv"}, read_csv_rows,
                      /*by_line=*/true);
}

}  // namespace llm::fuzz
