// defines: crc32, crc32_hex, crc32_combine
#include "io/crc32.h"

#include <cstdio>
#include <cstring>

namespace llm {
namespace {

constexpr uint32_t kPoly = 0xedb88320u;  // IEEE 802.3, bit-reversed: bit 31 is x^0

// Slicing-by-8: eight bytes per step through eight tables, several GB/s, so checksumming a
// multi-GB optimizer state costs less than writing it.
struct Crc32Tables {
  uint32_t t[8][256];
  Crc32Tables() {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? kPoly ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
      for (int s = 1; s < 8; s++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
};

const Crc32Tables& crc_tables() {
  static const Crc32Tables tables;
  return tables;
}

// a * b modulo the polynomial, both in the bit-reversed representation (bit 31: x^0).
uint32_t multiply_mod(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t bit = 1u << 31; bit != 0; bit >>= 1) {
    if (a & bit) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;  // b * x
  }
  return product;
}

// x^(8 n) modulo the polynomial: appending n zero bytes multiplies a CRC's register by it.
uint32_t x_to_8n(uint64_t n) {
  uint32_t power = 1u << 31;        // x^0
  uint32_t square = 1u << 23;       // x^8, then x^16, x^32, ... by squaring
  for (; n != 0; n >>= 1) {
    if (n & 1) power = multiply_mod(power, square);
    square = multiply_mod(square, square);
  }
  return power;
}

}  // namespace

uint32_t crc32(const void* data, size_t bytes, uint32_t crc) {
  const auto& t = crc_tables().t;
  const unsigned char* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (; bytes >= 8; bytes -= 8, p += 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= crc;
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
          t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
  }
  for (; bytes > 0; bytes--, p++) crc = t[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::string crc32_hex(uint32_t crc) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", crc);
  return buf;
}

// crc32 is linear apart from its pre- and post-inversion, which cancel here: the register after A,
// carried through |B| more bytes, is crc(A) x^(8|B|); B's own CRC adds the rest.
uint32_t crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b) {
  return multiply_mod(x_to_8n(bytes_b), crc_a) ^ crc_b;
}

}  // namespace llm
