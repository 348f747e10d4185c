// defines: ValueDecoder
#include "io/parquet_values.h"

#include <cstring>

#include "engine/user_error.h"
#include "io/parquet_format.h"

namespace llm::parquet {
namespace {

using json = nlohmann::ordered_json;

// `width` (at most 64) bits from bit `bit` on, least significant first: how the hybrid and the
// delta encodings pack their values.
uint64_t packed_bits(const uint8_t* p, uint64_t bit, int width) {
  uint64_t value = 0;
  for (int got = 0; got < width;) {
    const uint64_t at = bit + static_cast<uint64_t>(got);
    const int offset = static_cast<int>(at % 8), take = std::min(8 - offset, width - got);
    value |= static_cast<uint64_t>((p[at / 8] >> offset) & ((1u << take) - 1)) << got;
    got += take;
  }
  return value;
}

int64_t zigzag(uint64_t v) { return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)); }

const uint8_t* take(Bytes& in, size_t n, const ValueDecoder& d) {
  if (n > in.n) d.damaged("values past the page's end");
  const uint8_t* at = in.p;
  in.p += n;
  in.n -= n;
  return at;
}

}  // namespace

void ValueDecoder::damaged(const std::string& why) const {
  throw UserError(file + ": column " + column + ": damaged Parquet data: " + why);
}

uint64_t ValueDecoder::uleb128(Bytes& in) const {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.n == 0) damaged("a run header past the page's end");
    const uint8_t b = *in.p++;
    in.n--;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  damaged("a run header longer than 64 bits");
}

std::vector<uint32_t> ValueDecoder::hybrid(Bytes in, int width, size_t count) const {
  if (width > 32) damaged("a bit width of " + std::to_string(width));
  std::vector<uint32_t> out;
  out.reserve(count);
  const size_t value_bytes = (static_cast<size_t>(width) + 7) / 8;
  while (out.size() < count) {
    const uint64_t header = uleb128(in);
    if (header & 1) {  // bit-packed: groups of 8 values
      if ((header >> 1) > in.n) damaged("bit-packed values past the page's end");
      const uint64_t values = (header >> 1) * 8;
      const uint64_t bytes = (header >> 1) * static_cast<uint64_t>(width);
      if (bytes > in.n) damaged("bit-packed values past the page's end");
      for (uint64_t v = 0; v < values && out.size() < count; v++)
        out.push_back(static_cast<uint32_t>(packed_bits(in.p, v * width, width)));
      in.p += bytes;
      in.n -= bytes;
    } else {  // a run of one value
      const uint64_t run = header >> 1;
      if (value_bytes > in.n) damaged("a run's value past the page's end");
      uint32_t value = 0;
      for (size_t b = 0; b < value_bytes; b++) value |= static_cast<uint32_t>(in.p[b]) << (8 * b);
      in.p += value_bytes;
      in.n -= value_bytes;
      if (run == 0) damaged("an empty run");
      for (uint64_t k = 0; k < run && out.size() < count; k++) out.push_back(value);
    }
  }
  return out;
}

std::vector<json> ValueDecoder::plain(Bytes in, size_t count) const {
  std::vector<json> out;
  out.reserve(count);
  for (size_t i = 0; i < count; i++) {
    switch (static_cast<PhysicalType>(physical)) {
      case PhysicalType::boolean: {
        if (i / 8 >= in.n) damaged("values past the page's end");
        out.emplace_back(((in.p[i / 8] >> (i % 8)) & 1) != 0);
        break;
      }
      case PhysicalType::int32: { int32_t v; std::memcpy(&v, take(in, 4, *this), 4); out.emplace_back(v); break; }
      case PhysicalType::int64: { int64_t v; std::memcpy(&v, take(in, 8, *this), 8); out.emplace_back(v); break; }
      case PhysicalType::float32: { float v; std::memcpy(&v, take(in, 4, *this), 4); out.emplace_back(double(v)); break; }
      case PhysicalType::float64: { double v; std::memcpy(&v, take(in, 8, *this), 8); out.emplace_back(v); break; }
      case PhysicalType::byte_array: {
        uint32_t n;
        std::memcpy(&n, take(in, 4, *this), 4);
        const uint8_t* s = take(in, n, *this);
        out.emplace_back(std::string(reinterpret_cast<const char*>(s), n));
        break;
      }
      default: damaged("a value of physical type " + std::to_string(physical));
    }
  }
  return out;
}

// DELTA_BINARY_PACKED: a header (values a block, miniblocks a block, the value count, the first
// value), then blocks, each a minimum delta, one bit width a miniblock and the miniblocks' deltas
// above that minimum, bit-packed. The sums wrap as the writer's integers do (two's complement).
// `in` is left after the last miniblock that holds a value (DELTA_LENGTH_BYTE_ARRAY's bytes follow).
std::vector<int64_t> ValueDecoder::delta_integers(Bytes& in, size_t count) const {
  const uint64_t block = uleb128(in), miniblocks = uleb128(in), total = uleb128(in);
  uint64_t value = static_cast<uint64_t>(zigzag(uleb128(in)));
  if (block == 0 || block % 128 != 0 || miniblocks == 0 || block % miniblocks != 0 || (block / miniblocks) % 32 != 0)
    damaged("a delta block of " + std::to_string(block) + " values in " + std::to_string(miniblocks) + " miniblocks");
  if (total != count)
    damaged(std::to_string(total) + " delta-encoded values where the page holds " + std::to_string(count));
  const uint64_t per_miniblock = block / miniblocks;
  std::vector<int64_t> out;
  out.reserve(count);
  if (count > 0) out.push_back(static_cast<int64_t>(value));
  while (out.size() < count) {
    const uint64_t min_delta = static_cast<uint64_t>(zigzag(uleb128(in)));
    const uint8_t* widths = take(in, static_cast<size_t>(miniblocks), *this);
    for (uint64_t m = 0; m < miniblocks && out.size() < count; m++) {
      const int width = widths[m];
      if (width > 64) damaged("a delta bit width of " + std::to_string(width));
      const uint8_t* deltas = take(in, static_cast<size_t>(per_miniblock * width / 8), *this);
      for (uint64_t j = 0; j < per_miniblock && out.size() < count; j++) {
        value += min_delta + packed_bits(deltas, j * width, width);
        out.push_back(static_cast<int64_t>(value));
      }
    }
  }
  return out;
}

// DELTA_LENGTH_BYTE_ARRAY: the lengths delta-encoded, then the strings' bytes one after the other.
// DELTA_BYTE_ARRAY: before those, the length of each string's prefix shared with the one before.
std::vector<json> ValueDecoder::delta_strings(Bytes in, size_t count, bool with_prefixes) const {
  const std::vector<int64_t> prefixes = with_prefixes ? delta_integers(in, count) : std::vector<int64_t>(count, 0);
  const std::vector<int64_t> lengths = delta_integers(in, count);
  std::vector<json> out;
  out.reserve(count);
  std::string previous;
  for (size_t i = 0; i < count; i++) {
    if (prefixes[i] < 0 || static_cast<uint64_t>(prefixes[i]) > previous.size())
      damaged("a shared prefix of " + std::to_string(prefixes[i]) + " bytes after a value of " +
              std::to_string(previous.size()));
    if (lengths[i] < 0 || static_cast<uint64_t>(lengths[i]) > in.n) damaged("values past the page's end");
    const auto* suffix = reinterpret_cast<const char*>(take(in, static_cast<size_t>(lengths[i]), *this));
    previous.resize(static_cast<size_t>(prefixes[i]));
    previous.append(suffix, static_cast<size_t>(lengths[i]));
    out.emplace_back(previous);
  }
  return out;
}

// BYTE_STREAM_SPLIT: byte k of every value in stream k, the streams one after the other.
std::vector<json> ValueDecoder::byte_stream_split(Bytes in, size_t count) const {
  const auto type = static_cast<PhysicalType>(physical);
  const size_t width = type == PhysicalType::float32 || type == PhysicalType::int32 ? 4 : 8;
  if (count > in.n / width) damaged("values past the page's end");
  std::vector<uint8_t> joined(count * width);
  for (size_t i = 0; i < count; i++)
    for (size_t k = 0; k < width; k++) joined[i * width + k] = in.p[k * count + i];
  return plain({joined.data(), joined.size()}, count);
}

std::vector<json> ValueDecoder::values(Bytes in, int32_t encoding, size_t count) const {
  const auto type = static_cast<PhysicalType>(physical);
  if (encoding == kPlain) return plain(in, count);
  if (encoding == kRle && type == PhysicalType::boolean) {  // v2's booleans: a 4-byte length first
    if (in.n < 4) damaged("values past the page's end");
    std::vector<json> out;
    for (uint32_t v : hybrid({in.p + 4, in.n - 4}, 1, count)) out.emplace_back(v != 0);
    return out;
  }
  if (encoding == kPlainDictionary || encoding == kRleDictionary) {
    if (count == 0) return {};
    if (in.n < 1) damaged("dictionary indices past the page's end");
    const int width = in.p[0];
    std::vector<json> out;
    out.reserve(count);
    for (uint32_t index : hybrid({in.p + 1, in.n - 1}, width, count)) {
      if (index >= dictionary.size()) damaged("a dictionary index past its dictionary");
      out.push_back(dictionary[index]);
    }
    return out;
  }
  if (encoding == kDeltaBinaryPacked && (type == PhysicalType::int32 || type == PhysicalType::int64)) {
    std::vector<json> out;
    out.reserve(count);
    for (int64_t v : delta_integers(in, count))
      out.emplace_back(type == PhysicalType::int32 ? json(static_cast<int32_t>(v)) : json(v));
    return out;
  }
  if ((encoding == kDeltaLengthByteArray || encoding == kDeltaByteArray) && type == PhysicalType::byte_array)
    return delta_strings(in, count, encoding == kDeltaByteArray);
  if (encoding == kByteStreamSplit && (type == PhysicalType::float32 || type == PhysicalType::float64 ||
                                      type == PhysicalType::int32 || type == PhysicalType::int64))
    return byte_stream_split(in, count);
  static const char* names[] = {"PLAIN", "", "PLAIN_DICTIONARY", "RLE", "BIT_PACKED", "DELTA_BINARY_PACKED",
                                "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY", "RLE_DICTIONARY",
                                "BYTE_STREAM_SPLIT"};
  const std::string name = encoding >= 0 && encoding <= 9 ? names[encoding] : std::to_string(encoding);
  if (encoding >= kRle && encoding <= kByteStreamSplit && encoding != kBitPacked)  // the format allows it not here
    damaged("a " + name + " page in a column of physical type " + std::to_string(physical));
  throw UserError(file + ": column " + column + " is encoded " + name +
                  ", which is not read here (plain, dictionary, delta and byte-stream-split encodings are; or "
                  "convert the file to JSONL)");
}

}  // namespace llm::parquet
