// CSV data files, read as HF's `csv` loader hands their rows to Axolotl: pandas' read_csv with its
// defaults (the C parser), then its columns' types as pyarrow takes them from pandas. Each row a
// JSON object keyed by the header's names, as io/parquet.h's rows.
//
// Parsing: comma-separated, double-quoted fields ("" a quote; line breaks inside), \n, \r\n or \r
// ending a line, blank and whitespace-only lines skipped, a UTF-8 BOM dropped; a header with an
// empty name gives "Unnamed: i", a repeated one "name.1"; a short row filled with nulls; every row
// one field longer than the header: the first field is pandas' index, dropped when pandas 3 makes
// it a RangeIndex (integers with a constant step), else a last column `__index_level_0__` (as
// pyarrow stores it). Values: pandas' default NA strings ("", NA, N/A, null, NULL, None, NaN,
// nan, ...) are null; a column is int64 when every other value is an integer (whitespace around
// allowed; uint64 past int64's range; every field as written when such a column also holds a
// null or a negative sign, as pandas' parser then gives up), float64 (ints too) when it holds a
// null among them or a decimal or exponent or inf, bool when every value is True/TRUE/true or
// False/FALSE/false, else text as written. One difference: HF infers types per 10 000-row chunk,
// this over the whole file.
#pragma once
#include <string>
#include <vector>

#include "io/documents.h"  // JsonRecord

namespace llm {

// Every row of the file (gzip or zstd compressed or not), each with its 1-based row number as
// `line`. Throws UserError naming the file and line on an unterminated quote or a row longer than
// its header.
std::vector<JsonRecord> read_csv_rows(const std::string& path);

}  // namespace llm
