// defines: read_parquet_rows
#include "io/parquet.h"

#include <algorithm>
#include <cstring>

#include "engine/user_error.h"
#include "io/decompress.h"
#include "io/parquet_format.h"
#include "io/parquet_values.h"
#include "io/snappy.h"

namespace llm {
namespace {

using json = nlohmann::ordered_json;
using namespace parquet;

// A column as the rows see it: a struct of fields, a list of one element node, or a value. Each
// node holds a value (is not null) where a leaf's definition level reaches `def`.
struct Node {
  enum class Kind { value, group, list } kind = Kind::value;
  std::string name;
  int def = 0;
  int elem_def = 0, list_rep = 0;  // a list: holds an element at elem_def; its elements repeat at list_rep
  std::vector<Node> children;      // a group's fields; a list's element
  int32_t physical = 0;            // a value's PhysicalType
  bool text = false;               // a BYTE_ARRAY value annotated as UTF-8 text
  int column = -1;                 // a value's column, in the file's leaf order
};

struct Schema {
  const std::vector<SchemaElement>& elements;
  const std::string& file;
  size_t at = 1;  // the root is elements[0]
  int columns = 0;

  const SchemaElement& next() {
    if (at >= elements.size()) throw UserError(file + ": damaged Parquet schema: fewer elements than its groups hold");
    return elements[at++];
  }

  // The node of the element at `at`. `as_element`: a list's element, whose own repetition the
  // enclosing list accounts for.
  Node build(int parent_def, int parent_rep, bool as_element = false, int depth = 0) {
    if (depth > 64) throw UserError(file + ": a Parquet schema nested deeper than 64 levels, which is not read here");
    const SchemaElement& e = next();
    const bool repeated = e.repetition == Repetition::repeated && !as_element;
    if (repeated) {  // a bare repeated field: a list of it, never null itself
      at--;
      Node list{Node::Kind::list, e.name, parent_def, parent_def + 1, parent_rep + 1};
      list.children.push_back(build(parent_def + 1, parent_rep + 1, true, depth + 1));
      return list;
    }
    const int def = parent_def + (e.repetition == Repetition::optional && !as_element ? 1 : 0);
    Node node;
    node.name = e.name;
    node.def = def;
    if (e.type >= 0) {  // a value
      node.physical = e.type;
      node.text = e.converted_type == 0 || e.converted_type == 4 || e.converted_type == 19 ||
                  e.logical_type == 1 || e.logical_type == 4 || e.logical_type == 12;
      node.column = columns++;
      return node;
    }
    if (e.converted_type == 1 || e.converted_type == 2 || e.logical_type == 2)
      throw UserError(file + ": column " + e.name + " is a map, which is not read here (convert the file to JSONL)");
    if (e.converted_type == 3 || e.logical_type == 3) {  // a LIST: one repeated child
      if (e.num_children != 1) throw UserError(file + ": damaged Parquet schema: list " + e.name + " without one child");
      const SchemaElement& repeated_child = next();
      at--;  // read again below, as the element or as the level above it
      if (repeated_child.repetition != Repetition::repeated)
        throw UserError(file + ": damaged Parquet schema: list " + e.name + "'s child is not repeated");
      node.kind = Node::Kind::list;
      node.elem_def = def + 1;
      node.list_rep = parent_rep + 1;
      // Three levels (list > element) unless the repeated child is the element itself: a value,
      // or, as the format's backward-compatibility rules say, a group of several fields or one
      // named array or <list>_tuple.
      const bool two_levels = repeated_child.type >= 0 || repeated_child.num_children != 1 ||
                              repeated_child.name == "array" || repeated_child.name == e.name + "_tuple";
      // The element of three levels may be null itself (optional); of two it is the repeated child.
      if (!two_levels) next();
      node.children.push_back(build(def + 1, parent_rep + 1, two_levels, depth + 1));
      return node;
    }
    node.kind = Node::Kind::group;
    for (int32_t i = 0; i < e.num_children; i++) node.children.push_back(build(def, parent_rep, false, depth + 1));
    return node;
  }
};

// The nodes from a top-level column down to each value, in column order.
void leaf_paths(const Node& node, std::vector<const Node*>& path, std::vector<std::vector<const Node*>>& out) {
  path.push_back(&node);
  if (node.kind == Node::Kind::value) out.push_back(path);
  for (const Node& child : node.children) leaf_paths(child, path, out);
  path.pop_back();
}

// A column chunk's reader: its pages' levels, and its values through `values`.
struct ColumnReader {
  ValueDecoder values;
  int max_def;

  [[noreturn]] void damaged(const std::string& why) const { values.damaged(why); }

  static int bit_width(int max) {
    int w = 0;
    while ((1 << w) <= max) w++;
    return w;
  }

  // Data page v1's levels: a 4-byte length, then the hybrid runs.
  std::vector<uint32_t> prefixed_levels(Bytes& in, int max, size_t count) const {
    if (max == 0) return std::vector<uint32_t>(count, 0);
    if (in.n < 4) damaged("levels past the page's end");
    uint32_t length;
    std::memcpy(&length, in.p, 4);
    if (length > in.n - 4) damaged("levels past the page's end");
    std::vector<uint32_t> levels = values.hybrid({in.p + 4, length}, bit_width(max), count);
    in.p += 4 + length;
    in.n -= 4 + length;
    return levels;
  }
};

std::string decompress(int32_t codec, std::string_view page, size_t size, const std::string& what) {
  if (codec == kUncompressed) return std::string(page);
  std::string out;
  if (codec == kSnappy) out = snappy_decompress(page, what);
  else if (codec == kGzip) out = gzip_decompress(page, what, size);
  else if (codec == kZstd) out = zstd_decompress(page, what, size);
  else {
    static const char* names[] = {"", "", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"};
    throw UserError(what + " is compressed with " + (codec >= 2 && codec <= 7 ? names[codec] : std::to_string(codec)) +
                    ", which is not read here (snappy, gzip and zstd are; or convert the file to JSONL)");
  }
  if (out.size() != size) throw UserError(what + ": damaged Parquet page: " + std::to_string(out.size()) +
                                          " bytes, its header says " + std::to_string(size));
  return out;
}

// A value's place in a row: `slot` receives path[k]'s value for the level pair (r, d).
void place(const ColumnReader& reader, const std::vector<const Node*>& path, size_t k, json& slot, uint32_t r,
           uint32_t d, const json& value) {
  const Node& n = *path[k];
  if (static_cast<int>(d) < n.def) {
    slot = nullptr;
    return;
  }
  switch (n.kind) {
    case Node::Kind::value: slot = value; return;
    case Node::Kind::group:
      if (!slot.is_object()) slot = json::object();
      place(reader, path, k + 1, slot[path[k + 1]->name], r, d, value);
      return;
    case Node::Kind::list:
      if (!slot.is_array()) slot = json::array();
      if (static_cast<int>(d) < n.elem_def) return;  // an empty list
      if (n.list_rep >= static_cast<int>(r)) slot.push_back(nullptr);  // else the level repeats below it
      else if (slot.empty()) reader.damaged("a repetition level that continues an empty list");
      place(reader, path, k + 1, slot.back(), r, d, value);
      return;
  }
}

// One leaf's part of each row joined with the others': objects by key, lists element by element.
void merge(json& into, json&& from) {
  if (into.is_object() && from.is_object()) {
    for (auto& [key, value] : from.items()) {
      auto it = into.find(key);
      if (it == into.end()) into[key] = std::move(value);
      else merge(*it, std::move(value));
    }
  } else if (into.is_array() && from.is_array() && into.size() == from.size()) {
    for (size_t i = 0; i < into.size(); i++) merge(into[i], std::move(from[i]));
  } else if (into.is_null()) {
    into = std::move(from);
  }
}

// A row group's rows of one leaf column.
std::vector<json> leaf_rows(const std::string& file, const std::string& data, const ColumnChunk& chunk,
                            const std::vector<const Node*>& path, int max_rep, int64_t num_rows) {
  std::string column;
  for (const std::string& part : chunk.path) column += (column.empty() ? "" : ".") + part;
  ColumnReader reader{{file, column, path.back()->physical, {}}, path.back()->def};
  int64_t start = chunk.data_page_offset;
  if (chunk.dictionary_page_offset > 0 && chunk.dictionary_page_offset < start) start = chunk.dictionary_page_offset;
  if (start < 4 || chunk.total_compressed_size < 0 ||
      static_cast<uint64_t>(start) + static_cast<uint64_t>(chunk.total_compressed_size) > data.size())
    reader.damaged("a column chunk outside the file");
  const std::string_view chunk_bytes(data.data() + start, static_cast<size_t>(chunk.total_compressed_size));
  std::vector<json> rows;
  rows.reserve(static_cast<size_t>(std::clamp<int64_t>(num_rows, 0, 1 << 20)));  // (a count the file claims)
  size_t at = 0;
  int64_t values_read = 0;
  while (values_read < chunk.num_values) {
    const std::string what = file + ": column " + column + " page at byte " + std::to_string(start + at);
    if (at >= chunk_bytes.size()) reader.damaged("fewer values than its metadata says");
    const PageHeader h = parse_page_header(chunk_bytes.substr(at), what);
    at += h.header_bytes;
    if (h.compressed_page_size < 0 || h.uncompressed_page_size < 0 ||
        static_cast<size_t>(h.compressed_page_size) > chunk_bytes.size() - at)
      reader.damaged("a page past its column chunk");
    const std::string_view page = chunk_bytes.substr(at, static_cast<size_t>(h.compressed_page_size));
    at += static_cast<size_t>(h.compressed_page_size);
    // A count no real page reaches (even runs of nulls take bytes): a damaged header, refused before
    // it sizes any buffer.
    if (h.num_values > std::max<int64_t>(1 << 20, 64 * int64_t{h.uncompressed_page_size}))
      reader.damaged("a page of " + std::to_string(h.num_values) + " values in " +
                     std::to_string(h.uncompressed_page_size) + " bytes");
    if (h.type == int32_t(PageType::dictionary)) {
      const std::string bytes = decompress(chunk.codec, page, static_cast<size_t>(h.uncompressed_page_size), what);
      reader.values.dictionary = reader.values.plain({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
                                       static_cast<size_t>(std::max(h.num_values, 0)));
      continue;
    }
    if (h.type != int32_t(PageType::data) && h.type != int32_t(PageType::data_v2)) continue;  // an index page
    if (h.num_values < 0) reader.damaged("a page with a negative value count");
    const size_t count = static_cast<size_t>(h.num_values);
    std::string bytes;
    std::vector<uint32_t> reps, defs;
    Bytes values{};
    if (h.type == int32_t(PageType::data)) {
      bytes = decompress(chunk.codec, page, static_cast<size_t>(h.uncompressed_page_size), what);
      Bytes in{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
      reps = reader.prefixed_levels(in, max_rep, count);
      defs = reader.prefixed_levels(in, reader.max_def, count);
      values = in;
    } else {  // v2: the levels stored uncompressed ahead of the values, without length prefixes
      const size_t levels = static_cast<size_t>(h.repetition_levels_byte_length) +
                            static_cast<size_t>(h.definition_levels_byte_length);
      if (h.repetition_levels_byte_length < 0 || h.definition_levels_byte_length < 0 || levels > page.size() ||
          levels > static_cast<size_t>(h.uncompressed_page_size))
        reader.damaged("levels past the page's end");
      const auto* p = reinterpret_cast<const uint8_t*>(page.data());
      const size_t rep_bytes = static_cast<size_t>(h.repetition_levels_byte_length);
      reps = max_rep ? reader.values.hybrid({p, rep_bytes}, ColumnReader::bit_width(max_rep), count)
                     : std::vector<uint32_t>(count, 0);
      defs = reader.max_def ? reader.values.hybrid({p + rep_bytes, levels - rep_bytes}, ColumnReader::bit_width(reader.max_def), count)
                            : std::vector<uint32_t>(count, 0);
      const std::string_view rest = page.substr(levels);
      bytes = h.is_compressed ? decompress(chunk.codec, rest, static_cast<size_t>(h.uncompressed_page_size) - levels, what)
                              : std::string(rest);
      values = {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
    }
    size_t present = 0;
    for (uint32_t d : defs) present += static_cast<int>(d) == reader.max_def;
    const std::vector<json> decoded = reader.values.values(values, h.encoding, present);
    if (path.back()->text)
      for (const json& v : decoded)
        if (v.is_string()) require_utf8_value(v.get_ref<const std::string&>(), file, column);
    size_t next_value = 0;
    static const json kNull;
    for (size_t i = 0; i < count; i++) {
      if (reps[i] == 0) rows.push_back(json::object());
      if (rows.empty()) reader.damaged("a page that starts inside a row");
      const bool has_value = static_cast<int>(defs[i]) == reader.max_def;
      if (static_cast<int>(reps[i]) > max_rep || static_cast<int>(defs[i]) > reader.max_def)
        reader.damaged("a level past the column's nesting");
      place(reader, path, 0, rows.back()[path[0]->name], reps[i], defs[i], has_value ? decoded[next_value] : kNull);
      next_value += has_value;
    }
    values_read += h.num_values;
  }
  if (static_cast<int64_t>(rows.size()) != num_rows)
    reader.damaged(std::to_string(rows.size()) + " rows where its row group holds " + std::to_string(num_rows));
  return rows;
}

}  // namespace

std::vector<JsonRecord> read_parquet_rows(const std::string& path) {
  const std::string data = read_data_file(path, "a Parquet data file");
  if (data.size() < 12 || data.compare(0, 4, "PAR1") != 0 || data.compare(data.size() - 4, 4, "PAR1") != 0)
    throw UserError(path + ": not a Parquet file (expected PAR1 at its start and end)");
  uint32_t footer;
  std::memcpy(&footer, data.data() + data.size() - 8, 4);
  if (footer > data.size() - 12) throw UserError(path + ": damaged Parquet file: its footer is longer than the file");
  const FileMetaData meta = parse_file_metadata(std::string_view(data).substr(data.size() - 8 - footer, footer), path);
  if (meta.schema.empty()) throw UserError(path + ": damaged Parquet file: no schema");
  Schema schema{meta.schema, path};
  Node root;
  root.kind = Node::Kind::group;
  for (int32_t i = 0; i < meta.schema[0].num_children; i++) root.children.push_back(schema.build(0, 0));
  std::vector<std::vector<const Node*>> leaves;
  std::vector<const Node*> trail;
  for (const Node& top : root.children) leaf_paths(top, trail, leaves);
  for (const auto& leaf : leaves) {
    const Node& value = *leaf.back();
    const auto type = static_cast<PhysicalType>(value.physical);
    std::string name;
    for (const Node* n : leaf) name += (name.empty() ? "" : ".") + n->name;
    if (type == PhysicalType::int96 || type == PhysicalType::fixed_len_byte_array ||
        (type == PhysicalType::byte_array && !value.text))
      throw UserError(path + ": column " + name + " holds " +
                      (type == PhysicalType::int96 ? "INT96 timestamps" : "binary values, not text") +
                      ", which are not read here (convert the file to JSONL)");
  }
  std::vector<JsonRecord> records;
  for (const RowGroup& group : meta.row_groups) {
    if (group.columns.size() != leaves.size())
      throw UserError(path + ": damaged Parquet file: a row group of " + std::to_string(group.columns.size()) +
                      " columns, its schema has " + std::to_string(leaves.size()));
    std::vector<json> rows;
    for (size_t c = 0; c < leaves.size(); c++) {
      int max_rep = 0;
      for (const Node* n : leaves[c]) max_rep += n->kind == Node::Kind::list;
      std::vector<json> part = leaf_rows(path, data, group.columns[c], leaves[c], max_rep, group.num_rows);
      if (c == 0) rows = std::move(part);
      else
        for (size_t r = 0; r < rows.size(); r++) merge(rows[r], std::move(part[r]));
    }
    for (json& row : rows) records.push_back({std::move(row), static_cast<int64_t>(records.size()) + 1});
  }
  return records;
}

}  // namespace llm
