// defines: formatted_pair, formatted_unpaired
#include "io/preference_formats.h"

#include "engine/user_error.h"
#include "io/preference_rows.h"
#include "io/user_defined.h"

namespace llm {
namespace {

using namespace preference_rows;

bool passthrough(const DatasetSpec& spec) { return spec.type == "passthrough.default"; }

// The format of a passthrough row: each text its field, as given.
const PreferenceFormat& format_of(const DatasetSpec& spec) {
  static const PreferenceFormat as_given;
  return passthrough(spec) ? as_given : spec.preference_format;
}

// A passthrough row's texts are template text (TRL tokenizes them whole); a user-defined row's
// fields stay text inside its formats.
int value_source(const DatasetSpec& spec) { return passthrough(spec) ? jinja::kTemplateSource : kRowSource; }

// `format` (its default when empty) with the row's `field` as {name}.
jinja::Text formatted(const DatasetSpec& spec, const std::string& format, const std::string& fallback,
                      const std::string& name, const std::string& field, const json& row, const std::string& where) {
  return format_text(format.empty() ? fallback : format, {{name, string_field(row, field, where)}}, value_source(spec),
                     where + name + "_format");
}

jinja::Text prompt_of(const DatasetSpec& spec, const json& row, const std::string& where) {
  const PreferenceFormat& f = format_of(spec);
  const std::string format = f.prompt_format.empty() ? "{prompt}" : f.prompt_format;
  std::string system;  // Axolotl's `sample.get(field_system) or ""`, read only for a format that uses it
  if (auto s = row.find(f.field_system); format.find("{system}") != std::string::npos && s != row.end() && !s->is_null())
    system = string_field(row, f.field_system, where);
  return format_text(format, {{"prompt", string_field(row, f.field_prompt, where)}, {"system", system}},
                     value_source(spec), where + "prompt_format");
}

void require_texts(const std::vector<const jinja::Text*>& texts, const std::string& what, const std::string& where) {
  for (const jinja::Text* t : texts)
    if (t->str().empty()) throw UserError(where + "expected non-empty " + what + " (Axolotl refuses a row without them)");
}

// A passthrough row's field that holds TRL's conversational format (a list of messages): refused
// as Axolotl's length filter refuses it (its tokenizer call takes text), naming the types that
// read messages.
void require_passthrough_texts(const DatasetSpec& spec, const json& row, std::initializer_list<const char*> keys,
                               const std::string& where) {
  if (!passthrough(spec) || !row.is_object()) return;
  for (const char* key : keys)
    if (auto v = row.find(key); v != row.end() && v->is_array())
      throw UserError(where + "field \"" + key + "\" is a list (of messages?); expected a string: a dataset entry "
                      "without `type` passes each row's texts through, and messages need a type that reads them (" +
                      (keys.size() == 2 ? "KTO: llama3.argilla_chat or chatml.argilla_chat, one list in \"completion\""
                                        : "DPO: chat_template.default") + ")");
}

}  // namespace

PreferenceText formatted_pair(const DatasetSpec& spec, const json& row, const std::string& where) {
  require_passthrough_texts(spec, row, {"prompt", "chosen", "rejected"}, where);
  const PreferenceFormat& f = format_of(spec);
  PreferenceText out;
  out.prompt = prompt_of(spec, row, where);
  out.chosen = formatted(spec, f.chosen_format, "{chosen}", "chosen", f.field_chosen, row, where);
  out.rejected = formatted(spec, f.rejected_format, "{rejected}", "rejected", f.field_rejected, row, where);
  require_texts({&out.prompt, &out.chosen, &out.rejected}, "prompt, chosen and rejected texts", where);
  return out;
}

KtoText formatted_unpaired(const DatasetSpec& spec, const json& row, const std::string& where) {
  require_passthrough_texts(spec, row, {"prompt", "completion"}, where);
  const PreferenceFormat& f = format_of(spec);
  KtoText out;
  out.prompt = prompt_of(spec, row, where);
  out.completion = formatted(spec, f.completion_format, "{completion}", "completion", f.field_completion, row, where);
  require_texts({&out.prompt, &out.completion}, "prompt and completion texts", where);
  out.desirable = label_field(row, f.field_label, where);
  return out;
}

}  // namespace llm
