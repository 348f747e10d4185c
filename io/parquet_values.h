// A Parquet page's values, decoded from each encoding a writer may choose (apache/parquet-format's
// Encodings.md): plain, dictionary indices, the RLE / bit-packing hybrid (levels and booleans),
// the delta encodings that parquet-mr's and pyarrow's v2 writers use (DELTA_BINARY_PACKED for
// integers, DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY for strings) and BYTE_STREAM_SPLIT for
// floating point. Each value becomes the JSON value a row holds.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace llm::parquet {

struct Bytes {
  const uint8_t* p;
  size_t n;
};

// The values of one column chunk: its physical type and its dictionary page's values, if any.
struct ValueDecoder {
  const std::string& file;
  std::string column;  // dotted path, for messages
  int32_t physical;    // PhysicalType
  std::vector<nlohmann::ordered_json> dictionary;

  // Throws UserError "<file>: column <column>: damaged Parquet data: <why>".
  [[noreturn]] void damaged(const std::string& why) const;

  // The RLE / bit-packing hybrid: `count` values of `width` bits.
  std::vector<uint32_t> hybrid(Bytes in, int width, size_t count) const;
  std::vector<nlohmann::ordered_json> plain(Bytes in, size_t count) const;
  // `count` values in `encoding` (Encoding); an encoding not read here is refused naming it.
  std::vector<nlohmann::ordered_json> values(Bytes in, int32_t encoding, size_t count) const;

 private:
  uint64_t uleb128(Bytes& in) const;
  std::vector<int64_t> delta_integers(Bytes& in, size_t count) const;
  std::vector<nlohmann::ordered_json> delta_strings(Bytes in, size_t count, bool with_prefixes) const;
  std::vector<nlohmann::ordered_json> byte_stream_split(Bytes in, size_t count) const;
};

}  // namespace llm::parquet
