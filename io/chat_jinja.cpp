// defines: jinja_chat_document
#include "io/chat_jinja.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <optional>
#include <tuple>

#include "engine/user_error.h"
#include "io/chat_template.h"  // TurnEnds

namespace llm {
namespace {

// The rendered text cut at the special tokens the template wrote (never inside a message's
// content): (byte offset, id) of each, in order.
std::vector<std::pair<size_t, int32_t>> template_specials(const jinja::Text& rendered,
                                                          const Tokenizer& tokenizer) {
  std::vector<std::pair<size_t, int32_t>> found;
  size_t at = 0;
  for (const jinja::Text::Run& run : rendered.runs()) {
    if (run.source == jinja::kTemplateSource) {
      size_t cursor = 0;
      for (int32_t id : tokenizer.encode_with_specials(run.text)) {
        const std::optional<std::string> name = tokenizer.special_name(id);
        if (!name) continue;
        cursor = run.text.find(*name, cursor);
        found.emplace_back(at + cursor, id);
        cursor += name->size();
      }
    }
    at += run.text.size();
  }
  return found;
}

// Token ids of `text` with each token's byte range: ordinary text between the template's special
// tokens encoded whole, as transformers encodes the rendered conversation.
void tokenize_rendered(const std::string& text, const std::vector<std::pair<size_t, int32_t>>& specials,
                       const Tokenizer& tokenizer, std::vector<int32_t>& ids,
                       std::vector<std::pair<size_t, size_t>>& ranges) {
  size_t plain = 0;
  auto ordinary = [&](size_t end) {
    size_t at = plain;
    for (int32_t id : tokenizer.encode(text.substr(plain, end - plain))) {
      const size_t length = tokenizer.decode({id}).size();
      ids.push_back(id);
      ranges.emplace_back(at, std::min(at + length, end));
      at += length;
    }
  };
  for (const auto& [offset, id] : specials) {
    ordinary(offset);
    const size_t length = tokenizer.special_name(id)->size();
    ids.push_back(id);
    ranges.emplace_back(offset, offset + length);
    plain = offset + length;
  }
  ordinary(text.size());
}

// Axolotl's find_turn: where message `i`'s turn lies in the ids of the conversation rendered up
// to it, found by rendering it again with "[[dummy_message]]" as its only content (its other keys,
// tool_calls among them, dropped): [first differing id, one past the last differing id from the
// end), as both renders have them. nullopt where Axolotl finds none (no difference, or an empty
// span). Those indices are then read in the whole conversation's ids, as Axolotl reads them.
std::optional<std::pair<int64_t, int64_t>> find_turn(const std::function<std::vector<int32_t>(const jinja::ValueList&)>& ids_of,
                                                      const jinja::ValueList& messages, size_t i) {
  jinja::ValueList with_content(messages.begin(), messages.begin() + std::ptrdiff_t(i) + 1);
  jinja::ValueList with_dummy(messages.begin(), messages.begin() + std::ptrdiff_t(i));
  with_dummy.push_back(jinja::Value::from(jinja::ValueDict{
      {"role", messages[i].member("role")}, {"content", jinja::Value::from(jinja::Text("[[dummy_message]]", int(i)))}}));
  const std::vector<int32_t> full = ids_of(with_content), dummy = ids_of(with_dummy);
  const size_t common = std::min(full.size(), dummy.size());
  size_t start = 0;
  while (start < common && full[start] == dummy[start]) start++;
  if (start == common) return std::nullopt;
  size_t back = 0;
  while (back < common && full[full.size() - 1 - back] == dummy[dummy.size() - 1 - back]) back++;
  if (back == common) return std::nullopt;
  const int64_t end = int64_t(full.size() - back);
  if (end <= int64_t(start)) return std::nullopt;
  return std::pair<int64_t, int64_t>{int64_t(start), end};
}

// Axolotl's search for a turn's end: the first of `wanted` at or after `from`, kept when within 3
// of it (its slack for padding). From -1, a turn not found, Python starts at the last id: found
// there, it is -1, which Axolotl's check discards as "none".
std::optional<int64_t> turn_end_token(const std::vector<int32_t>& ids, const std::vector<int32_t>& wanted, int64_t from) {
  const int64_t n = int64_t(ids.size());
  for (int64_t i = std::max(from, -n); i < n; i++)
    if (std::find(wanted.begin(), wanted.end(), ids[size_t(i < 0 ? n + i : i)]) != wanted.end())
      return i >= 0 && std::abs(i - from) <= 3 ? std::optional<int64_t>(i) : std::nullopt;
  return std::nullopt;
}

}  // namespace

jinja::ValueDict chat_template_variables(const jinja::Value& messages, const jinja::Value& tools,
                                         bool add_generation_prompt, const Tokenizer& tokenizer,
                                         const std::string& kwargs) {
  jinja::ValueDict variables = {{"messages", messages},
                                {"tools", tools},
                                {"documents", jinja::Value::none()},
                                {"add_generation_prompt", jinja::Value::from(add_generation_prompt)}};
  const nlohmann::ordered_json extra = kwargs.empty() ? nlohmann::ordered_json::object() : nlohmann::ordered_json::parse(kwargs);
  for (const auto& [name, id] : {std::pair<const char*, int32_t>{"bos_token", tokenizer.bos()},
                                 {"eos_token", tokenizer.eos()}})
    if (!extra.contains(name)) variables.emplace_back(name, jinja::Value::from(tokenizer.special_name(id).value_or("")));
  for (const auto& [name, value] : extra.items()) variables.emplace_back(name, jinja::from_json(value));
  return variables;
}

std::vector<int32_t> tokenize_template_text(const jinja::Text& text, const Tokenizer& tokenizer,
                                            std::vector<std::pair<size_t, size_t>>* ranges) {
  std::vector<int32_t> ids;
  std::vector<std::pair<size_t, size_t>> own;
  tokenize_rendered(text.str(), template_specials(text, tokenizer), tokenizer, ids, ranges ? *ranges : own);
  return ids;
}

Document jinja_chat_document(const jinja::Template& chat_template, const jinja::ValueList& messages,
                             const jinja::Value& tools, const std::vector<TurnMask>& masks,
                             const TurnEnds& ends, const DatasetSpec& spec, const Tokenizer& tokenizer) {
  auto ids_of = [&](const jinja::ValueList& turns, bool prefix) {
    jinja::ValueDict variables =
        chat_template_variables(jinja::Value::from(turns), tools, false, tokenizer, spec.chat_template_kwargs);
    // find_turn's renders also pass real_last_index, the whole conversation's last message.
    if (prefix && messages.size() > 1) variables.emplace_back("real_last_index", jinja::Value::from(int64_t(messages.size() - 1)));
    return tokenize_template_text(chat_template.render(variables), tokenizer);
  };
  const std::vector<int32_t> ids = ids_of(messages, false);
  const auto clip = [&](int64_t t) { return size_t(std::clamp<int64_t>(t, 0, int64_t(ids.size()))); };

  // Axolotl's pass over the turns: a turn that trains (or whose end trains under `all`) is found,
  // its span takes the turn's loss (a train_detail's by position from its start), and the
  // end-of-turn token, then EOS, after it takes what train_on_eot, then train_on_eos, says.
  std::vector<Loss> loss(ids.size(), Loss::none);
  std::optional<int64_t> last_eot, last_eos;
  for (size_t i = 0; i < messages.size(); i++) {
    if (!masks.at(i).counts_for_last) continue;
    const auto span = find_turn([&](const jinja::ValueList& turns) { return ids_of(turns, true); }, messages, i);
    int64_t turn_end = -1;
    if (span) {
      turn_end = span->second;
      if (masks[i].has_detail) {
        for (size_t k = 0; k < masks[i].detail_tokens.size(); k++)
          if (masks[i].detail_tokens[k] && clip(span->first + int64_t(k)) < ids.size()) loss[clip(span->first + int64_t(k))] = Loss::trained;
      } else {
        for (size_t t = clip(span->first); t < clip(span->second); t++) loss[t] = std::max(loss[t], masks[i].content);
      }
    }
    for (auto [wanted, option, last] : {std::tuple{ends.eot_ids, ends.eot_option, &last_eot},
                                        std::tuple{std::vector<int32_t>{ends.eos}, ends.eos_option, &last_eos}}) {
      const std::optional<int64_t> at = turn_end_token(ids, wanted, turn_end);
      if (!at) continue;
      *last = *at;
      loss[size_t(*at)] = std::max(loss[size_t(*at)], TurnEnds::loss_under(option, masks[i].content, false));
    }
  }
  for (auto [option, last] : {std::pair{ends.eot_option, last_eot}, std::pair{ends.eos_option, last_eos}})
    if (option == "last" && last) loss[size_t(*last)] = Loss::trained;

  Document doc;
  doc.add_bos = doc.add_eos = false;
  for (size_t t = 0; t < ids.size(); t++) {
    if (doc.pieces.empty() || doc.pieces.back().loss != loss[t])
      doc.pieces.push_back({Piece::Kind::ids, "", {}, loss[t]});
    doc.pieces.back().token_ids.push_back(ids[t]);
  }
  return doc;
}

}  // namespace llm
