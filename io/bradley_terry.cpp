// defines: append_bradley_terry_examples
#include "io/bradley_terry.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "engine/user_error.h"
#include "io/chat_template.h"
#include "io/documents.h"
#include "io/json_text.h"
#include "io/preference_rows.h"

namespace llm {

namespace {

using json = nlohmann::ordered_json;

// A row's two conversations as chat_template rows of "messages", chosen then rejected (Axolotl's
// BTChatTemplateStrategy builds the same lists of role and content).
std::pair<json, json> conversations(const json& row, const std::string& where) {
  if (!row.is_object())
    throw UserError(where + "expected a JSON object with \"input\", \"chosen\" and \"rejected\" strings, got " +
                    json_kind(row));
  // A system string opens both conversations, an empty one too: Axolotl's strategy adds a non-empty
  // one itself, and its chat_template parent inserts the row's "system" field, "" as well, before a
  // conversation that does not open with one. A null one (dropped with the row's other nulls) opens none.
  std::optional<std::string> system;
  if (auto s = row.find("system"); s != row.end() && !s->is_null()) {
    if (!s->is_string()) throw UserError(where + "field \"system\" is " + json_kind(*s) + "; expected a string");
    system = s->get<std::string>();
  }
  const std::string input = preference_rows::string_field(row, "input", where);
  const auto conversation = [&](const std::string& response) {
    json messages = json::array();
    if (system) messages.push_back({{"role", "system"}, {"content", *system}});
    messages.push_back({{"role", "user"}, {"content", input}});
    messages.push_back({{"role", "assistant"}, {"content", response}});
    return json{{"messages", messages}};
  };
  return {conversation(preference_rows::string_field(row, "chosen", where)),
          conversation(preference_rows::string_field(row, "rejected", where))};
}

}  // namespace

void append_bradley_terry_examples(const DatasetSpec& spec, const Tokenizer& tokenizer, const DataConfig& config,
                                   std::vector<Example>& out, ExampleStats& stats) {
  DatasetSpec chat = spec;  // the conversations, read as a chat_template dataset's rows
  chat.field_messages = "messages";
  chat.message_property_mappings = {{"role", "role"}, {"content", "content"}};
  std::vector<std::pair<std::string, std::vector<JsonRecord>>> files;  // each file's conversations
  size_t pairs = 0;
  for (const std::string& file : dataset_source_files(spec)) {
    std::vector<JsonRecord>& records = files.emplace_back(file, std::vector<JsonRecord>()).second;
    for (const JsonRecord& r : read_json_dataset_file(file, spec)) {
      auto [chosen, rejected] = conversations(r.value, file + ":" + std::to_string(r.line) + ": ");
      records.push_back({std::move(chosen), r.line});
      records.push_back({std::move(rejected), r.line});
      pairs++;
    }
  }
  const auto [first, last] = preference_rows::split_rows(spec, pairs, "pairs");
  size_t pair = 0;  // the index of each file's first pair among all
  for (const auto& [file, records] : files) {
    const size_t begin = std::max(first, pair), end = std::min(last, pair + records.size() / 2);
    if (begin < end) {
      const std::vector<JsonRecord> kept(records.begin() + 2 * (begin - pair), records.begin() + 2 * (end - pair));
      std::vector<Document> docs;
      add_chat_template_rows(file, kept, chat, tokenizer, docs);
      for (const Document& doc : docs) {
        Example ex = tokenize_document(doc, tokenizer, false, spec.path);
        if (static_cast<int64_t>(ex.tokens.size()) > config.sequence_len) {
          ex.tokens.resize(static_cast<size_t>(config.sequence_len));
          stats.truncated++;
        }
        ex.labels.assign(ex.tokens.size(), kIgnoreIndex);  // scored, not predicted
        out.push_back(std::move(ex));
      }
      stats.documents += static_cast<int64_t>(end - begin);
    }
    pair += records.size() / 2;
  }
}

}  // namespace llm
