// CRC-32 (IEEE 802.3 polynomial, as zlib.crc32): what tensor files and checkpoint manifests
// checksum with, and the combination of the CRCs of consecutive pieces into the CRC of the whole,
// so that ranks which each read one piece of a tensor can verify it together.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace llm {

// The CRC-32 of `bytes` bytes continuing from `crc` (0 to start), as zlib.crc32.
uint32_t crc32(const void* data, size_t bytes, uint32_t crc = 0);
std::string crc32_hex(uint32_t crc);  // eight lowercase hex digits, as the file headers store it
// The CRC-32 of A followed by B from crc32(A), crc32(B) and B's length, without A's or B's bytes
// (as zlib's crc32_combine).
uint32_t crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b);

}  // namespace llm
