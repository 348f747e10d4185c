// Reads and edits of a tensor file's bytes for the tests that damage one on purpose
// (test_tensor_file, test_checkpoint).
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include <doctest/doctest.h>

namespace llm::testing {

// The JSON header of a tensor file (io/tensor_file.h's layout: 20 bytes, then the header).
inline nlohmann::json header_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char pre[20];
  in.read(pre, sizeof(pre));
  uint32_t length;
  std::memcpy(&length, pre + 12, 4);
  std::string text(length, '\0');
  in.read(text.data(), length);
  return nlohmann::json::parse(text);
}

// Where tensor `tensor`'s bytes start in the file.
inline uint64_t data_offset(const std::string& path, const std::string& tensor) {
  nlohmann::json header = header_of(path);
  for (const auto& t : header["tensors"])
    if (t["name"] == tensor) return t["offset"].get<uint64_t>();
  FAIL("no tensor " << tensor << " in " << path);
  return 0;
}

inline void overwrite(const std::string& path, uint64_t offset, const void* bytes, size_t n) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
  REQUIRE(f.good());
}

inline void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c ^= 0x10;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
  REQUIRE(f.good());
}

}  // namespace llm::testing
