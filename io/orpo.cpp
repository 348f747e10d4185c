// defines: is_orpo_type, orpo_types, orpo_pair, tokenize_row
#include "io/orpo.h"

#include <algorithm>

#include "engine/user_error.h"
#include "io/chat_jinja.h"
#include "io/examples.h"
#include "io/preference_rows.h"

namespace llm {
namespace {

using namespace preference_rows;

jinja::Value message(const char* role, const std::string& content, bool label) {
  return jinja::Value::from(jinja::ValueDict{{"role", jinja::Value::from(role)},
                                             {"content", jinja::from_json(json(content), kRowSource)},
                                             {"label", jinja::Value::from(label)}});
}

// The row's messages up to the last turn's user message (Axolotl's get_prompt).
jinja::ValueList prompt_messages(const json& row, const std::string& where) {
  const json& chosen = field(row, "chosen", where);
  if (!chosen.is_array() || chosen.empty() || chosen.size() % 2 != 0)
    throw UserError(where + "field \"chosen\" is not a list of user and assistant messages in turn (an even count)");
  jinja::ValueList out;
  if (has_system(row)) out.push_back(message("system", string_field(row, "system", where), false));
  const size_t turns = chosen.size() / 2;
  for (size_t i = 0; i < turns; i++) {
    const std::string user =
        row.contains("prompt") ? string_field(row, "prompt", where) : message_content(row, "chosen", 2 * i, where);
    out.push_back(message("user", user, false));
    if (i + 1 < turns) out.push_back(message("assistant", message_content(row, "chosen", 2 * i + 1, where), false));
  }
  return out;
}

// Python's list[:n]: the first n, or with n < 0 all but the last -n.
void keep_head(std::vector<int32_t>& ids, int64_t n) {
  const int64_t size = static_cast<int64_t>(ids.size());
  ids.resize(static_cast<size_t>(n >= 0 ? std::min(n, size) : std::max<int64_t>(0, size + n)));
}

}  // namespace

bool is_orpo_type(const std::string& type) {
  const std::vector<std::string>& types = orpo_types();
  return std::find(types.begin(), types.end(), type) != types.end();
}

const std::vector<std::string>& orpo_types() {
  static const std::vector<std::string> types = {"chat_template.argilla"};
  return types;
}

PreferenceText orpo_pair(const jinja::Template& chat_template, const json& row, const Tokenizer& tokenizer,
                         const std::string& where) {
  const jinja::ValueList prompt = prompt_messages(row, where);
  auto render = [&](jinja::ValueList messages, bool generation_prompt) {
    return chat_template.render(
        chat_template_variables(jinja::Value::from(std::move(messages)), jinja::Value::none(), generation_prompt, tokenizer));
  };
  PreferenceText out;
  out.prompt = render(prompt, true);
  const std::string prompt_text = out.prompt.str();
  for (auto [text, key] : {std::pair{&out.chosen, "chosen"}, std::pair{&out.rejected, "rejected"}}) {
    const json& list = field(row, key, where);
    if (!list.is_array() || list.empty())
      throw UserError(where + "field \"" + key + "\" is not a list of messages ending in the assistant's response");
    jinja::ValueList messages = prompt;
    messages.push_back(message("assistant", message_content(row, key, list.size() - 1, where), true));
    const jinja::Text whole = render(std::move(messages), false);
    // Axolotl cuts the prompt's length of characters from the whole: the response only when the
    // template writes the conversation as it wrote the prompt.
    if (whole.str().compare(0, prompt_text.size(), prompt_text) != 0)
      throw UserError(where + "the chat template does not begin the conversation with " + key +
                      "'s response as it writes the prompt alone, so the response cannot be cut from it");
    *text = whole.bytes(prompt_text.size(), whole.size());
  }
  return out;
}

std::optional<PreferenceExamples> tokenize_row(const PreferenceText& text, const Tokenizer& tokenizer,
                                                int64_t max_length) {
  if (exceeds_sequence_len(text, tokenizer, max_length)) return std::nullopt;
  const std::vector<int32_t> prompt = tokenize_template_text(text.prompt, tokenizer);
  std::vector<int32_t> prompt_parts[2], answers[2];
  const jinja::Text* responses[2] = {&text.chosen, &text.rejected};
  for (int i = 0; i < 2; i++) {
    jinja::Text whole = text.prompt;
    whole.append(*responses[i]);
    const std::vector<int32_t> ids = tokenize_template_text(whole, tokenizer);
    size_t start = prompt.size();
    const bool prefix = ids.size() >= prompt.size() && std::equal(prompt.begin(), prompt.end(), ids.begin());
    if (!prefix && start > 0) start--;  // the prompt's last token merged into the response's first
    start = std::min(start, ids.size());
    prompt_parts[i] = with_bos(std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(start)), tokenizer);
    answers[i].assign(ids.begin() + static_cast<std::ptrdiff_t>(start), ids.end());
    if (answers[i].empty() || answers[i].back() != tokenizer.eos()) answers[i].push_back(tokenizer.eos());
  }
  // TRL 1.9's cut (its ORPOTrainer.tokenize_row, as Axolotl 0.19 runs it): over max_length with
  // the longer answer, an answer keeps its first max_length - longer ids.
  const int64_t longer = static_cast<int64_t>(std::max(answers[0].size(), answers[1].size()));
  for (int i = 0; i < 2; i++)
    if (static_cast<int64_t>(prompt_parts[i].size()) + longer > max_length) keep_head(answers[i], max_length - longer);
  // That cut may leave a sequence up to BOS and EOS past max_length; a row holds max_length
  // tokens, so its answer ends there (keep_start).
  for (int i = 0; i < 2; i++) keep_head(answers[i], std::max<int64_t>(0, max_length - static_cast<int64_t>(prompt_parts[i].size())));
  if (answers[0].empty() || answers[1].empty()) return std::nullopt;
  PreferenceExamples out;
  Example* examples[2] = {&out.chosen, &out.rejected};
  for (int i = 0; i < 2; i++) {
    examples[i]->tokens = prompt_parts[i];
    examples[i]->tokens.insert(examples[i]->tokens.end(), answers[i].begin(), answers[i].end());
    examples[i]->labels = examples[i]->tokens;
    std::fill_n(examples[i]->labels.begin(), prompt_parts[i].size(), kIgnoreIndex);
  }
  return out;
}

}  // namespace llm
