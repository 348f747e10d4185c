// Apache Parquet data files, read as HF's `parquet` loader (pyarrow) hands their rows to Axolotl:
// the format most hub datasets are stored in. Each row becomes a JSON object keyed by column, in
// column order; a nested column's lists and structs are JSON arrays and objects, a null is null.
//
// Read: data pages v1 and v2 in every encoding a writer may choose for these types (plain,
// dictionary, the delta encodings, byte stream split: io/parquet_values.h), uncompressed or
// snappy (pyarrow's and HF's default), gzip or zstd (Polars', DuckDB's, Spark's) pages; boolean,
// 32/64-bit integer and float and UTF-8 string columns, lists (3-level and legacy 2-level) and
// structs nested to any depth. Refused in one line naming the file and column: the LZ4 and
// Brotli codecs, binary, INT96 and fixed-length columns, and maps.
#pragma once
#include <string>
#include <vector>

#include "io/documents.h"  // JsonRecord

namespace llm {

// Every row of the file, each with its 1-based row number as `line`. Throws UserError naming the
// file on a damaged file or a column it does not read.
std::vector<JsonRecord> read_parquet_rows(const std::string& path);

}  // namespace llm
