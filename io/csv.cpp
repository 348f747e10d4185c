// defines: read_csv_rows
#include "io/csv.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <set>

#include "engine/user_error.h"
#include "io/decompress.h"

namespace llm {
namespace {

using json = nlohmann::ordered_json;
using Cell = std::optional<std::string>;  // nullopt: a missing field (a short row)

struct Record {
  std::vector<std::string> fields;
  int64_t line;  // the file line it starts on
};

// pandas' C tokenizer with read_csv's defaults.
std::vector<Record> tokenize(const std::string& text, const std::string& path) {
  std::vector<Record> records;
  size_t at = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  int64_t line = 1;
  auto line_end = [&](size_t i) { return text[i] == '\n' || text[i] == '\r'; };
  auto skip_line_end = [&]() {  // at a \n, \r or \r\n
    at += text.compare(at, 2, "\r\n") == 0 ? 2 : 1;
    line++;
  };
  while (at < text.size()) {
    size_t blank = at;  // a line of spaces and tabs only is blank too
    while (blank < text.size() && (text[blank] == ' ' || text[blank] == '\t')) blank++;
    if (blank == text.size()) break;
    if (line_end(blank)) {
      at = blank;
      skip_line_end();
      continue;
    }
    Record record{{}, line};
    for (;;) {  // one field, then a comma or the record's end
      std::string field;
      if (at < text.size() && text[at] == '"') {
        const int64_t opened = line;
        for (at++;; at++) {
          if (at >= text.size())
            throw UserError(path + ":" + std::to_string(opened) + ": a quoted field that never ends (EOF inside it)");
          if (text[at] == '"') {
            if (at + 1 < text.size() && text[at + 1] == '"') {
              field += '"';
              at++;
              continue;
            }
            at++;
            break;
          }
          if (text[at] == '\n' || (text[at] == '\r' && text.compare(at, 2, "\r\n") != 0)) line++;
          field += text[at];
        }
      }
      while (at < text.size() && text[at] != ',' && !line_end(at)) field += text[at++];  // (after a quote too)
      record.fields.push_back(std::move(field));
      if (at < text.size() && text[at] == ',') {
        at++;
        continue;
      }
      if (at < text.size()) skip_line_end();
      break;
    }
    records.push_back(std::move(record));
  }
  return records;
}

bool is_na(const std::string& s) {
  static const std::set<std::string> kNa = {"",    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                                            "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                                            "nan", "null"};
  return kNa.count(s) > 0;
}

std::string trimmed(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t"), last = s.find_last_not_of(" \t");
  return first == std::string::npos ? "" : s.substr(first, last - first + 1);
}

// An integer as pandas' parser takes one: optional sign and digits, spaces around.
bool is_integer_text(const std::string& s) {
  const std::string t = trimmed(s);
  const size_t digits = !t.empty() && (t[0] == '+' || t[0] == '-') ? 1 : 0;
  return t.size() > digits && t.find_first_not_of("0123456789", digits) == std::string::npos;
}

// Its value, when it fits int64, or else uint64 (none: not an integer, or past uint64).
enum class IntFit { none, int64, uint64 };
IntFit parse_integer(const std::string& s, int64_t& i, uint64_t& u) {
  if (!is_integer_text(s)) return IntFit::none;
  const std::string t = trimmed(s);
  const size_t digits = t[0] == '+' || t[0] == '-' ? 1 : 0;
  errno = 0;
  i = std::strtoll(t.c_str(), nullptr, 10);
  if (errno == 0) return IntFit::int64;
  if (t[0] == '-') return IntFit::none;
  errno = 0;
  u = std::strtoull(t.c_str() + digits, nullptr, 10);
  return errno == 0 ? IntFit::uint64 : IntFit::none;
}

// A float as pandas' parser takes one: decimal digits with a point and an exponent, or inf /
// infinity in any case, signed, spaces around; not hex, not nan.
std::optional<double> parse_float(const std::string& s) {
  const std::string t = trimmed(s);
  if (t.empty()) return std::nullopt;
  const size_t body = t[0] == '+' || t[0] == '-' ? 1 : 0;
  std::string word = t.substr(body);
  std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::tolower(c); });
  if (word == "inf" || word == "infinity") return t[0] == '-' ? -INFINITY : INFINITY;
  if (word.empty() || word.find_first_not_of("0123456789.e+-") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return std::nullopt;
  return v;
}

std::optional<bool> parse_bool(const std::string& s) {
  if (s == "True" || s == "TRUE" || s == "true") return true;
  if (s == "False" || s == "FALSE" || s == "false") return false;
  return std::nullopt;
}

// One column's values, typed as pandas infers the column and pyarrow converts it: int64 (float64
// when a null is among them), float64, bool, else text. Integers past int64's range make a uint64
// column; with a null or a negative sign among them pandas' parser gives up on numbers and keeps
// every field as written, its NA strings and a short row's missing fields ("") too.
std::vector<json> typed_column(const std::vector<Cell>& cells) {
  const size_t n = cells.size();
  std::vector<json> out(n);  // nulls
  std::vector<bool> present(n);
  std::vector<int64_t> i(n);
  std::vector<uint64_t> u(n);
  std::vector<IntFit> fit(n, IntFit::none);
  std::vector<double> f(n);
  std::vector<bool> b(n);
  bool any = false, any_null = false, ints = true, floats = true, bools = true;
  bool past_int64 = false, past_uint64 = false, signed_text = false;
  for (size_t r = 0; r < n; r++) {
    present[r] = cells[r] && !is_na(*cells[r]);
    if (!present[r]) {
      any_null = true;
      continue;
    }
    any = true;
    const std::string& s = *cells[r];
    if (ints) {
      fit[r] = parse_integer(s, i[r], u[r]);
      ints = fit[r] != IntFit::none || is_integer_text(s);  // (one past uint64 too)
      past_int64 |= fit[r] != IntFit::int64;
      past_uint64 |= fit[r] == IntFit::none;
      signed_text |= trimmed(s)[0] == '-';
    }
    if (floats) {
      const std::optional<double> v = parse_float(s);
      floats = v.has_value();
      f[r] = v.value_or(0);
    }
    if (bools) {
      const std::optional<bool> v = parse_bool(s);
      bools = v.has_value();
      b[r] = v.value_or(false);
    }
  }
  if (!any) return out;  // all null (pandas: a float64 column of NaN)
  const bool as_written = ints && past_int64 && (any_null || signed_text || past_uint64);
  for (size_t r = 0; r < n; r++) {
    if (as_written) out[r] = cells[r].value_or("");
    else if (!present[r]) continue;
    else if (ints && past_int64) out[r] = fit[r] == IntFit::uint64 ? u[r] : static_cast<uint64_t>(i[r]);
    else if (ints && !any_null) out[r] = i[r];
    else if (ints) out[r] = double(i[r]);  // nulls make pandas' ints float64
    else if (floats) out[r] = f[r];
    else if (bools) out[r] = bool(b[r]);
    else out[r] = *cells[r];
  }
  return out;
}

// pandas' names: "Unnamed: i" for an empty one; a repeated one gets ".k", the first k whose name
// the header does not hold already.
std::vector<std::string> column_names(std::vector<std::string> names) {
  for (size_t c = 0; c < names.size(); c++)
    if (names[c].empty()) names[c] = "Unnamed: " + std::to_string(c);
  const std::set<std::string> original(names.begin(), names.end());
  std::set<std::string> used;
  for (std::string& name : names) {
    if (used.count(name))
      for (int k = 1;; k++) {
        const std::string candidate = name + "." + std::to_string(k);
        if (!used.count(candidate) && !original.count(candidate)) {
          name = candidate;
          break;
        }
      }
    used.insert(name);
  }
  return names;
}

// pandas 3 turns an integer index with a constant step (two values or more) into a RangeIndex,
// which pyarrow keeps as metadata only; any other index becomes a last column.
bool dropped_index(const std::vector<json>& index) {
  if (index.size() < 2) return false;
  for (const json& v : index)
    if (!v.is_number_integer() || v.is_number_unsigned()) return false;  // int64 only, as a RangeIndex
  // The steps, none overflowing int64 (a RangeIndex's step is an int64 too).
  std::vector<int64_t> steps(index.size() - 1);
  for (size_t r = 1; r < index.size(); r++)
    if (__builtin_sub_overflow(index[r].get<int64_t>(), index[r - 1].get<int64_t>(), &steps[r - 1])) return false;
  return steps[0] != 0 && std::all_of(steps.begin(), steps.end(), [&](int64_t s) { return s == steps[0]; });
}

}  // namespace

std::vector<JsonRecord> read_csv_rows(const std::string& path) {
  const std::vector<Record> records = tokenize(read_utf8_data_file(path, "a CSV data file"), path);
  if (records.empty()) return {};
  std::vector<std::string> names = column_names(records[0].fields);
  // A first row one field longer than the header: pandas reads every row's first field as its index.
  const bool indexed = records.size() > 1 && records[1].fields.size() == names.size() + 1;
  const size_t first = indexed ? 0 : 1;  // the column of a row's first field (0: the index)
  std::vector<std::vector<Cell>> columns(names.size() + 1, std::vector<Cell>(records.size() - 1));
  for (size_t r = 1; r < records.size(); r++) {
    const std::vector<std::string>& fields = records[r].fields;
    if (fields.size() > names.size() + 1 - first)
      throw UserError(path + ":" + std::to_string(records[r].line) + ": expected " +
                      std::to_string(names.size() + 1 - first) + " fields, as the header says, saw " +
                      std::to_string(fields.size()));
    for (size_t c = 0; c < fields.size(); c++) columns[c + first][r - 1] = fields[c];
  }
  std::vector<std::vector<json>> typed;
  for (size_t c = 1; c < columns.size(); c++) typed.push_back(typed_column(columns[c]));
  if (indexed) {
    std::vector<json> index = typed_column(columns[0]);
    if (!dropped_index(index)) {
      names.push_back("__index_level_0__");
      typed.push_back(std::move(index));
    }
  }
  std::vector<JsonRecord> rows;
  for (size_t r = 0; r + 1 < records.size(); r++) {
    json row = json::object();
    for (size_t c = 0; c < names.size(); c++) row[names[c]] = std::move(typed[c][r]);
    rows.push_back({std::move(row), records[r + 1].line});  // where the row starts in the file
  }
  return rows;
}

}  // namespace llm
