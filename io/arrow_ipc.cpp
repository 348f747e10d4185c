// defines: read_arrow_rows
#include "io/arrow_ipc.h"

#include <cstring>
#include <deque>

#include "engine/dtype.h"  // f16_to_f32
#include "engine/user_error.h"
#include "io/decompress.h"
#include "io/flatbuffer.h"

namespace llm {
namespace {

using json = nlohmann::ordered_json;

// Schema.fbs's Type union, and MessageHeader's.
enum TypeId { kNull = 1, kInt = 2, kFloatingPoint = 3, kUtf8 = 5, kBool = 6, kDate = 8, kTime = 9, kTimestamp = 10,
              kList = 12, kStruct = 13, kFixedSizeList = 16, kDuration = 18, kLargeUtf8 = 20, kLargeList = 21 };
enum Header { kSchema = 1, kDictionaryBatch = 2, kRecordBatch = 3 };

std::string type_name(int type) {
  static const char* names[] = {"NONE", "Null", "Int", "FloatingPoint", "Binary", "Utf8", "Bool", "Decimal", "Date",
                                "Time", "Timestamp", "Interval", "List", "Struct", "Union", "FixedSizeBinary",
                                "FixedSizeList", "Map", "Duration", "LargeBinary", "LargeUtf8", "LargeList",
                                "RunEndEncoded", "BinaryView", "Utf8View", "ListView", "LargeListView"};
  return type >= 0 && type <= 26 ? names[type] : "type " + std::to_string(type);
}

template <class T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// A column of the schema: one Field and its children.
struct Column {
  std::string key;   // the field's name: a row's key
  std::string name;  // the dotted path, for messages
  int type = 0;
  int bytes = 0;          // an Int's or a FloatingPoint's width
  bool is_signed = false;
  int32_t list_size = 0;  // a FixedSizeList's
  std::vector<Column> children;
};

Column parse_field(const FlatTable& field, const std::string& parent, const std::string& file, int depth) {
  Column c;
  c.key = field.string(0);
  c.name = parent.empty() ? c.key : parent + "." + c.key;
  auto damaged = [&](const std::string& why) {
    return UserError(file + ": column " + c.name + ": damaged Arrow schema: " + why);
  };
  if (depth > 64) throw UserError(file + ": an Arrow schema nested deeper than 64 levels, which is not read here");
  if (field.has(4))
    throw UserError(file + ": column " + c.name + " is dictionary-encoded, which is not read here (convert the file "
                                                  "to JSONL)");
  c.type = field.scalar<uint8_t>(2, 0);
  if (c.type == kInt) {
    const FlatTable t = field.table(3);
    const int32_t bits = t.scalar<int32_t>(0, 0);
    if (bits != 8 && bits != 16 && bits != 32 && bits != 64) throw damaged("an integer of " + std::to_string(bits) + " bits");
    c.bytes = bits / 8;
    c.is_signed = t.scalar<uint8_t>(1, 0) != 0;
  } else if (c.type == kFloatingPoint) {
    const int16_t precision = field.table(3).scalar<int16_t>(0, 0);  // HALF, SINGLE, DOUBLE
    if (precision < 0 || precision > 2) throw damaged("a float of precision " + std::to_string(precision));
    c.bytes = 2 << precision;
  } else if (c.type == kDate || c.type == kTime || c.type == kTimestamp || c.type == kDuration) {
    // JSON has no dates or times: their integers (days or milliseconds since the epoch for a Date,
    // the type's unit for the others), read as an Int of the type's width.
    const FlatTable t = field.table(3);
    c.bytes = c.type == kDate ? (t.scalar<int16_t>(0, 1) == 0 ? 4 : 8)  // unit DAY: 32 bits
              : c.type == kTime ? t.scalar<int32_t>(1, 32) / 8
                                : 8;
    if (c.bytes != 4 && c.bytes != 8) throw damaged("a time of " + std::to_string(8 * c.bytes) + " bits");
    c.type = kInt;
    c.is_signed = true;
  } else if (c.type == kFixedSizeList) {
    c.list_size = field.table(3).scalar<int32_t>(0, 0);
    if (c.list_size < 0) throw damaged("a fixed-size list of " + std::to_string(c.list_size));
  } else if (c.type != kNull && c.type != kBool && c.type != kUtf8 && c.type != kLargeUtf8 && c.type != kList &&
             c.type != kLargeList && c.type != kStruct) {
    throw UserError(file + ": column " + c.name + " holds " + type_name(c.type) +
                    " values, which are not read here (convert the file to JSONL)");
  }
  for (size_t i = 0; i < field.vector_size(5); i++)
    c.children.push_back(parse_field(field.vector_table(5, i), c.name, file, depth + 1));
  const bool list = c.type == kList || c.type == kLargeList || c.type == kFixedSizeList;
  if (list ? c.children.size() != 1 : c.type != kStruct && !c.children.empty())
    throw damaged(std::to_string(c.children.size()) + " child fields for a " + type_name(c.type));
  return c;
}

// A record batch's body: its field nodes and buffers, taken in the schema's depth-first order.
struct BatchReader {
  const std::string& file;
  std::string_view body, nodes, buffers;  // nodes and buffers: 16-byte structs
  bool zstd = false;
  size_t next_node = 0, next_buffer = 0;
  std::deque<std::string> decompressed;  // owns the zstd buffers' bytes

  [[noreturn]] void damaged(const Column& c, const std::string& why) const {
    throw UserError(file + ": column " + c.name + ": damaged Arrow data: " + why);
  }

  std::string_view buffer(const Column& c) {
    if (next_buffer * 16 >= buffers.size()) damaged(c, "fewer buffers than its columns need");
    const int64_t offset = load<int64_t>(buffers.data() + 16 * next_buffer),
                  length = load<int64_t>(buffers.data() + 16 * next_buffer + 8);
    next_buffer++;
    if (offset < 0 || length < 0 || static_cast<uint64_t>(offset) > body.size() ||
        static_cast<uint64_t>(length) > body.size() - static_cast<uint64_t>(offset))
      damaged(c, "a buffer outside its record batch");
    std::string_view bytes = body.substr(static_cast<size_t>(offset), static_cast<size_t>(length));
    if (!zstd || bytes.empty()) return bytes;
    // A compressed buffer: its uncompressed length (-1: stored as it is), then a zstd frame.
    if (bytes.size() < 8) damaged(c, "a compressed buffer without its length");
    const int64_t raw = load<int64_t>(bytes.data());
    bytes.remove_prefix(8);
    if (raw == -1) return bytes;
    if (raw < 0) damaged(c, "a buffer of " + std::to_string(raw) + " bytes");
    decompressed.push_back(zstd_decompress(bytes, file + ": column " + c.name, static_cast<size_t>(raw)));
    if (decompressed.back().size() != static_cast<size_t>(raw)) damaged(c, "a buffer shorter than its length says");
    return decompressed.back();
  }

  // Offsets of `width` bytes for n values: n + 1 of them, never decreasing.
  std::vector<int64_t> offsets(const Column& c, size_t n, int width) {
    const std::string_view bytes = buffer(c);
    if (bytes.size() / width < n + 1) damaged(c, "fewer offsets than values");
    std::vector<int64_t> out(n + 1);
    for (size_t i = 0; i <= n; i++) {
      out[i] = width == 4 ? load<int32_t>(bytes.data() + 4 * i) : load<int64_t>(bytes.data() + 8 * i);
      if (out[i] < 0 || (i > 0 && out[i] < out[i - 1])) damaged(c, "offsets that decrease");
    }
    return out;
  }

  std::vector<json> column(const Column& c) {
    if (next_node * 16 >= nodes.size()) damaged(c, "fewer field nodes than columns");
    const int64_t length = load<int64_t>(nodes.data() + 16 * next_node),
                  null_count = load<int64_t>(nodes.data() + 16 * next_node + 8);
    next_node++;
    // Even a column of nulls holds a bit a value somewhere in a real batch: a larger count is damage,
    // refused before it sizes anything.
    if (length < 0 || null_count < 0 || null_count > length ||
        static_cast<uint64_t>(length) > 8 * static_cast<uint64_t>(body.size()) + 1024)
      damaged(c, "a column of " + std::to_string(length) + " values in a body of " + std::to_string(body.size()) +
                     " bytes");
    const size_t n = static_cast<size_t>(length);
    const std::string_view validity = c.type == kNull ? std::string_view() : buffer(c);
    if (validity.empty() ? null_count > 0 && c.type != kNull : validity.size() < (n + 7) / 8)
      damaged(c, "a validity bitmap shorter than its values");
    std::vector<json> out(n);
    switch (c.type) {
      case kNull: break;
      case kBool: {
        const std::string_view bits = buffer(c);
        if (bits.size() < (n + 7) / 8) damaged(c, "values past their buffer");
        for (size_t i = 0; i < n; i++) out[i] = ((bits[i / 8] >> (i % 8)) & 1) != 0;
        break;
      }
      case kInt:
      case kFloatingPoint: {
        const std::string_view values = buffer(c);
        if (values.size() / c.bytes < n) damaged(c, "values past their buffer");
        for (size_t i = 0; i < n; i++) out[i] = number(c, values.data() + i * c.bytes);
        break;
      }
      case kUtf8:
      case kLargeUtf8: {
        const std::vector<int64_t> at = offsets(c, n, c.type == kUtf8 ? 4 : 8);
        const std::string_view text = buffer(c);
        if (static_cast<uint64_t>(at[n]) > text.size()) damaged(c, "strings past their buffer");
        for (size_t i = 0; i < n; i++) {
          std::string value(text.substr(at[i], at[i + 1] - at[i]));
          require_utf8_value(value, file, c.name);
          out[i] = std::move(value);
        }
        break;
      }
      case kList:
      case kLargeList:
      case kFixedSizeList: {
        std::vector<int64_t> at;
        if (c.type == kFixedSizeList) {
          for (size_t i = 0; i <= n; i++) at.push_back(static_cast<int64_t>(i) * c.list_size);
        } else {
          at = offsets(c, n, c.type == kList ? 4 : 8);
        }
        std::vector<json> elements = column(c.children[0]);
        if (static_cast<uint64_t>(at[n]) > elements.size()) damaged(c, "list elements past their child column");
        for (size_t i = 0; i < n; i++) {
          out[i] = json::array();
          for (int64_t e = at[i]; e < at[i + 1]; e++) out[i].push_back(std::move(elements[e]));
        }
        break;
      }
      case kStruct: {
        for (size_t i = 0; i < n; i++) out[i] = json::object();
        for (const Column& child : c.children) {
          std::vector<json> values = column(child);
          if (values.size() < n) damaged(c, "a field shorter than its struct");
          for (size_t i = 0; i < n; i++) out[i][child.key] = std::move(values[i]);
        }
        break;
      }
    }
    if (!validity.empty())
      for (size_t i = 0; i < n; i++)
        if (!((validity[i / 8] >> (i % 8)) & 1)) out[i] = nullptr;
    return out;
  }

  static json number(const Column& c, const char* p) {
    if (c.type == kFloatingPoint)
      return c.bytes == 2 ? double(f16_to_f32(load<uint16_t>(p))) : c.bytes == 4 ? double(load<float>(p)) : load<double>(p);
    switch (c.bytes) {
      case 1: return c.is_signed ? json(load<int8_t>(p)) : json(load<uint8_t>(p));
      case 2: return c.is_signed ? json(load<int16_t>(p)) : json(load<uint16_t>(p));
      case 4: return c.is_signed ? json(load<int32_t>(p)) : json(load<uint32_t>(p));
      default: return c.is_signed ? json(load<int64_t>(p)) : json(load<uint64_t>(p));
    }
  }
};

std::vector<Column> parse_schema(const FlatTable& message, const std::string& file) {
  const FlatTable schema = message.table(2);
  if (schema.scalar<int16_t>(0, 0) != 0)
    throw UserError(file + ": a big-endian Arrow file, which is not read here (convert the file to JSONL)");
  std::vector<Column> columns;
  for (size_t i = 0; i < schema.vector_size(1); i++)
    columns.push_back(parse_field(schema.vector_table(1, i), "", file, 0));
  if (columns.empty()) throw UserError(file + ": an Arrow file without columns");
  return columns;
}

void read_batch(const FlatTable& message, std::string_view body, const std::vector<Column>& columns,
                const std::string& file, std::vector<JsonRecord>& records) {
  const FlatTable batch = message.table(2);
  BatchReader reader{file, body, batch.vector_structs(1, 16), batch.vector_structs(2, 16)};
  if (batch.has(3)) {  // BodyCompression: LZ4_FRAME 0, ZSTD 1
    if (batch.table(3).scalar<int8_t>(0, 0) != 1)
      throw UserError(file + ": an Arrow file of LZ4-compressed buffers, which are not read here (zstd and "
                             "uncompressed ones are; or convert the file to JSONL)");
    reader.zstd = true;
  }
  const int64_t length = batch.scalar<int64_t>(0, 0);
  std::vector<std::vector<json>> values;
  for (const Column& c : columns) {
    values.push_back(reader.column(c));
    if (length < 0 || values.back().size() < static_cast<uint64_t>(length))
      reader.damaged(c, "a column shorter than its record batch");
  }
  for (int64_t r = 0; r < length; r++) {
    json row = json::object();
    for (size_t c = 0; c < columns.size(); c++) row[columns[c].key] = std::move(values[c][r]);
    records.push_back({std::move(row), static_cast<int64_t>(records.size()) + 1});
  }
}

}  // namespace

std::vector<JsonRecord> read_arrow_rows(const std::string& path) {
  const std::string data = read_data_file(path, "an Arrow data file");
  const bool file_format = data.compare(0, 6, "ARROW1") == 0;
  if (!file_format && data.compare(0, 4, "\xff\xff\xff\xff") != 0)
    throw UserError(path + ": not an Arrow IPC file (expected the stream format's 0xFFFFFFFF or the file "
                           "format's ARROW1 at its start)");
  std::vector<Column> columns;
  std::vector<JsonRecord> records;
  // Messages one after another: 0xFFFFFFFF, the metadata's length, the metadata (a FlatBuffers
  // Message), the body; a length of 0 ends the stream (the file format's footer follows it).
  for (size_t at = file_format ? 8 : 0; at < data.size();) {
    const std::string what = path + ": Arrow message at byte " + std::to_string(at);
    if (data.size() - at < 8 || load<uint32_t>(data.data() + at) != 0xffffffffu)
      throw UserError(what + ": damaged Arrow file: expected 0xFFFFFFFF and a length");
    const uint32_t length = load<uint32_t>(data.data() + at + 4);
    at += 8;
    if (length == 0) break;
    if (length > data.size() - at) throw UserError(what + ": damaged Arrow file: metadata past the file's end");
    const FlatTable message = FlatTable::root(std::string_view(data).substr(at, length), what);
    at += length;
    const int64_t body_length = message.scalar<int64_t>(3, 0);
    if (body_length < 0 || static_cast<uint64_t>(body_length) > data.size() - at)
      throw UserError(what + ": damaged Arrow file: a body past the file's end");
    const std::string_view body = std::string_view(data).substr(at, static_cast<size_t>(body_length));
    at += static_cast<size_t>(body_length);
    const int header = message.scalar<uint8_t>(1, 0);
    if (header == kSchema && columns.empty()) columns = parse_schema(message, path);
    else if (header == kRecordBatch && !columns.empty()) read_batch(message, body, columns, path, records);
    else throw UserError(what + ": damaged Arrow file: a message of type " + std::to_string(header) +
                         (columns.empty() ? " before its schema" : " after its schema"));
  }
  if (columns.empty()) throw UserError(path + ": damaged Arrow file: no schema");
  return records;
}

}  // namespace llm
