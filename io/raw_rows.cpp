// defines: add_input_output_rows, add_pretokenized_rows
#include "io/raw_rows.h"

#include <cstdint>
#include <limits>

#include "engine/ops.h"  // kIgnoreIndex
#include "engine/user_error.h"
#include "io/json_text.h"

namespace llm {
namespace {

using json = nlohmann::ordered_json;  // keys in file order, as Python reads them

std::string where_of(const std::string& path, const JsonRecord& r) {
  return path + ":" + std::to_string(r.line) + ": ";
}

// row[key] as a list; nullptr when it is absent or null and `required` is false.
const json* list_field(const JsonRecord& r, const std::string& key, bool required,
                       const std::string& where, const std::string& expected) {
  if (!r.value.is_object())
    throw UserError(where + expected + ", got a JSON " + r.value.type_name());
  auto it = r.value.find(key);
  if (it == r.value.end() || it->is_null()) {
    if (!required) return nullptr;
    throw UserError(where + "missing field \"" + key + "\"; " + expected);
  }
  if (!it->is_array())
    throw UserError(where + "field \"" + key + "\" is " + json_kind(*it) + ", expected a list");
  return &*it;
}

// list[i] as an integer that fits int32_t.
int32_t int_at(const json& list, size_t i, const std::string& key, const std::string& where) {
  const json& v = list[i];
  if (!v.is_number_integer() || v.get<int64_t>() < std::numeric_limits<int32_t>::min() ||
      v.get<int64_t>() > std::numeric_limits<int32_t>::max())
    throw UserError(where + key + "[" + std::to_string(i) + "] is " + v.dump() +
                    ", expected a 32-bit integer");
  return static_cast<int32_t>(v.get<int64_t>());
}

void check_length(const json& list, const json& input_ids, const std::string& key,
                  const std::string& where) {
  if (list.size() != input_ids.size())
    throw UserError(where + key + " has " + std::to_string(list.size()) + " entries, input_ids " +
                    std::to_string(input_ids.size()) + "; expected one per token");
}

}  // namespace

void add_input_output_rows(const std::string& path, const std::vector<JsonRecord>& records, std::vector<Document>& docs) {
  const std::string expected =
      "expected a JSON object with a \"segments\" list of {\"text\": string, \"label\": bool}";
  for (const JsonRecord& r : records) {
    const std::string where = where_of(path, r);
    const json& segments = *list_field(r, "segments", true, where, expected);
    if (segments.empty()) throw UserError(where + "the \"segments\" list is empty; " + expected);
    Document doc;
    doc.add_bos = doc.add_eos = false;  // see raw_rows.h: the user's text holds them
    for (size_t i = 0; i < segments.size(); i++) {
      const json& s = segments[i];
      auto text = s.is_object() ? s.find("text") : s.end();
      auto label = s.is_object() ? s.find("label") : s.end();
      if (!s.is_object() || text == s.end() || !text->is_string() || label == s.end() ||
          !label->is_boolean())
        throw UserError(where + "segments[" + std::to_string(i) + "] is " + s.dump() + "; " +
                        expected);
      doc.pieces.push_back({Piece::Kind::text_with_specials, text->get<std::string>(), {},
                            label->get<bool>() ? Loss::trained : Loss::prompt});
    }
    docs.push_back(std::move(doc));
  }
}

void add_pretokenized_rows(const std::string& path, const std::vector<JsonRecord>& records, std::vector<Document>& docs) {
  const std::string expected =
      "expected a JSON object with an \"input_ids\" list (and optional \"labels\" and "
      "\"attention_mask\" lists)";
  for (const JsonRecord& r : records) {
    const std::string where = where_of(path, r);
    const json& ids = *list_field(r, "input_ids", true, where, expected);
    const json* labels = list_field(r, "labels", false, where, expected);
    const json* mask = list_field(r, "attention_mask", false, where, expected);
    if (labels) check_length(*labels, ids, "labels", where);
    if (mask) check_length(*mask, ids, "attention_mask", where);
    Document doc;
    doc.add_bos = doc.add_eos = false;
    doc.given_ids = true;
    for (size_t i = 0; i < ids.size(); i++) {
      const int32_t id = int_at(ids, i, "input_ids", where);
      if (id < 0)
        throw UserError(where + "input_ids[" + std::to_string(i) + "] is " + std::to_string(id) +
                        ", expected a token id >= 0");
      const int32_t label = labels ? int_at(*labels, i, "labels", where) : id;
      if (label != id && label != kIgnoreIndex)
        throw UserError(where + "labels[" + std::to_string(i) + "] is " + std::to_string(label) +
                        ", expected -100 or input_ids[" + std::to_string(i) + "] (" +
                        std::to_string(id) + ")");
      if (mask) {
        const int32_t keep = int_at(*mask, i, "attention_mask", where);
        if (keep != 0 && keep != 1)
          throw UserError(where + "attention_mask[" + std::to_string(i) + "] is " +
                          std::to_string(keep) + ", expected 0 or 1");
        if (keep == 0) continue;
      }
      const Loss loss = label == kIgnoreIndex ? Loss::none : Loss::trained;
      if (doc.pieces.empty() || doc.pieces.back().loss != loss)
        doc.pieces.push_back({Piece::Kind::ids, "", {}, loss});
      doc.pieces.back().token_ids.push_back(id);
    }
    if (doc.pieces.empty())
      throw UserError(where + "no token left (every attention_mask is 0, or input_ids is empty); " +
                      expected);
    docs.push_back(std::move(doc));
  }
}

}  // namespace llm
