// A read-only view of a FlatBuffers table (google/flatbuffers' binary format: a table points back
// to a vtable of uint16 field offsets; strings, vectors and tables are reached by uint32 offsets
// forward): how Arrow's IPC messages (io/arrow_ipc.h) store their schema and record batches.
// Every offset is checked against the buffer, so a damaged message is one UserError naming `what`.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace llm {

class FlatTable {
 public:
  // The buffer's root table. `what` must outlive the view.
  static FlatTable root(std::string_view buffer, const std::string& what);

  bool has(int field) const { return field_at(field) != 0; }
  // A scalar field; `fallback` (the schema's default) when absent.
  template <class T>
  T scalar(int field, T fallback) const {
    const size_t at = field_at(field);
    if (at == 0) return fallback;
    need(at, sizeof(T));
    T v;
    std::memcpy(&v, buffer_.data() + at, sizeof(T));
    return v;
  }
  FlatTable table(int field) const;  // throws when absent
  std::string string(int field) const;  // "" when absent
  // A vector field: its length (0 when absent), a table element, or `size`-byte structs' bytes.
  size_t vector_size(int field) const;
  FlatTable vector_table(int field, size_t i) const;
  std::string_view vector_structs(int field, size_t struct_bytes) const;

 private:
  FlatTable(std::string_view buffer, size_t table, const std::string& what);
  [[noreturn]] void damaged(const std::string& why) const;
  void need(size_t at, size_t bytes) const;
  uint32_t u32(size_t at) const;
  size_t field_at(int field) const;     // the field's absolute position, 0 when absent
  size_t follow(size_t at) const;       // the position an offset at `at` points to
  size_t vector_at(int field) const;    // the vector's length word, 0 when absent

  std::string_view buffer_;
  size_t table_ = 0, vtable_ = 0;
  uint16_t vtable_bytes_ = 0;
  const std::string* what_;
};

}  // namespace llm
