// defines: FlatTable
#include "io/flatbuffer.h"

#include "engine/user_error.h"

namespace llm {

FlatTable FlatTable::root(std::string_view buffer, const std::string& what) {
  if (buffer.size() < 4) throw UserError(what + ": damaged metadata: shorter than its root offset");
  uint32_t table;
  std::memcpy(&table, buffer.data(), 4);
  return FlatTable(buffer, table, what);
}

FlatTable::FlatTable(std::string_view buffer, size_t table, const std::string& what)
    : buffer_(buffer), table_(table), what_(&what) {
  need(table, 4);
  int32_t back;
  std::memcpy(&back, buffer_.data() + table, 4);
  const int64_t vtable = static_cast<int64_t>(table) - back;
  if (vtable < 0 || static_cast<uint64_t>(vtable) + 4 > buffer_.size()) damaged("a table's vtable outside the buffer");
  vtable_ = static_cast<size_t>(vtable);
  std::memcpy(&vtable_bytes_, buffer_.data() + vtable_, 2);
  if (vtable_bytes_ < 4 || vtable_bytes_ % 2 != 0 || vtable_ + vtable_bytes_ > buffer_.size())
    damaged("a vtable of " + std::to_string(vtable_bytes_) + " bytes");
}

void FlatTable::damaged(const std::string& why) const {
  throw UserError(*what_ + ": damaged metadata: " + why);
}

void FlatTable::need(size_t at, size_t bytes) const {
  if (at > buffer_.size() || bytes > buffer_.size() - at) damaged("an offset past the message's end");
}

uint32_t FlatTable::u32(size_t at) const {
  need(at, 4);
  uint32_t v;
  std::memcpy(&v, buffer_.data() + at, 4);
  return v;
}

size_t FlatTable::field_at(int field) const {
  const size_t slot = 4 + 2 * static_cast<size_t>(field);
  if (slot + 2 > vtable_bytes_) return 0;
  uint16_t offset;
  std::memcpy(&offset, buffer_.data() + vtable_ + slot, 2);
  return offset == 0 ? 0 : table_ + offset;
}

size_t FlatTable::follow(size_t at) const {
  const size_t target = at + u32(at);
  need(target, 4);
  return target;
}

FlatTable FlatTable::table(int field) const {
  const size_t at = field_at(field);
  if (at == 0) damaged("a required table (field " + std::to_string(field) + ") is missing");
  return FlatTable(buffer_, follow(at), *what_);
}

std::string FlatTable::string(int field) const {
  const size_t at = field_at(field);
  if (at == 0) return "";
  const size_t s = follow(at);
  const uint32_t n = u32(s);
  need(s + 4, n);
  return std::string(buffer_.substr(s + 4, n));
}

size_t FlatTable::vector_at(int field) const {
  const size_t at = field_at(field);
  return at == 0 ? 0 : follow(at);
}

size_t FlatTable::vector_size(int field) const {
  const size_t v = vector_at(field);
  return v == 0 ? 0 : u32(v);
}

FlatTable FlatTable::vector_table(int field, size_t i) const {
  const size_t v = vector_at(field);
  if (v == 0 || i >= u32(v)) damaged("a vector element past its end");
  return FlatTable(buffer_, follow(v + 4 + 4 * i), *what_);
}

std::string_view FlatTable::vector_structs(int field, size_t struct_bytes) const {
  const size_t v = vector_at(field);
  if (v == 0) return {};
  const uint64_t bytes = static_cast<uint64_t>(u32(v)) * struct_bytes;
  need(v + 4, static_cast<size_t>(bytes));
  return buffer_.substr(v + 4, static_cast<size_t>(bytes));
}

}  // namespace llm
