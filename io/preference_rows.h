// What Axolotl's preference strategies (DPO's io/preference.h, KTO's io/kto.h) share: the markup
// of their llama3.* and chatml.* formats, reading a row's fields with one-line errors, and TRL's
// BOS rule.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/data_config.h"
#include "io/jinja.h"
#include "io/tokenizer.h"

namespace llm::preference_rows {

using json = nlohmann::ordered_json;
constexpr int kRowSource = 0;  // text read from a row (any source but the template's)

// The markers of a turn: header_open, the role, header_close, the content, turn_close; and what
// follows a response (a prompt ends in the assistant's header).
struct Markup {
  const char* header_open;
  const char* header_close;
  const char* turn_close;
  const char* response_end;
};
extern const Markup kLlama3, kChatml;

// A turn's header (the role's text under `role_source`: a row's roles stay text), and a whole turn.
void append_header(jinja::Text& out, const Markup& m, const std::string& role, int role_source);
void append_turn(jinja::Text& out, const Markup& m, const std::string& role, int role_source, const std::string& content);

// row[key]; UserError "<where>missing field ..." when absent. `where` is "<file>:<line>: ".
const json& field(const json& row, const std::string& key, const std::string& where);
std::string string_field(const json& row, const std::string& key, const std::string& where);
// A KTO label: true / false, or 1 / 0 (TRL reads it as a bool tensor).
bool label_field(const json& row, const std::string& key, const std::string& where);
// row[key][index].content: a message of a conversation stored under key.
std::string message_content(const json& row, const std::string& key, size_t index, const std::string& where);

// Whether the row has a system text to open with: a "system" that is neither absent, null nor ""
// (Python's `if sample.get("system")`).
bool has_system(const json& row);

// The prompt of a markup strategy: a system turn when the row has_system, then `user` as the user
// turn, ending in the assistant's header.
jinja::Text markup_prompt(const Markup& m, const json& row, const std::string& user, const std::string& where);

// The names of a strategy table (entries with a `type`), in table order.
template <typename Strategies>
std::vector<std::string> strategy_types(const Strategies& all) {
  std::vector<std::string> out;
  for (const auto& s : all) out.push_back(s.type);
  return out;
}

// The rows [first, last) of `count` that spec.split keeps (checked by dataset_source_files);
// UserError naming spec.path when none are left (`what`: "pairs", "rows").
std::pair<size_t, size_t> split_rows(const DatasetSpec& spec, size_t count, const std::string& what);

// Axolotl's excess_length_strategy for an rl row whose prompt and a response, each tokenized alone,
// hold more than sequence_len tokens together: truncate cuts each response to the tokens left
// after the prompt (a prompt that fills sequence_len is left for the length rule to drop); raise
// throws UserError ("<row>: ...") instead; drop leaves the row for the length rule. The length
// rule then tokenizes a cut response again, as Axolotl's drop filter after its cut does: a cut text
// may tokenize to more ids than the cut kept, and such a row is dropped there too.
void fit_excess_length(const std::string& strategy, const jinja::Text& prompt, const std::vector<jinja::Text*>& responses,
                       const Tokenizer& tokenizer, int64_t sequence_len, const std::string& row);

// BOS, then ids, as TRL's tokenizer call adds it; one BOS, not two, when the text wrote its own.
std::vector<int32_t> with_bos(std::vector<int32_t> ids, const Tokenizer& tokenizer);

}  // namespace llm::preference_rows
