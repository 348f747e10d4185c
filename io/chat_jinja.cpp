// defines: jinja_chat_document
#include "io/chat_jinja.h"

#include <algorithm>

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

}  // namespace

Document jinja_chat_document(const jinja::Template& chat_template, const jinja::Value& messages,
                             const jinja::Value& tools, const std::vector<Loss>& content_losses,
                             const DatasetSpec& spec,
                             const Tokenizer& tokenizer) {
  jinja::ValueDict variables = {{"messages", messages},
                                {"tools", tools},
                                {"documents", jinja::Value::none()},
                                {"add_generation_prompt", jinja::Value::from(false)}};
  for (const auto& [name, id] : {std::pair<const char*, int32_t>{"bos_token", tokenizer.bos()},
                                 {"eos_token", tokenizer.eos()}})
    variables.emplace_back(name, jinja::Value::from(tokenizer.special_name(id).value_or("")));
  const jinja::Text rendered = chat_template.render(variables);
  const std::string text = rendered.str();

  std::vector<ContentSpan> contents;
  size_t at = 0;
  for (const jinja::Text::Run& run : rendered.runs()) {
    if (run.source != jinja::kTemplateSource) contents.push_back({at, at + run.text.size(), run.source});
    at += run.text.size();
  }
  std::vector<int32_t> ids;
  std::vector<std::pair<size_t, size_t>> ranges;
  tokenize_rendered(text, template_specials(rendered, tokenizer), tokenizer, ids, ranges);

  // Each token's message: the first content it overlaps; -1 for the template's own.
  std::vector<int> message_of(ids.size(), -1);
  for (size_t t = 0, c = 0; t < ids.size(); t++) {
    while (c < contents.size() && contents[c].end <= ranges[t].first) c++;
    if (c < contents.size() && contents[c].begin < ranges[t].second) message_of[t] = contents[c].message;
  }
  std::vector<int32_t> eot_ids;
  for (const std::string& name : spec.eot_tokens)
    if (std::optional<int32_t> id = tokenizer.special_id(name)) eot_ids.push_back(*id);
  if (spec.eot_tokens.empty()) eot_ids.push_back(tokenizer.eos());

  std::vector<Loss> loss(ids.size(), Loss::none);
  std::vector<size_t> end_of_turn;  // the end-of-turn tokens found, in order
  for (size_t t = 0; t < ids.size(); t++) {
    if (message_of[t] < 0) continue;
    loss[t] = content_losses.at(size_t(message_of[t]));
    if (t + 1 < ids.size() && message_of[t + 1] == message_of[t]) continue;
    // t is the message's last token: its end of turn is at most 3 tokens on (Axolotl's slack for
    // template padding), before any message's content.
    for (size_t k = t + 1; k < ids.size() && k <= t + 4 && message_of[k] < 0; k++)
      if (std::find(eot_ids.begin(), eot_ids.end(), ids[k]) != eot_ids.end()) {
        const std::string& eos = spec.train_on_eos;
        loss[k] = eos == "all" ? Loss::trained : eos == "turn" ? loss[t] : Loss::none;
        end_of_turn.push_back(k);
        break;
      }
  }
  if (spec.train_on_eos == "last" && !end_of_turn.empty()) loss[end_of_turn.back()] = Loss::trained;

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
