// defines: parse_file_metadata, parse_page_header
#include "io/parquet_format.h"

#include "io/thrift_compact.h"

namespace llm::parquet {
namespace {

using Type = ThriftReader::Type;

SchemaElement read_schema_element(ThriftReader& in) {
  SchemaElement e;
  in.read_struct([&](int16_t id, Type type) {
    if (id == 1 && type == Type::kI32) e.type = in.read_i32();
    else if (id == 3 && type == Type::kI32) e.repetition = static_cast<Repetition>(in.read_i32());
    else if (id == 4 && type == Type::kBinary) e.name = in.read_binary();
    else if (id == 5 && type == Type::kI32) e.num_children = in.read_i32();
    else if (id == 6 && type == Type::kI32) e.converted_type = in.read_i32();
    else if (id == 10 && type == Type::kStruct)  // a union: the one field it holds names the type
      in.read_struct([&](int16_t which, Type) { e.logical_type = which; return false; });
    else return false;
    return true;
  });
  return e;
}

ColumnChunk read_column_metadata(ThriftReader& in) {
  ColumnChunk c;
  in.read_struct([&](int16_t id, Type type) {
    if (id == 1 && type == Type::kI32) c.type = in.read_i32();
    else if (id == 3 && type == Type::kList) in.read_list([&](Type) { c.path.push_back(in.read_binary()); });
    else if (id == 4 && type == Type::kI32) c.codec = in.read_i32();
    else if (id == 5 && type == Type::kI64) c.num_values = in.read_i64();
    else if (id == 7 && type == Type::kI64) c.total_compressed_size = in.read_i64();
    else if (id == 9 && type == Type::kI64) c.data_page_offset = in.read_i64();
    else if (id == 11 && type == Type::kI64) c.dictionary_page_offset = in.read_i64();
    else return false;
    return true;
  });
  return c;
}

RowGroup read_row_group(ThriftReader& in) {
  RowGroup g;
  in.read_struct([&](int16_t id, Type type) {
    if (id == 1 && type == Type::kList) {
      in.read_list([&](Type) {
        ColumnChunk chunk;
        in.read_struct([&](int16_t field, Type t) {
          if (field != 3 || t != Type::kStruct) return false;  // ColumnChunk.meta_data
          chunk = read_column_metadata(in);
          return true;
        });
        g.columns.push_back(std::move(chunk));
      });
    } else if (id == 3 && type == Type::kI64) {
      g.num_rows = in.read_i64();
    } else {
      return false;
    }
    return true;
  });
  return g;
}

}  // namespace

FileMetaData parse_file_metadata(std::string_view bytes, const std::string& what) {
  ThriftReader in(bytes, what + ": footer");
  FileMetaData m;
  in.read_struct([&](int16_t id, Type type) {
    if (id == 2 && type == Type::kList) in.read_list([&](Type) { m.schema.push_back(read_schema_element(in)); });
    else if (id == 3 && type == Type::kI64) m.num_rows = in.read_i64();
    else if (id == 4 && type == Type::kList) in.read_list([&](Type) { m.row_groups.push_back(read_row_group(in)); });
    else return false;
    return true;
  });
  return m;
}

PageHeader parse_page_header(std::string_view bytes, const std::string& what) {
  ThriftReader in(bytes, what);
  PageHeader h;
  auto data_header = [&](bool v2) {
    in.read_struct([&](int16_t id, Type type) {
      if (id == 1 && type == Type::kI32) h.num_values = in.read_i32();
      else if (!v2 && id == 2 && type == Type::kI32) h.encoding = in.read_i32();
      else if (v2 && id == 4 && type == Type::kI32) h.encoding = in.read_i32();
      else if (v2 && id == 5 && type == Type::kI32) h.definition_levels_byte_length = in.read_i32();
      else if (v2 && id == 6 && type == Type::kI32) h.repetition_levels_byte_length = in.read_i32();
      else if (v2 && id == 7 && (type == Type::kTrue || type == Type::kFalse)) h.is_compressed = in.read_bool(type);
      else return false;
      return true;
    });
  };
  in.read_struct([&](int16_t id, Type type) {
    if (id == 1 && type == Type::kI32) h.type = in.read_i32();
    else if (id == 2 && type == Type::kI32) h.uncompressed_page_size = in.read_i32();
    else if (id == 3 && type == Type::kI32) h.compressed_page_size = in.read_i32();
    else if ((id == 5 || id == 7) && type == Type::kStruct) data_header(false);  // data page, dictionary page
    else if (id == 8 && type == Type::kStruct) data_header(true);
    else return false;
    return true;
  });
  h.header_bytes = in.position();
  return h;
}

}  // namespace llm::parquet
