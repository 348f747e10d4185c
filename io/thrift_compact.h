// Thrift's compact protocol, read only: the encoding of Parquet's footer and page headers
// (apache/thrift's doc/specs/thrift-compact-protocol.md). Only what Parquet's structs use.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace llm {

class ThriftReader {
 public:
  enum Type : uint8_t { kStop = 0, kTrue = 1, kFalse = 2, kByte = 3, kI16 = 4, kI32 = 5, kI64 = 6, kDouble = 7,
                        kBinary = 8, kList = 9, kSet = 10, kMap = 11, kStruct = 12 };

  // `what` names the bytes in messages (a file's footer, a page header).
  ThriftReader(std::string_view bytes, std::string what) : bytes_(bytes), what_(std::move(what)) {}

  // A struct's fields, each handed to `field` (its id and type), which reads the value with the
  // calls below or leaves it to skip() (return false).
  void read_struct(const std::function<bool(int16_t id, Type type)>& field);
  int32_t read_i32();
  int64_t read_i64();
  bool read_bool(Type type) const { return type == kTrue; }  // a field's bool is in its type
  std::string read_binary();
  // A list's elements: `element` is called `count` times to read each (of type `type`).
  void read_list(const std::function<void(Type type)>& element);
  void skip(Type type);
  size_t position() const { return at_; }

 private:
  uint8_t byte();
  uint64_t varint();
  [[noreturn]] void damaged(const std::string& why) const;

  std::string_view bytes_;
  std::string what_;
  size_t at_ = 0;
  int depth_ = 0;  // nesting, bounded so damaged bytes cannot recurse without end
};

}  // namespace llm
