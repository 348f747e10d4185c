// defines: snappy_decompress
#include "io/snappy.h"

#include <cstdint>

#include "engine/user_error.h"

namespace llm {

std::string snappy_decompress(std::string_view in, const std::string& what) {
  size_t at = 0;
  auto damaged = [&](const std::string& why) { return UserError(what + ": damaged snappy block: " + why); };
  auto byte = [&]() -> uint8_t {
    if (at >= in.size()) throw damaged("it ends early");
    return static_cast<uint8_t>(in[at++]);
  };
  // The header: the uncompressed length as a little-endian base-128 varint.
  uint64_t length = 0;
  for (int shift = 0;; shift += 7) {
    if (shift > 35) throw damaged("its length does not fit 32 bits");
    const uint8_t b = byte();
    length |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  // A copy writes at most 64 bytes for its 2 or more bytes of tag: a longer output is a damaged header.
  if (length > 32 * static_cast<uint64_t>(in.size())) throw damaged("its header's length is past what it can hold");
  std::string out;
  out.reserve(length);
  while (at < in.size()) {
    const uint8_t tag = byte();
    if ((tag & 3) == 0) {  // a literal: its length - 1 in the tag's upper bits, or in 1-4 bytes after it
      uint64_t n = tag >> 2;
      if (n >= 60) {
        const int bytes = static_cast<int>(n) - 59;
        n = 0;
        for (int i = 0; i < bytes; i++) n |= static_cast<uint64_t>(byte()) << (8 * i);
      }
      n += 1;
      if (n > in.size() - at) throw damaged("a literal runs past its end");
      if (out.size() + n > length) throw damaged("it holds more than its header's length");
      out.append(in.data() + at, n);
      at += n;
      continue;
    }
    // A copy of `n` bytes from `offset` back in the output: offsets of 11, 16 or 32 bits.
    uint64_t n = 0, offset = 0;
    if ((tag & 3) == 1) {
      n = 4 + ((tag >> 2) & 7);
      offset = (static_cast<uint64_t>(tag >> 5) << 8) | byte();
    } else {
      n = 1 + (tag >> 2);
      const int bytes = (tag & 3) == 2 ? 2 : 4;
      for (int i = 0; i < bytes; i++) offset |= static_cast<uint64_t>(byte()) << (8 * i);
    }
    if (offset == 0 || offset > out.size()) throw damaged("a copy reaches before its start");
    if (out.size() + n > length) throw damaged("it holds more than its header's length");
    // Byte by byte: a copy may overlap what it writes (a run of one repeated pattern).
    for (uint64_t i = 0; i < n; i++) out.push_back(out[out.size() - offset]);
  }
  if (out.size() != length)
    throw damaged("it holds " + std::to_string(out.size()) + " bytes, its header says " + std::to_string(length));
  return out;
}

}  // namespace llm
