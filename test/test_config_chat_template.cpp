// Which chat template a config resolves for a chat_template dataset (train/config_chat_template):
// the tokenizer's own (chat_template.jinja, else tokenizer_config.json's chat_template), the
// built-in llama3 or chatml, chat_template_jinja inline or as a .jinja file beside the config, a
// dataset's own pair over the top-level one; and every refusal in one line.
#include <doctest/doctest.h>

#include <filesystem>

#include "io/chat_template.h"
#include "test/test_files.h"
#include "test/tokenizer_fixture.h"
#include "train/config.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;

TEST_CASE("which template a config resolves, and its one-line refusals") {
  const TempDir dir("llm_test_chat_config");
  const std::string data = (dir.path / "chat.jsonl").string();
  write_file(data, R"({"messages": [{"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}]})" "\n");
  fs::create_directories(dir.path / "tok");
  write_file((dir.path / "tok/tokenizer.model").string(), small_ranks_text());
  const std::string entry = "datasets:\n  - path: " + data + "\n    type: chat_template\n";
  const std::string tokenizer = "tokenizer_config: " + (dir.path / "tok").string() + "\n";
  auto source_of = [&](const std::string& yaml) {
    return parse_config(entry + yaml, (dir.path / "cfg.yaml").string()).data.datasets.at(0).chat_template_source;
  };
  auto error_with = [&](const std::string& yaml) {
    const std::string message =
        error_of([&] { parse_config(entry + yaml, (dir.path / "cfg.yaml").string()); }, "(no error)");
    CHECK(message.find('\n') == std::string::npos);
    return message;
  };
  // A tokenizer without a template: the default falls back to llama3, which the saved tokenizer
  // then carries; tokenizer_default stops.
  CHECK(source_of(tokenizer).empty());
  CHECK(parse_config(entry + tokenizer, (dir.path / "cfg.yaml").string()).data.chat_template_source ==
        builtin_chat_template_jinja("llama3"));
  CHECK(parse_config(entry + tokenizer + "chat_template: chatml\n", (dir.path / "cfg.yaml").string()).data.chat_template_source ==
        builtin_chat_template_jinja("chatml"));
  CHECK(error_with(tokenizer + "chat_template: tokenizer_default\n").find(
            "chat_template tokenizer_default (dataset " + data + "): expected a tokenizer with a chat template") !=
        std::string::npos);
  // tokenizer_config.json's chat_template, then chat_template.jinja over it, as transformers reads them.
  write_file((dir.path / "tok/tokenizer_config.json").string(),
             R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ messages }}"}]})");
  CHECK(source_of(tokenizer) == "{{ messages }}");
  // The tokenizer's own template stays its own in the saved tokenizer; another is saved instead.
  CHECK(parse_config(entry + tokenizer, (dir.path / "cfg.yaml").string()).data.chat_template_source.empty());
  CHECK(source_of(tokenizer + "chat_template: tokenizer_default\n") == "{{ messages }}");
  CHECK(source_of(tokenizer + "chat_template: chatml\n").empty());
  write_file((dir.path / "tok/chat_template.jinja").string(), "{% for m in messages %}{{ m.content }}{% endfor %}");
  CHECK(source_of(tokenizer) == "{% for m in messages %}{{ m.content }}{% endfor %}");
  write_file((dir.path / "tok/chat_template.jinja").string(), "{% for m in messages %}\n{{ m.content }");
  CHECK(error_with(tokenizer) == (dir.path / "tok/chat_template.jinja").string() + ": chat template line 2: unclosed tag '{{'");
  write_file((dir.path / "tok/chat_template.jinja").string(), "\n");
  CHECK(error_with(tokenizer) == (dir.path / "tok/chat_template.jinja").string() +
                                     ": expected a Jinja chat template, got an empty file");
  fs::remove(dir.path / "tok/chat_template.jinja");

  // jinja: chat_template_jinja inline, or a file beside the config; a dataset's own pair wins.
  CHECK(source_of("chat_template: jinja\nchat_template_jinja: '{{ bos_token }}'\n") == "{{ bos_token }}");
  write_file((dir.path / "my.jinja").string(), "{{ eos_token }}");
  CHECK(source_of("chat_template: jinja\nchat_template_jinja: my.jinja\n") == "{{ eos_token }}");
  CHECK(source_of("    chat_template: jinja\n    chat_template_jinja: my.jinja\nchat_template: chatml\n") == "{{ eos_token }}");
  CHECK(error_with("chat_template: jinja\n").find("chat_template jinja (dataset " + data +
                                                   "): expected chat_template_jinja beside it") != std::string::npos);
  CHECK(error_with("chat_template: jinja\nchat_template_jinja: missing.jinja\n") ==
        dir.path.string() + "/cfg.yaml:5: chat_template_jinja: expected a Jinja template, or the path of a .jinja file "
        "that exists, got 'missing.jinja'");
  write_file((dir.path / "empty.jinja").string(), "");
  CHECK(error_with("chat_template: jinja\nchat_template_jinja: empty.jinja\n") ==
        dir.path.string() + "/cfg.yaml:5: chat_template_jinja: expected a .jinja file holding a template, got 'empty.jinja', "
        "an empty file");
  CHECK(error_with("chat_template_jinja: '{% for x in y %}'\n") ==
        dir.path.string() + "/cfg.yaml:4: chat_template_jinja: chat template line 1: 'for' is never closed (expected 'endfor')");
  CHECK(error_with("chat_template: vicuna\n").find("chat_template: expected one of llama3, chatml, jinja, tokenizer_default") !=
        std::string::npos);
}
