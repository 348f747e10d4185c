// defines: the preference_rows helpers (markups and their turns, row fields, has_system, markup_prompt,
// fit_excess_length, with_bos)
#include "io/preference_rows.h"

#include "engine/user_error.h"
#include "io/chat_jinja.h"  // tokenize_template_text
#include "io/dataset_split.h"
#include "io/json_text.h"

namespace llm::preference_rows {

const Markup kLlama3{"<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>", "<|eot_id|>"};
const Markup kChatml{"<|im_start|>", "\n", "<|im_end|>\n", "<|im_end|>"};

void append_header(jinja::Text& out, const Markup& m, const std::string& role, int role_source) {
  out.append(m.header_open, jinja::kTemplateSource);
  out.append(role, role_source);
  out.append(m.header_close, jinja::kTemplateSource);
}

void append_turn(jinja::Text& out, const Markup& m, const std::string& role, int role_source, const std::string& content) {
  append_header(out, m, role, role_source);
  out.append(content, kRowSource);
  out.append(m.turn_close, jinja::kTemplateSource);
}

const json& field(const json& row, const std::string& key, const std::string& where) {
  auto it = row.find(key);
  if (it == row.end()) throw UserError(where + "missing field \"" + key + "\"");
  return *it;
}

std::string string_field(const json& row, const std::string& key, const std::string& where) {
  const json& value = field(row, key, where);
  if (!value.is_string()) throw UserError(where + "field \"" + key + "\" is " + json_kind(value) + "; expected a string");
  return value.get<std::string>();
}

bool label_field(const json& row, const std::string& key, const std::string& where) {
  const json& label = field(row, key, where);
  const bool binary = label.is_number_integer() && (label.get<int64_t>() == 0 || label.get<int64_t>() == 1);
  if (!label.is_boolean() && !binary)
    throw UserError(where + "field \"" + key + "\" is " + (label.is_number() ? label.dump() : std::string("a ") + label.type_name()) +
                    "; expected true or false (or 1 or 0)");
  return label.is_boolean() ? label.get<bool>() : label.get<int64_t>() == 1;
}

std::string message_content(const json& row, const std::string& key, size_t index, const std::string& where) {
  const json& list = field(row, key, where);
  const std::string which = key + "[" + std::to_string(index) + "]";
  if (!list.is_array() || list.size() <= index)
    throw UserError(where + "field \"" + key + "\" has no " + which + "; expected a list of messages");
  const json& message = list[index];
  if (!message.is_object() || !message.contains("content") || !message["content"].is_string())
    throw UserError(where + which + " has no \"content\" string");
  return message["content"].get<std::string>();
}

bool has_system(const json& row) {
  auto system = row.find("system");
  return system != row.end() && !system->is_null() && !(system->is_string() && system->get<std::string>().empty());
}

jinja::Text markup_prompt(const Markup& m, const json& row, const std::string& user, const std::string& where) {
  jinja::Text out;
  if (has_system(row)) append_turn(out, m, "system", jinja::kTemplateSource, string_field(row, "system", where));
  append_turn(out, m, "user", jinja::kTemplateSource, user);
  append_header(out, m, "assistant", jinja::kTemplateSource);
  return out;
}

void fit_excess_length(const std::string& strategy, const jinja::Text& prompt, const std::vector<jinja::Text*>& responses,
                       const Tokenizer& tokenizer, int64_t sequence_len, const std::string& row) {
  if (strategy == "drop") return;
  const int64_t prompt_length = static_cast<int64_t>(tokenize_template_text(prompt, tokenizer).size());
  for (jinja::Text* response : responses) {
    std::vector<std::pair<size_t, size_t>> ranges;
    const int64_t length = static_cast<int64_t>(tokenize_template_text(*response, tokenizer, &ranges).size());
    if (prompt_length + length <= sequence_len) continue;
    if (strategy == "raise")
      throw UserError(row + ": its prompt and a response hold " + std::to_string(prompt_length + length) +
                      " tokens, more than sequence_len " + std::to_string(sequence_len) +
                      " (excess_length_strategy: raise; drop or truncate would train without it)");
    const int64_t keep = sequence_len - prompt_length;  // truncate, as Axolotl: the response's first tokens
    if (keep > 0) *response = response->bytes(0, ranges[static_cast<size_t>(keep) - 1].second);
  }
}

std::pair<size_t, size_t> split_rows(const DatasetSpec& spec, size_t count, const std::string& what) {
  const auto range = slice_rows(*parse_split(spec.split), count);  // (dataset_source_files checked it)
  if (range.first == range.second)
    throw UserError(spec.path + ": the " + spec.type + " dataset holds no " + what +
                    (spec.split == "train" ? "" : " in split " + spec.split));
  return range;
}

std::vector<int32_t> with_bos(std::vector<int32_t> ids, const Tokenizer& tokenizer) {
  ids.insert(ids.begin(), tokenizer.bos());
  // Axolotl's fix for a text that writes BOS itself (a chat template's): one BOS, not two.
  if (ids.size() >= 2 && ids[1] == tokenizer.bos()) ids.erase(ids.begin());
  return ids;
}

}  // namespace llm::preference_rows
