// defines: read_train_detail, train_detail_tokens
#include "io/train_detail.h"

#include <algorithm>

#include "engine/user_error.h"
#include "io/chat_jinja.h"
#include "io/json_text.h"

namespace llm {

std::vector<TrainDetail> read_train_detail(const nlohmann::ordered_json& value, const std::string& where) {
  const std::string expected = "; expected a list of {begin_offset, end_offset, train} (datasets: message_field_training_detail)";
  if (!value.is_array()) throw UserError(where + " is " + json_kind(value) + expected);
  std::vector<TrainDetail> out;
  for (const auto& item : value) {
    const auto integer = [&](const char* key) {
      if (!item.is_object() || !item.contains(key) || !item[key].is_number_integer())
        throw UserError(where + " has an entry without an integer \"" + key + "\"" + expected);
      return item[key].get<int64_t>();
    };
    TrainDetail d{integer("begin_offset"), integer("end_offset"), false};
    if (!item.contains("train") || !item["train"].is_boolean())
      throw UserError(where + " has an entry without a boolean \"train\"" + expected);
    d.train = item["train"].get<bool>();
    out.push_back(d);
  }
  return out;
}

namespace {

// The code point index of each byte of UTF-8 `text` (a continuation byte: its character's).
std::vector<int64_t> char_index_of_bytes(const std::string& text) {
  std::vector<int64_t> out(text.size());
  int64_t chars = -1;
  for (size_t i = 0; i < text.size(); i++) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) chars++;
    out[i] = std::max<int64_t>(chars, 0);
  }
  return out;
}

}  // namespace

std::vector<bool> train_detail_tokens(const std::string& content, const std::vector<TrainDetail>& details,
                                      const Tokenizer& tokenizer) {
  jinja::Text text;
  text.append(content, 0);  // a row's text: no special token read from it
  std::vector<std::pair<size_t, size_t>> ranges;
  const size_t n = tokenize_template_text(text, tokenizer, &ranges).size();
  std::vector<bool> trained(n, false);
  if (n == 0) return trained;
  const std::vector<int64_t> char_of = char_index_of_bytes(content);
  const int64_t length = content.empty() ? 0 : char_of.back() + 1;
  // Token spans in characters, each ending where the next begins (Axolotl's adjustment).
  std::vector<int64_t> start(n), end(n);
  for (size_t i = 0; i < n; i++) start[i] = ranges[i].first < char_of.size() ? char_of[ranges[i].first] : length;
  for (size_t i = 0; i + 1 < n; i++) end[i] = start[i + 1] - 1;
  end[n - 1] = length - 1;
  for (const TrainDetail& d : details) {
    int64_t first = static_cast<int64_t>(n), last = -1;
    for (size_t i = 0; i < n; i++)
      if (start[i] >= d.begin) {
        first = static_cast<int64_t>(i);
        break;
      }
    if (first > 0 && end[first - 1] > d.begin) first--;
    for (int64_t i = static_cast<int64_t>(n) - 1; i >= 0; i--)
      if (end[i] <= d.end) {
        last = i;
        break;
      }
    if (last < static_cast<int64_t>(n) - 1 && start[last + 1] < d.end) last++;
    if (first > last || !d.train) continue;
    const int64_t begin = start[first], stop = end[last];
    for (size_t i = 0; i < n; i++)
      if (start[i] >= begin && end[i] <= stop) trained[i] = true;
  }
  return trained;
}

}  // namespace llm
