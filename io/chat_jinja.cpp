// defines: jinja_chat_document
#include "io/chat_jinja.h"

#include <algorithm>

#include "engine/user_error.h"
#include "io/chat_template.h"  // TurnEnds

namespace llm {
namespace {

// A message's content in the rendered text: bytes [begin, end).
struct ContentSpan {
  size_t begin, end;
  int message;
};

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

// Axolotl's pass for one kind of turn end: the first of `wanted` within 3 tokens after each
// message's content (its slack for template padding), before the next message's, trains as
// `option` says (`last`: the last found of the turns that count for it). Passes only add training.
void mark_turn_ends(const std::vector<int32_t>& ids, const std::vector<int>& message_of,
                    const std::vector<TurnMask>& masks, const std::vector<int32_t>& wanted,
                    const std::string& option, std::vector<Loss>& loss) {
  std::vector<std::pair<size_t, size_t>> found;  // (token, its message)
  std::optional<size_t> last;
  for (size_t t = 0; t < ids.size(); t++) {
    if (message_of[t] < 0 || (t + 1 < ids.size() && message_of[t + 1] == message_of[t])) continue;
    for (size_t k = t + 1; k < ids.size() && k <= t + 4 && message_of[k] < 0; k++)  // t: a message's last token
      if (std::find(wanted.begin(), wanted.end(), ids[k]) != wanted.end()) {
        found.emplace_back(k, size_t(message_of[t]));
        if (masks.at(size_t(message_of[t])).counts_for_last) last = k;
        break;
      }
  }
  for (const auto& [k, message] : found)
    loss[k] = std::max(loss[k], TurnEnds::loss_under(option, masks.at(message).content, k == last));
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

Document jinja_chat_document(const jinja::Template& chat_template, const jinja::Value& messages,
                             const jinja::Value& tools, const std::vector<TurnMask>& masks,
                             const TurnEnds& ends, const DatasetSpec& spec, const Tokenizer& tokenizer) {
  const jinja::Text rendered =
      chat_template.render(chat_template_variables(messages, tools, false, tokenizer, spec.chat_template_kwargs));

  std::vector<ContentSpan> contents;
  size_t at = 0;
  for (const jinja::Text::Run& run : rendered.runs()) {
    if (run.source != jinja::kTemplateSource) contents.push_back({at, at + run.text.size(), run.source});
    at += run.text.size();
  }
  std::vector<std::pair<size_t, size_t>> ranges;
  const std::vector<int32_t> ids = tokenize_template_text(rendered, tokenizer, &ranges);

  // Each token's message: the first content it overlaps; -1 for the template's own.
  std::vector<int> message_of(ids.size(), -1);
  for (size_t t = 0, c = 0; t < ids.size(); t++) {
    while (c < contents.size() && contents[c].end <= ranges[t].first) c++;
    if (c < contents.size() && contents[c].begin < ranges[t].second) message_of[t] = contents[c].message;
  }

  std::vector<Loss> loss(ids.size(), Loss::none);
  for (size_t t = 0; t < ids.size(); t++)
    if (message_of[t] >= 0) loss[t] = masks.at(size_t(message_of[t])).content;
  // A message with train_detail: only the tokens its spans train, counted from its first content
  // token by position (Axolotl's turn_start_idx + i, which may reach past the content).
  for (size_t m = 0; m < masks.size(); m++) {
    if (!masks[m].has_detail) continue;
    const auto first = std::find(message_of.begin(), message_of.end(), int(m));
    if (first == message_of.end()) continue;
    for (size_t t = 0; t < ids.size(); t++)
      if (message_of[t] == int(m)) loss[t] = Loss::none;
    const size_t start = size_t(first - message_of.begin());
    for (size_t i = 0; i < masks[m].detail_tokens.size() && start + i < ids.size(); i++)
      if (masks[m].detail_tokens[i]) loss[start + i] = Loss::trained;
  }
  // Axolotl's two passes: the end-of-turn tokens under train_on_eot, then EOS under train_on_eos.
  mark_turn_ends(ids, message_of, masks, ends.eot_ids, ends.eot_option, loss);
  mark_turn_ends(ids, message_of, masks, {ends.eos}, ends.eos_option, loss);

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
