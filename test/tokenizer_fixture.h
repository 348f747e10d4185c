// Tokenizer fixtures: a small tiktoken ranks file (the 256 single bytes, then a few merges) for
// test_tokenizer (merge order) and the training tests; and where Meta's Llama 3 ranks file is.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace llm::testing {

inline std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) n |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) n |= uint8_t(bytes[i + 2]);
    for (size_t k = 0; k < 4; k++)
      out += i + k <= bytes.size() ? kAlphabet[(n >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

// The small vocabulary: ranks 0..255 are the single bytes, then these merges in rank order.
inline const std::vector<std::string> kMerges = {"ll", "he",  "hell", "hello",  " w",  "or",
                                                 " wor", "ld", " world", "12", "123", "el"};
inline constexpr int32_t kRanks = 256 + 12;

inline std::string small_ranks_text() {
  std::string text;
  for (int b = 0; b < 256; b++) text += base64(std::string(1, char(b))) + " " + std::to_string(b) + "\n";
  for (size_t i = 0; i < kMerges.size(); i++) text += base64(kMerges[i]) + " " + std::to_string(256 + i) + "\n";
  return text;
}

#ifdef LLM_LLAMA3_TOKENIZER_DEFAULT
// Meta's Llama 3 ranks file: LLM_LLAMA3_TOKENIZER, else the project's shared copy (CMake passes
// its path to the suites that use it); empty when the file is absent, and their cases skip.
inline std::string llama3_path() {
  const char* env = std::getenv("LLM_LLAMA3_TOKENIZER");
  const std::string path = env ? env : LLM_LLAMA3_TOKENIZER_DEFAULT;
  return std::filesystem::exists(path) ? path : "";
}
#endif

}  // namespace llm::testing
