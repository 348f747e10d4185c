// gzip and Zstandard decompression through zlib and libzstd (Debian's zlib1g-dev, libzstd-dev):
// Parquet's GZIP and ZSTD page codecs (ZSTD is Polars', DuckDB's and Spark pipelines' usual
// choice), and dataset files named .gz or .zst, which HF's loaders open decompressed.
#pragma once
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

namespace llm {

constexpr size_t kNoSizeLimit = std::numeric_limits<size_t>::max();

// The bytes of `compressed`, a gzip file (several members read one after the other, as Python's
// gzip module reads them) or a zlib stream. Throws UserError naming `what` on damaged or
// truncated data, or output beyond `limit` bytes (a Parquet page's stated size).
std::string gzip_decompress(std::string_view compressed, const std::string& what, size_t limit = kNoSizeLimit);

// The bytes of `compressed`, one or more Zstandard frames. Throws as gzip_decompress.
std::string zstd_decompress(std::string_view compressed, const std::string& what, size_t limit = kNoSizeLimit);

// A dataset file's bytes, decompressed when they are gzip or Zstandard data (told by their magic
// bytes, as HF's loaders extract a data file whatever its name). A file named .gz or .zst that
// holds other bytes is refused, naming what it should hold. `expected`: as read_whole_file's.
std::string read_data_file(const std::string& path, const std::string& expected);

// read_data_file for the loaders that decode the whole file as UTF-8 text, as HF's `text` and
// `csv` loaders do (Python's strict decode): bytes that are no UTF-8 are refused in one line
// naming the file, the line and the byte, rather than trained as bytes.
std::string read_utf8_data_file(const std::string& path, const std::string& expected);

// A string value of `file`'s text column `column`, which pyarrow decodes strictly as UTF-8 when
// HF's loaders read a row: anything else is refused in one line naming the file and column.
void require_utf8_value(const std::string& value, const std::string& file, const std::string& column);

// `path` without a .gz or .zst suffix: the name that says how the decompressed rows are read.
std::string without_compression_suffix(const std::string& path);

}  // namespace llm
