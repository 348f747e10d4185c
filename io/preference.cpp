// defines: is_preference_type, preference_types, load_preference_file, exceeds_sequence_len,
// tokenize_preference, append_preference_examples
#include "io/preference.h"

#include <algorithm>
#include <stdexcept>

#include "engine/ops.h"
#include "engine/user_error.h"
#include "io/chat_jinja.h"
#include "io/chat_template.h"
#include "engine/stop_signal.h"
#include "io/preference_rows.h"
#include "io/documents.h"
#include "io/json_text.h"
#include "io/orpo.h"
#include "io/preference_formats.h"

namespace llm {
namespace {

using namespace preference_rows;

// How a strategy reads a row: where the prompt and the responses are.
enum class Layout { first_present, input, question, prompt, ultra, argilla_chat, formatted };

struct Strategy {
  std::string type;
  const Markup* markup;  // null: the chat template (or the row's own formats: io/preference_formats.h)
  Layout layout;
};

const std::vector<Strategy>& strategies() {
  static const std::vector<Strategy> all = {
      {"llama3.default", &kLlama3, Layout::first_present},  {"llama3.argilla_chat", &kLlama3, Layout::argilla_chat},
      {"llama3.icr", &kLlama3, Layout::input},               {"llama3.intel", &kLlama3, Layout::question},
      {"llama3.prompt_pairs", &kLlama3, Layout::prompt},     {"llama3.ultra", &kLlama3, Layout::ultra},
      {"chatml.default", &kChatml, Layout::first_present},   {"chatml.argilla_chat", &kChatml, Layout::argilla_chat},
      {"chatml.icr", &kChatml, Layout::input},               {"chatml.intel", &kChatml, Layout::question},
      {"chatml.prompt_pairs", &kChatml, Layout::prompt},     {"chatml.ultra", &kChatml, Layout::ultra},
      {"chatml.argilla", &kChatml, Layout::first_present},  // chatml.default's name before Axolotl 0.19
      {"chat_template.default", nullptr, Layout::first_present},
      {"chat_template.argilla_chat", nullptr, Layout::argilla_chat},
      {"passthrough.default", nullptr, Layout::formatted},  {"user_defined.default", nullptr, Layout::formatted}};
  return all;
}

const Strategy& strategy_of(const DatasetSpec& spec) {
  for (const Strategy& s : strategies())
    if (s.type == spec.type) return s;
  throw UserError(spec.path + ": type " + spec.type + " is no preference dataset type");
}

// The first of `keys` the row has (Python's chain of `in` tests), else the last.
std::string first_present(const json& row, const std::vector<std::string>& keys) {
  for (const std::string& k : keys)
    if (row.contains(k)) return k;
  return keys.back();
}

PreferenceText markup_pair(const Strategy& s, const json& row, const std::string& where) {
  std::string prompt, chosen, rejected;
  std::string chosen_key = "chosen", rejected_key = "rejected";
  switch (s.layout) {
    case Layout::first_present:
      prompt = string_field(row, first_present(row, {"prompt", "input", "question", "instruction"}), where);
      chosen_key = first_present(row, {"chosen", "chosen_response"});
      rejected_key = first_present(row, {"rejected", "rejected_response"});
      break;
    case Layout::input: prompt = string_field(row, "input", where); break;
    case Layout::question: prompt = string_field(row, "question", where); break;
    case Layout::prompt:
    case Layout::ultra: prompt = string_field(row, "prompt", where); break;
    case Layout::argilla_chat: prompt = message_content(row, "chosen", 0, where); break;
    case Layout::formatted: throw std::logic_error("markup_pair: a formatted row has no markup");
  }
  const bool nested = s.layout == Layout::ultra || s.layout == Layout::argilla_chat;
  chosen = nested ? message_content(row, "chosen", 1, where) : string_field(row, chosen_key, where);
  rejected = nested ? message_content(row, "rejected", 1, where) : string_field(row, rejected_key, where);
  const Markup& m = *s.markup;
  PreferenceText out;
  out.prompt = markup_prompt(m, s.layout == Layout::argilla_chat ? json::object() : row, prompt, where);
  for (auto [text, response] : {std::pair{&out.chosen, &chosen}, std::pair{&out.rejected, &rejected}}) {
    text->append(*response, kRowSource);
    text->append(m.response_end, jinja::kTemplateSource);
  }
  return out;
}

// A message for the chat template: {role, content}, the content carrying the row's source.
jinja::Value template_message(const json& message, const DatasetSpec& spec, const std::string& where,
                              const std::string& which) {
  const ChatMessage m = read_message(message, spec, false, where, which);
  const json& content = field(message, mapped_key(spec, "content"), where + which + ": ");
  return jinja::Value::from(jinja::ValueDict{{"role", jinja::Value::from(m.role)},
                                             {"content", jinja::from_json(content, kRowSource)}});
}

// A response: a string (the assistant's), a message, or a list whose last message it is.
std::pair<jinja::Value, std::string> response_message(const json& raw, const DatasetSpec& spec, const std::string& key,
                                                      const std::string& where) {
  const json& message = raw.is_array() && !raw.empty() ? raw.back() : raw;
  if (message.is_string()) {
    jinja::ValueDict assistant = {{"role", jinja::Value::from("assistant")},
                                  {"content", jinja::from_json(message, kRowSource)}};
    return {jinja::Value::from(std::move(assistant)), message.get<std::string>()};
  }
  const jinja::Value value = template_message(message, spec, where, key);
  const json& content = message[mapped_key(spec, "content")];
  if (!content.is_string()) throw UserError(where + key + "'s content is " + json_kind(content) + "; expected a string");
  return {value, content.get<std::string>()};
}

PreferenceText template_pair(const Strategy& s, const jinja::Template& chat_template, const json& row,
                             const DatasetSpec& spec, const Tokenizer& tokenizer, const std::string& where) {
  const json& chosen_raw = field(row, spec.field_chosen, where);
  const json& rejected_raw = field(row, spec.field_rejected, where);
  jinja::ValueList prompt_messages;
  if (s.layout == Layout::argilla_chat) {  // the conversation is the chosen one's, but its last message
    if (!chosen_raw.is_array() || chosen_raw.size() < 2)
      throw UserError(where + "field \"" + spec.field_chosen + "\" is not a list of at least two messages");
    for (size_t i = 0; i + 1 < chosen_raw.size(); i++)
      prompt_messages.push_back(
          template_message(chosen_raw[i], spec, where, spec.field_chosen + "[" + std::to_string(i) + "]"));
  } else {
    const json& messages = field(row, spec.field_messages, where);
    if (messages.is_string()) {
      prompt_messages.push_back(jinja::Value::from(jinja::ValueDict{
          {"role", jinja::Value::from("user")}, {"content", jinja::from_json(messages, kRowSource)}}));
    } else if (messages.is_array()) {
      for (size_t i = 0; i < messages.size(); i++)
        prompt_messages.push_back(
            template_message(messages[i], spec, where, spec.field_messages + "[" + std::to_string(i) + "]"));
    } else {
      throw UserError(where + "field \"" + spec.field_messages + "\" is " + json_kind(messages) +
                      "; expected a list of messages or a string");
    }
  }
  auto render = [&](jinja::ValueList messages, bool generation_prompt) {
    return chat_template.render(chat_template_variables(jinja::Value::from(std::move(messages)), jinja::Value::none(),
                                                        generation_prompt, tokenizer));
  };
  PreferenceText out;
  out.prompt = render(std::move(prompt_messages), true);
  const jinja::Value dummy = jinja::Value::from(jinja::ValueDict{{"role", jinja::Value::from("user")},
                                                                 {"content", jinja::Value::from("[[dummy_message]]")}});
  for (auto [text, raw, key] : {std::tuple{&out.chosen, &chosen_raw, &spec.field_chosen},
                                std::tuple{&out.rejected, &rejected_raw, &spec.field_rejected}}) {
    auto [message, content] = response_message(*raw, spec, *key, where);
    const jinja::Text rendered = render({dummy, message}, false);
    // Axolotl cuts the rendered turn where the content starts. A template that changes the
    // content (the llama3 one trims it) may leave it unfound: then its trimmed form is looked for.
    const std::string whole = rendered.str();
    size_t at = whole.find(content);
    if (at == std::string::npos) at = whole.find(jinja::Text(content).strip(true, true).str());
    if (at == std::string::npos)
      throw UserError(where + "the chat template does not write " + *key +
                      "'s content as given, so the response cannot be cut from its rendered turn");
    *text = rendered.bytes(at, whole.size()).strip(false, true);
  }
  return out;
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  return static_cast<size_t>(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin());
}

}  // namespace

bool is_preference_type(const std::string& type) {
  const std::vector<std::string>& types = preference_types();
  return std::find(types.begin(), types.end(), type) != types.end();
}

const std::vector<std::string>& preference_types() {
  static const std::vector<std::string> types = strategy_types(strategies());
  return types;
}

void load_preference_file(const std::string& path, const DatasetSpec& spec, const Tokenizer& tokenizer,
                          std::vector<PreferenceText>& out) {
  const bool orpo = is_orpo_type(spec.type);
  const Strategy* s = orpo ? nullptr : &strategy_of(spec);
  std::optional<jinja::Template> chat_template;
  if (orpo || (!s->markup && s->layout != Layout::formatted))
    chat_template.emplace(spec.chat_template_source.empty() ? builtin_chat_template_jinja(spec.chat_template)
                                                             : spec.chat_template_source,
                          "chat_template " + spec.chat_template);
  for (const JsonRecord& r : read_json_dataset_file(path, spec)) {
    const std::string where = path + ":" + std::to_string(r.line) + ": ";
    if (!r.value.is_object()) throw UserError(where + "expected a JSON object, got a JSON " + r.value.type_name());
    try {
      out.push_back(orpo                               ? orpo_pair(*chat_template, r.value, tokenizer, where)
                    : s->markup                        ? markup_pair(*s, r.value, where)
                    : s->layout == Layout::formatted   ? formatted_pair(spec, r.value, where)
                                                       : template_pair(*s, *chat_template, r.value, spec, tokenizer, where));
    } catch (const UserError& e) {
      const std::string what = e.what();
      throw UserError(what.rfind(path, 0) == 0 ? what : where + what);  // the template failed: name the row
    }
  }
}

bool exceeds_sequence_len(const PreferenceText& text, const Tokenizer& tokenizer, int64_t max_length) {
  const size_t prompt = tokenize_template_text(text.prompt, tokenizer).size();
  for (const jinja::Text* response : {&text.chosen, &text.rejected})
    if (static_cast<int64_t>(prompt + tokenize_template_text(*response, tokenizer).size()) > max_length) return true;
  return false;
}

std::optional<PreferenceExamples> tokenize_preference(const PreferenceText& text, const Tokenizer& tokenizer,
                                                      int64_t max_length) {
  if (exceeds_sequence_len(text, tokenizer, max_length)) return std::nullopt;
  const std::vector<int32_t> prompt = with_bos(tokenize_template_text(text.prompt, tokenizer), tokenizer);
  const jinja::Text* responses[2] = {&text.chosen, &text.rejected};
  std::vector<int32_t> sequences[2];
  for (int i = 0; i < 2; i++) {
    jinja::Text whole = text.prompt;
    whole.append(*responses[i]);
    sequences[i] = with_bos(tokenize_template_text(whole, tokenizer), tokenizer);
    if (sequences[i].back() != tokenizer.eos()) sequences[i].push_back(tokenizer.eos());  // TRL adds EOS
  }
  const size_t prompt_length = std::min(common_prefix(prompt, sequences[0]), common_prefix(prompt, sequences[1]));
  if (static_cast<int64_t>(prompt_length) >= max_length) return std::nullopt;
  PreferenceExamples out;
  Example* examples[2] = {&out.chosen, &out.rejected};
  for (int i = 0; i < 2; i++) {
    std::vector<int32_t>& ids = sequences[i];
    if (static_cast<int64_t>(ids.size()) > max_length) ids.resize(static_cast<size_t>(max_length));  // keep_start
    examples[i]->tokens = ids;
    examples[i]->labels = ids;
    std::fill_n(examples[i]->labels.begin(), prompt_length, kIgnoreIndex);
  }
  return out;
}

void append_preference_examples(const DatasetSpec& spec, const Tokenizer& tokenizer, const DataConfig& config,
                                std::vector<Example>& out, ExampleStats& stats) {
  const int64_t max_length = config.sequence_len;
  const bool row_rule = config.pair_tokenizing == DataConfig::PairTokenizing::tokenize_row;
  std::vector<PreferenceText> pairs;
  for (const std::string& file : dataset_source_files(spec)) load_preference_file(file, spec, tokenizer, pairs);
  const auto [first, last] = split_rows(spec, pairs.size(), "pairs");
  for (size_t i = first; i < last; i++) {
    if (const int signal = stop_signal()) throw StopRequested(signal, "tokenizing " + spec.path);
    stats.documents++;
    fit_excess_length(config.excess_length_strategy, pairs[i].prompt, {&pairs[i].chosen, &pairs[i].rejected}, tokenizer, max_length,
                      spec.path + ": pair " + std::to_string(i + 1));
    std::optional<PreferenceExamples> pair = row_rule ? tokenize_row(pairs[i], tokenizer, max_length)
                                                      : tokenize_preference(pairs[i], tokenizer, max_length);
    if (!pair) {
      stats.dropped++;
      continue;
    }
    out.push_back(std::move(pair->chosen));
    out.push_back(std::move(pair->rejected));
  }
}

}  // namespace llm
