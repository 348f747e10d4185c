// defines: ThriftReader
#include "io/thrift_compact.h"

#include "engine/user_error.h"

namespace llm {
namespace {
int64_t unzigzag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }
constexpr int kMaxDepth = 64;
}  // namespace

void ThriftReader::damaged(const std::string& why) const {
  throw UserError(what_ + ": damaged Thrift metadata at byte " + std::to_string(at_) + ": " + why);
}

uint8_t ThriftReader::byte() {
  if (at_ >= bytes_.size()) damaged("it ends early");
  return static_cast<uint8_t>(bytes_[at_++]);
}

uint64_t ThriftReader::varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    const uint8_t b = byte();
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  damaged("a varint longer than 64 bits");
}

int32_t ThriftReader::read_i32() {
  const int64_t v = unzigzag(varint());
  if (v < INT32_MIN || v > INT32_MAX) damaged("an i32 out of range");
  return static_cast<int32_t>(v);
}

int64_t ThriftReader::read_i64() { return unzigzag(varint()); }

std::string ThriftReader::read_binary() {
  const uint64_t n = varint();
  if (n > bytes_.size() - at_) damaged("a string runs past the end");
  std::string s(bytes_.substr(at_, n));
  at_ += n;
  return s;
}

void ThriftReader::read_struct(const std::function<bool(int16_t, Type)>& field) {
  if (++depth_ > kMaxDepth) damaged("nested too deep");
  int16_t id = 0;
  for (;;) {
    const uint8_t header = byte();
    const Type type = static_cast<Type>(header & 0x0f);
    if (type == kStop) break;
    const uint8_t delta = header >> 4;
    id = delta ? static_cast<int16_t>(id + delta) : static_cast<int16_t>(unzigzag(varint()));
    if (type > kStruct) damaged("an unknown field type " + std::to_string(type));
    if (!field(id, type)) skip(type);
  }
  depth_--;
}

void ThriftReader::read_list(const std::function<void(Type)>& element) {
  const uint8_t header = byte();
  uint64_t count = header >> 4;
  if (count == 15) count = varint();
  const Type type = static_cast<Type>(header & 0x0f);
  if (count > bytes_.size() - at_ && type != kTrue && type != kFalse) damaged("a list longer than its bytes");
  for (uint64_t i = 0; i < count; i++) element(type);
}

void ThriftReader::skip(Type type) {
  if (++depth_ > kMaxDepth) damaged("nested too deep");
  // In a list or map a bool is a byte of its own; as a field it is the field's type.
  auto element = [this](Type t) { t == kTrue || t == kFalse ? void(byte()) : skip(t); };
  switch (type) {
    case kTrue: case kFalse: break;
    case kByte: byte(); break;
    case kI16: case kI32: case kI64: varint(); break;
    case kDouble: for (int i = 0; i < 8; i++) byte(); break;
    case kBinary: read_binary(); break;
    case kList: case kSet: read_list(element); break;
    case kMap: {
      const uint64_t count = varint();
      if (count == 0) break;
      const uint8_t types = byte();
      for (uint64_t i = 0; i < count; i++) {
        element(static_cast<Type>(types >> 4));
        element(static_cast<Type>(types & 0x0f));
      }
      break;
    }
    case kStruct: read_struct([](int16_t, Type) { return false; }); break;
    default: damaged("an unknown type " + std::to_string(type));
  }
  depth_--;
}

}  // namespace llm
