// Token cache: the tokenized examples of a config's datasets, kept in one binary file in
// dataset_prepared_path so a rerun skips reading and tokenizing the sources.
//   header (48 bytes, little-endian): magic "LLMTOK01", u32 version (8), u32 dtype code (i32),
//     u64 token count N, u64 example count E, u64 source checksum, u64 payload checksum
//   payload: N i32 tokens, N i32 labels, E + 1 i64 example offsets, 5 i64 ExampleStats, E u8
//     desirable flags (rl: kto; else 0)
// The source checksum is FNV-1a 64 over what decides the examples: the tokenizer, sequence_len,
// train_on_inputs, excess_length_strategy, each dataset's keys, each source file's name and
// bytes, and the seed of shuffle_before_merging_datasets. It is reused only when that checksum matches; a corrupt or truncated file is rebuilt
// with a warning (it is a cache, not user data). Files are written to a per-process temporary
// name and renamed, so ranks that build it at once never see a partial file.
#pragma once
#include <cstdint>
#include <string>

#include "io/dataset.h"

namespace llm {

constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ull;
uint64_t fnv1a64(const void* data, size_t bytes, uint64_t hash = kFnvOffsetBasis);

// `seed` counts only where it decides the examples' order (shuffle_before_merging_datasets).
uint64_t token_cache_checksum(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer);
// dataset_prepared_path/tokens.bin.
std::string token_cache_path(const DataConfig& config);

struct CachedExamples {
  ExampleSet data;
  std::string path;
  bool reused = false;  // true: read from the cache, no source tokenized
  uint64_t checksum = 0;  // token_cache_checksum: the sources' bytes and the settings they were read with
};

// Reads the cache when valid, else loads, tokenizes and packs the datasets and writes it. `log`
// gets "reusing token cache <path>", "wrote token cache <path> (N tokens)" and warnings.
CachedExamples load_or_build_token_cache(const DataConfig& config, uint64_t seed,
                                         const Tokenizer& tokenizer, const LogFn& log);
// test_datasets' examples from their own token cache (test_datasets/ under dataset_prepared_path),
// kept to eval_sequence_len where it is set.
CachedExamples load_test_examples(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer,
                                  const LogFn& log);

}  // namespace llm
