// The Jinja chat template a config names (chat_template_jinja, a tokenizer's chat_template): read,
// rendered on a conversation with a tool call and masked as a chat dataset masks it. An accepted
// template's masks must cover the rendering, and each message's trained bytes must come from it.
// defines: UserError
#include "engine/user_error.h"
// defines: jinja_chat_document, turn_ends (through io/chat_template.h)
#include "io/chat_jinja.h"
// defines: Target, PropertyFailure
#include "test/fuzz/fuzz.h"

namespace llm::fuzz {
namespace {

jinja::Value conversation() {
  const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(
      R"([{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "Weather in Paris?"},
          {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
          {"role": "tool", "content": {"sky": "clear"}}, {"role": "assistant", "content": "Sunny, 21 °C."}])");
  jinja::ValueList list;
  for (size_t i = 0; i < messages.size(); i++) {
    jinja::ValueDict fields;
    for (const auto& [key, value] : messages[i].items())
      fields.emplace_back(key, jinja::from_json(value, key == "content" ? int(i) : jinja::kTemplateSource));
    list.push_back(jinja::Value::from(std::move(fields)));
  }
  return jinja::Value::from(std::move(list));
}

}  // namespace

Target chat_template_jinja_target() {
  const std::vector<std::string> dict = {
      "{{ ", " }}", "{%- ", " -%}", "{% ", " %}", "{# ", " #}", "{%+ ", "for ", " in ", "endfor", "if ", "elif ",
      "else", "endif", "set ", "endset", "macro ", "endmacro", "break", "continue", "generation", "namespace(",
      "messages", "message", "['content']", ".role", "loop.index", "loop.last", " | trim", " | tojson",
      " | length", " | selectattr(", " is defined", " is none", " not ", " and ", " or ", " ~ ", " + ", " * ",
      "[1:]", "[::-1]", "'", "\"", "\\n", "(", ")", "[", "]", ",", "=", "raise_exception(", "range(",
      "bos_token", "eos_token", "<|eot_id|>", ".strip()", ".split(", "99999999", "-1", "none", "true", " % ",
      "'%s'", "%(", ")s", "%-*.*d", "%#x", "%c", "%.3f", "| format(",
      " | groupby(", " | batch(", " | slice(", " | sort(attribute=", " | unique", " | center(", " | truncate(",
      " | wordcount", " | filesizeformat", " | title", ".upper()", "'ΣΑΣ ß ǆ'", ".grouper", "case_sensitive="};
  return {"chat_template_jinja", "chat_template_jinja", dict, nullptr,
          [](const std::string& input, const std::string&) {
            const jinja::Template chat_template(input, "t.jinja");
            DatasetSpec spec;
            spec.path = "chat.jsonl";
            const std::vector<TurnMask> masks = {{Loss::prompt, false}, {Loss::prompt, false}, {Loss::trained, true},
                                                 {Loss::prompt, false}, {Loss::trained, true}};
            const ByteTokenizer tokenizer;
            const TurnEnds ends = turn_ends(spec, tokenizer);
            const Document doc = jinja_chat_document(chat_template, *conversation().list, jinja::Value::none(), masks, ends, spec, tokenizer);
            std::string text;
            for (const Piece& p : doc.pieces) {
              require(p.kind == Piece::Kind::ids && !p.token_ids.empty(), "a piece that is not token ids, or empty");
              text += tokenizer.decode(p.token_ids);
            }
            require(text == chat_template.render({{"messages", conversation()},
                                                  {"tools", jinja::Value::none()},
                                                  {"documents", jinja::Value::none()},
                                                  {"add_generation_prompt", jinja::Value::from(false)},
                                                  {"bos_token", jinja::Value::from("")},
                                                  {"eos_token", jinja::Value::from("")}}).str(),
                    "the document's tokens do not decode to the rendering");
          }};
}

}  // namespace llm::fuzz
