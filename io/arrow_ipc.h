// Arrow IPC data files, read as HF's `arrow` loader and `load_from_disk` hand their rows to
// Axolotl: the IPC stream format that `datasets` caches and `save_to_disk` writes
// (data-00000-of-00001.arrow), and the IPC file format (ARROW1). Each row becomes a JSON object
// keyed by column, in column order, as io/parquet.h's rows.
//
// Read: null, boolean, signed and unsigned integer, half/single/double float and UTF-8 string
// (and large string) columns, dates, times, timestamps and durations as their integers (JSON has
// no dates), lists (and large and fixed-size lists) and structs nested to 64 levels, nulls at every
// level, record batches uncompressed or with zstd buffers. Refused in one line naming the file and
// column: binary, decimal, interval, map, union and view columns, dictionary-encoded columns, LZ4
// buffers and big-endian files.
#pragma once
#include <string>
#include <vector>

#include "io/documents.h"  // JsonRecord

namespace llm {

// Every row of the file (gzip or zstd compressed or not), each with its 1-based row number as
// `line`. Throws UserError naming the file on a damaged file or a column it does not read.
std::vector<JsonRecord> read_arrow_rows(const std::string& path);

}  // namespace llm
