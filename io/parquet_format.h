// Parquet's footer and page headers (apache/parquet-format's parquet.thrift), the fields a reader
// of HF datasets' files needs, parsed from Thrift's compact protocol (io/thrift_compact.h).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llm::parquet {

enum class PhysicalType { boolean = 0, int32 = 1, int64 = 2, int96 = 3, float32 = 4, float64 = 5, byte_array = 6,
                          fixed_len_byte_array = 7 };
enum class Repetition { required = 0, optional = 1, repeated = 2 };
enum Codec { kUncompressed = 0, kSnappy = 1, kGzip = 2, kLzo = 3, kBrotli = 4, kLz4 = 5, kZstd = 6, kLz4Raw = 7 };
enum Encoding { kPlain = 0, kPlainDictionary = 2, kRle = 3, kBitPacked = 4, kDeltaBinaryPacked = 5,
                kDeltaLengthByteArray = 6, kDeltaByteArray = 7, kRleDictionary = 8, kByteStreamSplit = 9 };

struct SchemaElement {
  std::string name;
  int32_t type = -1;  // PhysicalType; -1: a group
  Repetition repetition = Repetition::required;
  int32_t num_children = 0;
  int32_t converted_type = -1;  // UTF8 0, MAP 1, MAP_KEY_VALUE 2, LIST 3, ENUM 4, JSON 19
  int32_t logical_type = -1;    // the LogicalType union's field: STRING 1, MAP 2, LIST 3, ENUM 4, JSON 12
};

struct ColumnChunk {
  int32_t type = 0;
  std::vector<std::string> path;
  int32_t codec = 0;
  int64_t num_values = 0;
  int64_t total_compressed_size = 0;
  int64_t data_page_offset = 0;
  int64_t dictionary_page_offset = -1;  // -1: none
};

struct RowGroup {
  std::vector<ColumnChunk> columns;
  int64_t num_rows = 0;
};

struct FileMetaData {
  std::vector<SchemaElement> schema;  // depth first, the root first
  int64_t num_rows = 0;
  std::vector<RowGroup> row_groups;
};

enum class PageType { data = 0, index = 1, dictionary = 2, data_v2 = 3 };

struct PageHeader {
  int32_t type = 0;
  int32_t uncompressed_page_size = 0, compressed_page_size = 0;
  int32_t num_values = 0;
  int32_t encoding = 0;
  // DATA_PAGE_V2: the levels' sizes (stored uncompressed, before the values) and is_compressed.
  int32_t definition_levels_byte_length = 0, repetition_levels_byte_length = 0;
  bool is_compressed = true;
  size_t header_bytes = 0;  // how many bytes the header took
};

// `what` names the file in messages.
FileMetaData parse_file_metadata(std::string_view bytes, const std::string& what);
PageHeader parse_page_header(std::string_view bytes, const std::string& what);

}  // namespace llm::parquet
