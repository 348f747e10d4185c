// io/jinja: every case of test/data/chat/jinja_expected.json (tools/make_chat_fixtures.py: feature
// templates, Axolotl's llama3 and chatml and Meta's Llama 3.2 template on conversations)
// rendered byte for byte as transformers renders it, or failing in one line where it fails;
// where the bytes of a rendering came from; and the one-line errors of templates it cannot read.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/user_error.h"
#include "io/jinja.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::jinja;

namespace {

ValueDict variables_of(const nlohmann::ordered_json& j) {
  ValueDict vars;
  for (const auto& [k, v] : j.items()) vars.emplace_back(k, from_json(v));
  return vars;
}

std::string render(const std::string& source, const ValueDict& vars = {}) {
  return Template(source, "t.jinja").render(vars).str();
}

std::string error_of(const std::string& source, const ValueDict& vars = {}) {
  try {
    render(source, vars);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("every fixture case renders as transformers renders it, or fails where it fails") {
  const std::string path = std::string(LLM_CHAT_FIXTURE_DIR) + "/jinja_expected.json";
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), path);
  const nlohmann::ordered_json fixture = nlohmann::ordered_json::parse(in);
  REQUIRE(fixture["cases"].size() >= 40);
  for (const auto& c : fixture["cases"]) {
    const std::string name = c["name"];
    CAPTURE(name);
    const ValueDict vars = variables_of(c["variables"]);
    if (c.contains("error")) {
      const std::string error = error_of(c["template"], vars);
      CHECK(error.rfind("t.jinja: chat template line ", 0) == 0);
      CHECK(error.find('\n') == std::string::npos);
    } else {
      CHECK(render(c["template"], vars) == c["rendered"].get<std::string>());
    }
  }
}

TEST_CASE("a rendering says which bytes are which message's content, through trim and slices") {
  const std::string source =
      "{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}{{ m.content[:2] }}</>{% endfor %}";
  ValueList messages;
  for (int i = 0; i < 2; i++)
    messages.push_back(Value::from(ValueDict{{"role", Value::from("user")},
                                             {"content", Value::from(Text(" hi" + std::to_string(i) + " ", i))}}));
  const Text out = Template(source, "t").render({{"messages", Value::from(messages)}});
  std::string tagged;
  for (const Text::Run& r : out.runs()) tagged += "[" + std::to_string(r.source) + ":" + r.text + "]";
  CHECK(tagged == "[-1:<user>][0:hi0 h][-1:</><user>][1:hi1 h][-1:</>]");
}

TEST_CASE("templates it cannot read fail in one line naming the file and the line") {
  CHECK(error_of("{% if x %}never closed") == "t.jinja: chat template line 1: 'if' is never closed (expected 'endif')");
  CHECK(error_of("a\n{% include 'x.jinja' %}") == "t.jinja: chat template line 2: unsupported tag 'include'");
  CHECK(error_of("{% endfor %}") == "t.jinja: chat template line 1: unexpected 'endfor'");
  CHECK(error_of("{{ x | no_such_filter }}") == "t.jinja: chat template line 1: no filter named 'no_such_filter'");
  CHECK(error_of("{{ 1 +") == "t.jinja: chat template line 1: unclosed tag '{{'");
  CHECK(error_of("{{ 1 + }}") == "t.jinja: chat template line 1: expected an expression, got the end of the tag");
  CHECK(error_of("{{ 'open }}") == "t.jinja: chat template line 1: unclosed tag '{{'");
  CHECK(error_of("\n\n{{ 1 // 0 }}") == "t.jinja: chat template line 3: integer division or modulo by zero");
  CHECK(error_of("{{ 9223372036854775807 + 1 }}") == "t.jinja: chat template line 1: integer overflow");
  CHECK(error_of("{% for x in items recursive %}{% endfor %}") ==
        "t.jinja: chat template line 1: recursive loops are not supported");
  CHECK(error_of("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}").find("nested deeper than 64") != std::string::npos);
  // Nesting the parser, renderer or destructors would recurse through thousands deep: a few KB.
  CHECK(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}") ==
        "t.jinja: chat template line 1: expressions nested deeper than 100");
  CHECK(error_of("{{ " + std::string(5000, '-') + "1 }}") == "t.jinja: chat template line 1: expressions nested deeper than 100");
  std::string chain = "{{ 1";
  for (int i = 0; i < 5000; i++) chain += " ~ 1 | string";
  CHECK(error_of(chain + " }}") == "t.jinja: chat template line 1: an expression deeper than 1000 operations");
  // A call's or filter's arguments deepen it too: two filters, each over a chain of 600.
  std::string nested = "'x'";
  for (int level = 0; level < 2; level++) {
    std::string chain = nested;
    for (int i = 0; i < 600; i++) chain += " ~ 'b'";
    nested = "'a' | replace('q', " + chain + ")";
  }
  CHECK(error_of("{{ " + nested + " }}") == "t.jinja: chat template line 1: an expression deeper than 1000 operations");
  std::string ifs;
  for (int i = 0; i < 5000; i++) ifs += "{% if x %}";
  CHECK(error_of(ifs) == "t.jinja: chat template line 1: blocks nested deeper than 100");
  CHECK(error_of("{{ raise_exception('no system role') }}") ==
        "t.jinja: chat template line 1: the template raised: no system role");
}

// jinja2's lexer (keep_trailing_newline off) ends lines with "\n" whatever ended them and drops
// the line break that ends the source: a .jinja file's last newline, after an expression or text
// (Axolotl's command_a_rag.jinja), renders nothing. Each expectation is what jinja2 3.1.6 rendered.
TEST_CASE("line breaks as jinja2 reads them: \\r\\n and \\r as \\n, the source's last one dropped") {
  CHECK(render("A{{ 1 }}\r\nB\n") == "A1\nB");
  CHECK(render("{{ 1 }}\n\n") == "1\n");
  CHECK(render("x\ry\r") == "x\ny");
  CHECK(render("{{ 'a\r\nb' }}") == "a\nb");
  CHECK(render("T\n{% if true %}\nY\n{% endif %}\n") == "T\nY\n");
}

TEST_CASE("strftime_now writes today's date as transformers' does") {
  char expected[32];
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::strftime(expected, sizeof expected, "%d %b %Y", &local);
  CHECK(render("{{ strftime_now('%d %b %Y') }}") == expected);
}
