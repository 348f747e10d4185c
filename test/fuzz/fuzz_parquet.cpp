// Parquet data files (io/parquet.h), seeded with test/data/parquet's pyarrow-written files: the
// footer's Thrift, page headers, levels, dictionary indices, delta blocks and snappy, gzip and
// zstd pages all come from the file. An accepted file's rows must be objects numbered from 1.
#include <filesystem>

// defines: read_parquet_rows
#include "io/parquet.h"
// defines: Target, PropertyFailure
#include "test/fuzz/fuzz.h"

namespace llm::fuzz {

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
            const std::vector<JsonRecord> rows = read_parquet_rows(path);
            for (size_t r = 0; r < rows.size(); r++)
              require(rows[r].value.is_object() && rows[r].line == static_cast<int64_t>(r) + 1,
                      "a row that is not an object, or numbered out of order");
          }};
}

}  // namespace llm::fuzz
