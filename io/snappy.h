// Snappy decompression (the raw block format, google/snappy's format_description.txt): what
// Parquet's SNAPPY codec stores, the compression HF's datasets and pyarrow write by default.
#pragma once
#include <string>
#include <string_view>

namespace llm {

// The bytes `compressed` holds. Throws UserError naming `what` (a file and page) on a block that
// is damaged: a length past the input, a copy reaching before the output's start, or an output
// that is not the length the block's header says.
std::string snappy_decompress(std::string_view compressed, const std::string& what);

}  // namespace llm
