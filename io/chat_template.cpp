// defines: chat_document, render_chat_text, add_chat_template_rows
#include "io/chat_template.h"

#include <algorithm>
#include <optional>
#include <set>
#include <stdexcept>

#include "engine/user_error.h"
#include "io/chat_jinja.h"
#include "io/json_text.h"
#include "io/python_text.h"

namespace llm {
namespace {

// What a template writes around each message. Markers are special pieces; separators are text.
struct Markup {
  const char* name;
  const char* begin;        // special, once before the first message; nullptr: none
  const char* header_open;  // special, before the role
  const char* header_close;  // special, after the role; nullptr: none
  const char* header_sep;   // text between the header and the content
  const char* end_of_turn;  // special, after the content: the marker train_on_eos decides
  const char* after_turn;   // text after end_of_turn
  bool trim_content;        // Jinja's `| trim` on the content
  // The Jinja source this markup renders (Axolotl's template of that name; test_chat_jinja holds
  // the two to each other): what a saved tokenizer carries as its chat_template.
  const char* jinja;
};

constexpr Markup kTemplates[] = {
    {"llama3", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "\n\n",
     "<|eot_id|>", "", true,
     "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
     "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
     "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
     "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
     "{% endif %}"},
    {"chatml", nullptr, "<|im_start|>", nullptr, "\n", "<|im_end|>", "\n", false,
     "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
     "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
     "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
     "{% endif %}"},
};

const Markup& markup_of(const std::string& chat_template, const std::string& where) {
  for (const Markup& m : kTemplates)
    if (builtin_chat_template(chat_template) == m.name) return m;
  throw UserError(where + ": unknown chat_template \"" + chat_template +
                  "\" (expected llama3 or chatml)");
}

std::string jinja_trim(const std::string& s) {
  size_t begin = 0, end = s.size();
  python_strip_bounds(s, begin, end, true, true);
  return s.substr(begin, end - begin);
}


// Our name for the dataset's role `name`: what `roles` (or Axolotl's defaults without it) maps it
// to, else the name as written, as Axolotl's transform_message keeps a role it does not map
// (`roles.get(role, role)`): the template writes it, and it trains only if roles_to_train names it.
std::string our_role(const DatasetSpec& spec, const std::string& name) {
  const std::map<std::string, std::vector<std::string>> defaults = {{"user", {"human"}},
                                                                     {"assistant", {"gpt"}}};
  const auto& roles = spec.roles.empty() ? defaults : spec.roles;
  for (const auto& [ours, names] : roles)
    if (std::find(names.begin(), names.end(), name) != names.end()) return ours;
  return name;
}

// message[key] as a string, or a UserError naming the row and the message.
std::string message_string(const nlohmann::ordered_json& message, const std::string& key,
                           const std::string& where, const std::string& which) {
  auto it = message.find(key);
  if (it == message.end() || !it->is_string())
    throw UserError(where + which + (it == message.end() ? " has no \"" : " has a non-string \"") +
                    key + "\"; expected an object with role and content strings "
                    "(datasets: message_property_mappings)");
  return it->get<std::string>();
}

// Whether the row's first message is a system one (by our role name).
bool starts_with_system(const nlohmann::ordered_json& list, const DatasetSpec& spec, const std::string& role_key) {
  if (!list[0].is_object()) return false;
  auto role = list[0].find(role_key);
  return role != list[0].end() && role->is_string() && our_role(spec, role->get<std::string>()) == "system";
}

// Axolotl's remove_none_values, which its tokenize_prompt applies to a whole row before the
// template sees it: null members of every object dropped, at any depth (a list keeps its nulls).
nlohmann::ordered_json without_null_members(const nlohmann::ordered_json& value) {
  if (value.is_array()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& item : value) out.push_back(without_null_members(item));
    return out;
  }
  if (!value.is_object()) return value;
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [key, member] : value.items())
    if (!member.is_null()) out[key] = without_null_members(member);
  return out;
}

// Axolotl parses JSON given as text where a template expects an object: each function's `field`
// (a tool call's arguments, a tool's parameters) in `list`, `which` naming the list in messages.
// Text that is no JSON fails there (json.loads raises), so it is refused here in one line.
nlohmann::ordered_json with_function_json(nlohmann::ordered_json list, const char* field, const std::string& which) {
  if (!list.is_array()) return list;
  for (size_t i = 0; i < list.size(); i++) {
    auto& item = list[i];
    if (!item.is_object() || !item.contains("function") || !item["function"].is_object()) continue;
    auto& function = item["function"];
    if (!function.contains(field) || !function[field].is_string()) continue;
    const std::string text = function[field].get<std::string>();
    nlohmann::ordered_json parsed = json_nested_deeper_than(text) ? nlohmann::ordered_json(nlohmann::ordered_json::value_t::discarded)
                                                                  : nlohmann::ordered_json::parse(text, nullptr, false);
    if (parsed.is_discarded())
      throw UserError(which + "[" + std::to_string(i) + "].function." + field + " is text that is no JSON (Axolotl parses it "
                      "with json.loads, which fails): '" + text.substr(0, 60) + (text.size() > 60 ? "...'" : "'"));
    function[field] = std::move(parsed);
  }
  return list;
}

// roles_to_train as our roles: it may name the dataset's roles too, as Axolotl maps them.
std::set<std::string> trained_roles_of(const DatasetSpec& spec) {
  std::set<std::string> trained;
  for (const std::string& r : spec.roles_to_train) trained.insert(our_role(spec, r));
  return trained;
}

void check_train_on_eos(const DatasetSpec& spec) {
  const std::string& eos = spec.train_on_eos;
  if (eos != "turn" && eos != "last" && eos != "all" && eos != "none")
    throw UserError(spec.path + ": unknown train_on_eos \"" + eos +
                    "\" (expected turn, last, all or none)");
}

}  // namespace

std::string mapped_key(const DatasetSpec& spec, const std::string& property) {
  auto it = spec.message_property_mappings.find(property);
  return it == spec.message_property_mappings.end() ? property : it->second;
}

ChatMessage read_message(const nlohmann::ordered_json& message, const DatasetSpec& spec, bool content_is_string,
                         const std::string& where, const std::string& which) {
  if (!message.is_object())
    throw UserError(where + which + " is " + json_kind(message) +
                    "; expected an object with role and content strings");
  const std::string role = message_string(message, mapped_key(spec, "role"), where, which);
  const std::string ours = our_role(spec, role);
  auto detail = spec.message_field_training_detail.empty() ? message.end() : message.find(spec.message_field_training_detail);
  const bool has_detail = detail != message.end() && !detail->is_null();
  if (has_detail && !content_is_string) {  // Axolotl refuses spans over anything but a string
    const auto content = message.find(mapped_key(spec, "content"));
    if (content == message.end() || !content->is_string())
      throw UserError(where + which + " has \"" + spec.message_field_training_detail +
                      "\" but no string content; expected a string to take spans of");
  }
  // The built-in templates write content alone: a tool call's turn (content null) would lose its
  // call, as Axolotl's llama3 template drops it (and its chatml fails on it).
  if (content_is_string && message.contains("tool_calls") && !message["tool_calls"].is_null()) {
    const auto content = message.find(mapped_key(spec, "content"));
    if (content == message.end() || !content->is_string())
      throw UserError(where + which + " is a tool call without string content, which the built-in template " + builtin_chat_template(spec.chat_template) +
                      " cannot write; expected a Jinja template that writes tool_calls (chat_template: tokenizer_default, "
                      "or jinja with chat_template_jinja)");
  }
  ChatMessage m{ours, content_is_string || has_detail ? message_string(message, mapped_key(spec, "content"), where, which) : "",
                {}, {}};
  if (has_detail) m.train_detail = read_train_detail(*detail, where + which + "'s \"" + spec.message_field_training_detail + "\"");
  auto flag = spec.message_field_training.empty() ? message.end() : message.find(spec.message_field_training);
  if (flag != message.end() && !flag->is_null()) {
    if (!flag->is_boolean())
      throw UserError(where + which + " has a non-boolean \"" + spec.message_field_training +
                      "\"; expected true or false (datasets: message_field_training)");
    m.train = flag->get<bool>();
  }
  return m;
}

const std::vector<std::string>& chat_template_choices() {
  static const std::vector<std::string> choices = {"llama3", "chatml", "jinja", "tokenizer_default",
                                                   "tokenizer_default_fallback_llama3",
                                                   "tokenizer_default_fallback_chatml"};
  return choices;
}

std::string end_of_turn_option(const DatasetSpec& spec) {
  return spec.train_on_eot.empty() ? spec.train_on_eos : spec.train_on_eot;
}

std::vector<TurnMask> turn_masks(const std::vector<ChatMessage>& messages, const DatasetSpec& spec,
                                 const Tokenizer* tokenizer) {
  const std::set<std::string> trained_roles = trained_roles_of(spec);
  const bool any_turn = spec.train_on_eos == "all" || end_of_turn_option(spec) == "all";
  std::vector<TurnMask> masks;
  for (const ChatMessage& m : messages) {
    const bool by_role = trained_roles.count(m.role) > 0;
    // Axolotl's order: the message's flag, else whether it lists spans, else its role.
    const std::optional<bool> own = m.train ? m.train : m.train_detail ? std::optional<bool>(!m.train_detail->empty())
                                                                       : std::nullopt;
    const Loss content = own ? (*own ? Loss::trained : Loss::none) : by_role ? Loss::trained : Loss::prompt;
    const bool trains = own ? *own : by_role || spec.train_on_inputs;
    masks.push_back({content, trains || any_turn, {}, false});
    if (m.train_detail && content == Loss::trained) {
      if (!tokenizer) throw std::logic_error("turn_masks: train_detail needs the tokenizer");
      masks.back().detail_tokens = train_detail_tokens(m.content, *m.train_detail, *tokenizer);
      masks.back().has_detail = true;
    }
  }
  return masks;
}

std::string builtin_chat_template_jinja(const std::string& chat_template) {
  return markup_of(chat_template, "builtin_chat_template_jinja").jinja;
}

std::string builtin_chat_template(const std::string& chat_template) {
  const std::string fallback = "tokenizer_default_fallback_";
  return chat_template.rfind(fallback, 0) == 0 ? chat_template.substr(fallback.size()) : chat_template;
}

namespace {

// The template text whose tokens end turns: the resolved Jinja source, else the built-in's.
std::string template_source(const DatasetSpec& spec) {
  return spec.chat_template_source.empty() ? builtin_chat_template_jinja(spec.chat_template) : spec.chat_template_source;
}

// Axolotl's default: no eot_tokens, or EOS alone; EOS then ends turns under both options.
bool eos_alone_ends_turns(const DatasetSpec& spec, const std::string& eos) {
  return spec.eot_tokens.empty() || spec.eot_tokens == std::vector<std::string>{eos};
}

}  // namespace

TurnEnds turn_ends(const DatasetSpec& spec, const Tokenizer& tokenizer) {
  check_train_on_eos(spec);
  TurnEnds ends{{}, tokenizer.eos(), end_of_turn_option(spec), spec.train_on_eos};
  if (eos_alone_ends_turns(spec, tokenizer.special_name(tokenizer.eos()).value_or(""))) {
    ends.eot_ids = {tokenizer.eos()};  // unchecked, as Axolotl: either option may train it
    return ends;
  }
  const std::string source = template_source(spec);
  for (const std::string& name : spec.eot_tokens) {
    if (source.find(name) == std::string::npos) continue;  // ends no turn (end_of_turn_warnings)
    const std::optional<int32_t> id = tokenizer.special_id(name);
    if (!id)  // Axolotl refuses an end-of-turn token of its template that is not one token
      throw UserError(spec.path + ": eot_tokens: expected special tokens of the " + tokenizer.name() +
                      " tokenizer, got " + name);
    ends.eot_ids.push_back(*id);
  }
  if (ends.ends_turns(ends.eos) && ends.eot_option != ends.eos_option)
    throw UserError(spec.path + ": train_on_eot " + ends.eot_option + " and train_on_eos " + ends.eos_option +
                    " disagree on EOS, an end-of-turn token here; expected one setting for both (Axolotl's rule)");
  return ends;
}

bool TurnEnds::ends_turns(int32_t id) const {
  return std::find(eot_ids.begin(), eot_ids.end(), id) != eot_ids.end();
}

Loss TurnEnds::loss_under(const std::string& option, Loss turn, bool last) {
  return option == "all" || (option == "last" && last) ? Loss::trained : option == "turn" ? turn : Loss::none;
}

Loss TurnEnds::loss_of(int32_t id, Loss turn, bool last) const {
  // Axolotl's two passes only ever train a label, so a token both passes find takes the larger loss.
  const Loss as_eot = ends_turns(id) ? loss_under(eot_option, turn, last) : Loss::none;
  return std::max(as_eot, id == eos ? loss_under(eos_option, turn, last) : Loss::none);
}

std::vector<std::string> end_of_turn_warnings(const DatasetSpec& spec, const Tokenizer& tokenizer) {
  const std::string source = template_source(spec);
  std::vector<std::string> warnings;
  const std::string eos = tokenizer.special_name(tokenizer.eos()).value_or("");
  if (eos_alone_ends_turns(spec, eos)) {
    if (source.find(eos) == std::string::npos && source.find("eos_token") == std::string::npos)
      warnings.push_back(spec.path + ": EOS " + eos + " is not in chat_template " + spec.chat_template +
                         ", so no turn's end trains (Axolotl's rule); set eot_tokens to the template's end of turn");
    return warnings;
  }
  for (const std::string& eot : spec.eot_tokens)
    if (source.find(eot) == std::string::npos)
      warnings.push_back(spec.path + ": eot_tokens: " + eot + " is not in chat_template " + spec.chat_template +
                         ", so it ends no turn (Axolotl's rule)");
  return warnings;
}

Document chat_document(const std::vector<ChatMessage>& messages, const DatasetSpec& spec, const Tokenizer* tokenizer,
                       const TurnEnds* file_ends) {
  const Markup& m = markup_of(spec.chat_template, spec.path);
  check_train_on_eos(spec);
  // The marker ends each turn; its loss as Axolotl's turn-end passes give it (none when rendering).
  const std::optional<TurnEnds> ends =
      file_ends ? std::optional<TurnEnds>(*file_ends)
                : tokenizer ? std::optional<TurnEnds>(turn_ends(spec, *tokenizer)) : std::nullopt;
  const std::optional<int32_t> marker = tokenizer ? tokenizer->special_id(m.end_of_turn) : std::nullopt;
  const std::vector<TurnMask> masks = turn_masks(messages, spec, tokenizer);
  size_t last = messages.size();  // the turn whose end `last` trains
  for (size_t i = 0; i < messages.size(); i++)
    if (masks[i].counts_for_last) last = i;

  Document doc;
  doc.add_bos = doc.add_eos = false;
  auto special = [&doc](const char* name, Loss loss) {
    doc.pieces.push_back({Piece::Kind::special, name, {}, loss});
  };
  // Neighbouring text of one loss is one piece ("user" + "\n"), so the tokenizer sees it whole.
  auto text = [&doc](const std::string& s, Loss loss) {
    if (s.empty()) return;
    Piece* last = doc.pieces.empty() ? nullptr : &doc.pieces.back();
    if (last && last->kind == Piece::Kind::text && last->loss == loss) last->text += s;
    else doc.pieces.push_back({Piece::Kind::text, s, {}, loss});
  };
  if (m.begin) special(m.begin, Loss::none);
  for (size_t i = 0; i < messages.size(); i++) {
    const ChatMessage& msg = messages[i];
    const Loss content = masks[i].content;
    special(m.header_open, Loss::none);
    text(msg.role, Loss::none);
    if (m.header_close) special(m.header_close, Loss::none);
    text(m.header_sep, Loss::none);
    const std::string shown = m.trim_content ? jinja_trim(msg.content) : msg.content;
    if (masks[i].has_detail) {
      // The spans train tokens of the content tokenized alone, by position (Axolotl's): the
      // shown content's token i trains when the message's token i does.
      const std::vector<bool>& trains = masks[i].detail_tokens;
      const std::vector<int32_t> ids = tokenizer->encode(shown);
      for (size_t t = 0; t < ids.size(); t++)
        doc.pieces.push_back({Piece::Kind::ids, "", {ids[t]}, t < trains.size() && trains[t] ? Loss::trained : Loss::none});
    } else {
      text(shown, content);
    }
    const Loss end = ends && marker ? ends->loss_of(*marker, content, i == last) : Loss::none;
    special(m.end_of_turn, end);
    text(m.after_turn, Loss::none);
  }
  return doc;
}

std::string render_chat_text(const std::vector<ChatMessage>& messages,
                             const std::string& chat_template) {
  DatasetSpec spec;
  spec.path = "render_chat_text";
  spec.chat_template = chat_template;
  std::string rendered;
  for (const Piece& p : chat_document(messages, spec).pieces) rendered += p.text;
  return rendered;
}

void add_chat_template_rows(const std::string& path, const std::vector<JsonRecord>& records, const DatasetSpec& spec,
                            const Tokenizer& tokenizer, std::vector<Document>& docs) {
  const std::string& field = spec.field_messages;
  const std::string role_key = mapped_key(spec, "role"), content_key = mapped_key(spec, "content");
  const std::string expected_row = "expected a JSON object with a \"" + field +
                                   "\" list of messages (datasets: field_messages)";
  const TurnEnds ends = turn_ends(spec, tokenizer);  // refuses the file's end-of-turn settings before its rows
  std::optional<jinja::Template> jinja_template;
  if (!spec.chat_template_source.empty())
    jinja_template.emplace(spec.chat_template_source, "chat_template " + spec.chat_template);
  for (const JsonRecord& r : records) {
    const std::string where = path + ":" + std::to_string(r.line) + ": ";
    if (!r.value.is_object())
      throw UserError(where + expected_row + ", got a JSON " + r.value.type_name());
    nlohmann::ordered_json cleaned;
    const nlohmann::ordered_json& row = jinja_template ? (cleaned = without_null_members(r.value)) : r.value;
    auto list = row.find(field);
    if (list == row.end())
      throw UserError(where + "missing field \"" + field + "\"; " + expected_row);
    if (!list->is_array() || list->empty())
      throw UserError(where + "field \"" + field + "\" is " +
                      (list->is_array() ? "an empty list" : json_kind(*list)) +
                      "; " + expected_row);
    // The row's own "system" (Axolotl's ChatTemplatePrompter.field_system, which its loader leaves
    // at that default) opens a conversation that has no system message; drop_system_message then
    // drops that turn again, else the row's own system message.
    const bool has_system = starts_with_system(*list, spec, role_key);
    auto row_system = row.find("system");
    const bool adds_system = !has_system && row_system != row.end() && !row_system->is_null();
    const size_t first = spec.drop_system_message && has_system ? 1 : 0;
    std::vector<ChatMessage> messages;
    jinja::ValueList template_messages;
    if (adds_system && !spec.drop_system_message) {
      if (!jinja_template && !row_system->is_string())
        throw UserError(where + "field \"system\" is " + json_kind(*row_system) +
                        "; expected a string (it opens the conversation as its system message)");
      messages.push_back({"system", row_system->is_string() ? row_system->get<std::string>() : "", {}, {}});
      if (jinja_template)
        template_messages.push_back(jinja::Value::from(jinja::ValueDict{
            {"role", jinja::Value::from("system")}, {"content", jinja::from_json(*row_system, 0)}}));
    }
    for (size_t i = first; i < list->size(); i++) {
      const nlohmann::ordered_json& message = (*list)[i];
      const std::string which = field + "[" + std::to_string(i) + "]";
      messages.push_back(read_message(message, spec, !jinja_template, where, which));
      // As Axolotl's transform_message: role and content under our names, the other keys as
      // they are (Axolotl passes those the template reads; a template reading keys by name sees
      // the same); null members already dropped. Content strings carry the message's index.
      if (!jinja_template) continue;
      jinja::ValueDict fields = {{"role", jinja::Value::from(messages.back().role)}};
      auto content = message.find(content_key);
      if (content != message.end() && !content->is_null())
        fields.emplace_back("content", jinja::from_json(*content, int(messages.size() - 1)));
      for (const auto& [key, value] : message.items())
        if (key != role_key && key != content_key && key != "role" && key != "content")
          fields.emplace_back(key, jinja::from_json(key == "tool_calls" ? with_function_json(value, "arguments", where + which + ".tool_calls")
                                                                        : value));
      template_messages.push_back(jinja::Value::from(std::move(fields)));
    }
    if (!jinja_template) {
      docs.push_back(chat_document(messages, spec, &tokenizer, &ends));
      continue;
    }
    auto tools = row.find(spec.field_tools);
    if (tools != row.end() && !tools->is_null() && !tools->is_array())  // Axolotl's _get_tools refuses it
      throw UserError(where + "field \"" + spec.field_tools + "\" is " + json_kind(*tools) +
                      "; expected a list of tool definitions (datasets: field_tools)");
    // Axolotl passes tools only when there are some: an empty list is none to the template.
    const jinja::Value tool_list = tools == row.end() || tools->is_null() || tools->empty()
                                       ? jinja::Value::none()
                                       : jinja::from_json(with_function_json(*tools, "parameters", where + spec.field_tools));
    try {
      docs.push_back(jinja_chat_document(*jinja_template, template_messages, tool_list,
                                         turn_masks(messages, spec, &tokenizer), ends, spec, tokenizer));
    } catch (const UserError& e) {  // the template failed on this row: name it
      throw UserError(where + e.what());
    }
  }
}

}  // namespace llm
