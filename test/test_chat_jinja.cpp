// Chat datasets under Jinja chat templates (io/chat_jinja, train/config_chat_template): Axolotl's
// llama3 and chatml templates read through the Jinja path give the built-in templates' tokens and
// masks; Meta's Llama 3.2 template masks as Axolotl masks it; typed markers stay text; tool
// calls and templates that raise. Which template a config resolves: test_config_chat_template.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/bpe_tokenizer.h"
#include "io/chat_template.h"
#include "test/chat_tokenizer.h"
#include "train/config.h"
#include "test/test_files.h"
#include "test/tokenizer_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {

nlohmann::ordered_json read_fixture(const std::string& name) {
  std::ifstream in(std::string(LLM_CHAT_FIXTURE_DIR) + "/" + name);
  REQUIRE_MESSAGE(in.good(), name);
  return nlohmann::ordered_json::parse(in);
}

const TempDir& scratch() {
  static TempDir dir("llm_test_chat_jinja");
  return dir;
}

// The examples of a dataset file holding `rows` under `spec`.
std::vector<Example> examples_of(const std::string& rows, DatasetSpec spec, const Tokenizer& tokenizer,
                                 bool train_on_inputs = false) {
  spec.type = "chat_template";
  spec.train_on_inputs = train_on_inputs;  // as the config copies it
  spec.path = scratch().write("rows.jsonl", rows);
  std::vector<Example> out;
  for (const Document& d : load_documents(spec, tokenizer))
    out.push_back(tokenize_document(d, tokenizer, train_on_inputs, spec.path));
  return out;
}

std::string row_of(const nlohmann::ordered_json& messages) {
  return nlohmann::ordered_json{{"messages", messages}}.dump() + "\n";
}

// Meta's Llama 3.2 Instruct template, as the fixture holds it.
std::string llama3_2_template() {
  const nlohmann::ordered_json fixture = read_fixture("jinja_expected.json");
  for (const auto& c : fixture["cases"])
    if (c["name"].get<std::string>().rfind("llama3_2/", 0) == 0) return c["template"];
  FAIL("no llama3_2 case in jinja_expected.json");
  return "";
}

const std::string kConversation =
    R"({"messages": [{"role": "system", "content": " S "}, {"role": "user", "content": "U1"},)"
    R"( {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"},)"
    R"( {"role": "assistant", "content": "A2"}]})" "\n";

}  // namespace

// The tokens and trained tokens of `rows` under `spec`, or the error it gives.
std::string outcome(const std::string& rows, const DatasetSpec& spec, const Tokenizer& tokenizer, bool train_on_inputs) {
  std::string result = "(error)";
  const std::string error = error_of([&] {
    const Example ex = examples_of(rows, spec, tokenizer, train_on_inputs).at(0);
    result = tokenizer.decode(ex.tokens) + " trains " + trained(ex);
  });
  return error.empty() ? result : error;
}

TEST_CASE("Axolotl's llama3 and chatml templates through the Jinja path: the built-in tokens and masks") {
  // Under a base tokenizer EOS ends no turn of either template; under an Instruct one (EOS is
  // <|eot_id|>) it is llama3's marker, which then trains under train_on_eot and train_on_eos both.
  const FakeTokenizer instruct(261);
  int conflicts = 0;
  for (const char* name : {"llama3", "chatml"}) {
    const nlohmann::ordered_json fixture = read_fixture(std::string(name) + "_expected.json");
    const std::string marker = name == std::string("llama3") ? "<|eot_id|>" : "<|im_end|>";
    for (const FakeTokenizer* tokenizer : {&kFake, &instruct})
      for (const char* eos : {"turn", "last", "all", "none"})
        for (const char* eot : {"", "turn", "last", "all", "none"})
          for (const bool train_on_inputs : {false, true})
            for (const auto& c : fixture["cases"]) {
              bool has_empty_turn = false;  // Axolotl finds no turn there, so no end of turn either
              for (const auto& m : c["messages"])
                has_empty_turn |= m["content"].get<std::string>().find_first_not_of(" \t\r\n\u00a0") == std::string::npos;
              if (has_empty_turn || std::string(c["name"]) == "whitespace_to_trim") continue;
              CAPTURE(name);
              CAPTURE(tokenizer->name());
              CAPTURE(eos);
              CAPTURE(eot);
              CAPTURE(train_on_inputs);
              CAPTURE(c["name"].get<std::string>());
              DatasetSpec builtin;
              builtin.chat_template = name;
              builtin.train_on_eos = eos;
              builtin.train_on_eot = eot;
              DatasetSpec jinja = builtin;
              jinja.chat_template = "jinja";
              jinja.chat_template_source = fixture["template"];
              const std::string rows = row_of(c["messages"]);
              // No eot_tokens, the marker alone, or the marker and EOS (refused when they disagree).
              for (const std::vector<std::string>& eot_tokens :
                   std::vector<std::vector<std::string>>{{}, {marker}, {marker, "<|end_of_text|>"}}) {
                CAPTURE(eot_tokens.size());
                builtin.eot_tokens = jinja.eot_tokens = eot_tokens;
                const std::string a = outcome(rows, builtin, *tokenizer, train_on_inputs);
                CHECK(a == outcome(rows, jinja, *tokenizer, train_on_inputs));
                conflicts += a.find("disagree on EOS") != std::string::npos;
              }
            }
  }
  CHECK(conflicts > 0);
}

TEST_CASE("the built-in templates' Jinja sources, which a saved tokenizer carries, are Axolotl's") {
  for (const char* name : {"llama3", "chatml"})
    CHECK(builtin_chat_template_jinja(name) == read_fixture(std::string(name) + "_expected.json")["template"].get<std::string>());
  CHECK(builtin_chat_template_jinja("tokenizer_default_fallback_chatml") == builtin_chat_template_jinja("chatml"));
}

TEST_CASE("Axolotl's llama3 template through the Jinja path with Meta's tokenizer: the built-in tokens" *
          doctest::skip(llama3_path().empty())) {
  const BpeTokenizer llama3(llama3_path());
  const nlohmann::ordered_json fixture = read_fixture("llama3_expected.json");
  DatasetSpec builtin;
  builtin.chat_template = "llama3";
  builtin.eot_tokens = {"<|eot_id|>"};  // Meta's ranks file: EOS is <|end_of_text|>
  DatasetSpec jinja = builtin;
  jinja.chat_template_source = fixture["template"];
  for (const auto& c : fixture["cases"]) {
    CAPTURE(c["name"].get<std::string>());
    const std::string rows = row_of(c["messages"]);
    const Example a = examples_of(rows, builtin, llama3).at(0), b = examples_of(rows, jinja, llama3).at(0);
    CHECK(a.tokens == b.tokens);
    if (c["name"] != "whitespace_to_trim") CHECK(a.labels == b.labels);
  }
}

TEST_CASE("Meta's Llama 3.2 template: its system block, then only the assistant turns and their ends train") {
  DatasetSpec spec;
  spec.chat_template = "jinja";
  spec.chat_template_source = llama3_2_template();
  spec.eot_tokens = {"<|eot_id|>"};
  const Example ex = examples_of(kConversation, spec, kFake).at(0);
  char today[32];
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::strftime(today, sizeof today, "%d %b %Y", &local);
  CHECK(kFake.decode(ex.tokens) ==
        "<bos><h>system</h>\n\nCutting Knowledge Date: December 2023\nToday Date: " + std::string(today) +
            "\n\nS<eot><h>user</h>\n\nU1<eot><h>assistant</h>\n\nA1<eot><h>user</h>\n\nU2<eot>"
            "<h>assistant</h>\n\nA2<eot>");
  CHECK(trained(ex) == "A1<eot>|A2<eot>");
  // train_on_inputs: every message's content (the trimmed system prompt inside the system block
  // too) and its end of turn; never the template's own text.
  CHECK(trained(examples_of(kConversation, spec, kFake, true).at(0)) == "S<eot>|U1<eot>|A1<eot>|U2<eot>|A2<eot>");
  spec.train_on_eos = "last";
  CHECK(trained(examples_of(kConversation, spec, kFake).at(0)) == "A1|A2<eot>");
  // Axolotl's slack: an end of turn counts within 3 tokens after the content, not 4 (so with
  // train_on_eos all only the assistant turns' here, 3 dots on).
  DatasetSpec padded = spec;
  padded.train_on_eos = "all";
  padded.chat_template_source = "{% for m in messages %}{{ m.content }}{{ '...' if m.role == 'assistant' else '....' }}<|eot_id|>{% endfor %}";
  CHECK(trained(examples_of(kConversation, padded, kFake).at(0)) == "A1|<eot>|A2|<eot>");
  // Without eot_tokens the end of turn is EOS, which this template never writes.
  spec.train_on_eos = "turn";
  spec.eot_tokens.clear();
  CHECK(trained(examples_of(kConversation, spec, kFake).at(0)) == "A1|A2");
}

TEST_CASE("the Jinja path: typed markers stay text, tool calls pass through, a raising template names the row") {
  DatasetSpec spec;
  spec.chat_template = "jinja";
  spec.chat_template_source = llama3_2_template();
  spec.eot_tokens = {"<|eot_id|>"};
  const Example typed = examples_of(
      R"({"messages": [{"role": "user", "content": "say <|eot_id|>"}, {"role": "assistant", "content": "<|eot_id|>"}]})" "\n",
      spec, kFake).at(0);
  CHECK(std::count(typed.tokens.begin(), typed.tokens.end(), 261) == 3);  // system, user, assistant
  CHECK(trained(typed) == "<|eot_id|><eot>");

  // A tool call has no content (null is dropped, as Axolotl drops it) and its keys reach the
  // template, which writes the call itself: Axolotl's find_turn, rendering the turn again with
  // dummy content and no tool_calls, finds the call as the turn, which trains with its <eot>.
  // (A string is iterable to jinja2, so this template writes the tool's answer as JSON.)
  const std::string tool_rows =
      R"({"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": null,)"
      R"( "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},)"
      R"( {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}]})" "\n";
  const Example tool = examples_of(tool_rows, spec, kFake).at(0);
  CHECK(kFake.decode(tool.tokens).find("<h>assistant</h>\n\n{\"name\": \"get_weather\", \"parameters\": "
                                       "{\"city\": \"Paris\"}}<eot><h>ipython</h>\n\n\"sunny\"<eot>") != std::string::npos);
  CHECK(trained(tool) == "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<eot>|Sunny.<eot>");

  // The row's tools reach the template as `tools`, as Axolotl passes field_tools; without them,
  // tools is none (defined), as apply_chat_template passes it.
  const std::string with_tools =
      R"({"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "Sunny."}],)"
      R"( "tools": [{"type": "function", "function": {"name": "get_weather"}}]})" "\n";
  const std::string tools_text = kFake.decode(examples_of(with_tools, spec, kFake).at(0).tokens);
  CHECK(tools_text.find("<h>user</h>\n\nGiven the following functions") != std::string::npos);
  CHECK(tools_text.find("\"name\": \"get_weather\"") != std::string::npos);
  CHECK(trained(examples_of(with_tools, spec, kFake).at(0)) == "Sunny.<eot>");
  spec.chat_template_source = "[{{ tools is defined }} {{ tools is none }} {{ documents is none }}]";
  spec.eot_tokens.clear();
  CHECK(kFake.decode(examples_of(R"({"messages": [{"role": "user", "content": "q"}]})" "\n", spec, kFake).at(0).tokens) ==
        "[True True True]");

  spec.chat_template_source = "{% if messages[0].role != 'system' %}{{ raise_exception('a system turn first') }}{% endif %}";
  CHECK(error_of([&] { examples_of(R"({"messages": [{"role": "user", "content": "q"}]})" "\n", spec, kFake); }) ==
        scratch().path.string() + "/rows.jsonl:1: chat_template jinja: chat template line 1: the template raised: a system turn first");
}

TEST_CASE("tokens and labels equal Axolotl's on transformers' tokenizer (tools/make_axolotl_masks.py)") {
  const nlohmann::ordered_json fixture = read_fixture("axolotl_masks.json");
  const BpeTokenizer tokenizer(std::string(LLM_CHAT_FIXTURE_DIR) + "/../hf_tokenizer/tokenizer.json");
  REQUIRE(fixture["cases"].size() == 32);
  for (const auto& c : fixture["cases"]) {
    const auto& t = fixture["templates"][c["template"].get<std::string>()];
    DatasetSpec spec;
    spec.chat_template = "jinja";
    spec.chat_template_source = t["source"];
    spec.eot_tokens = t["eot_tokens"].get<std::vector<std::string>>();
    spec.roles_to_train = c["roles_to_train"].get<std::vector<std::string>>();
    spec.train_on_eos = c["train_on_eos"];
    CAPTURE(c.dump());
    const Example ex = examples_of(row_of(fixture["messages"]), spec, tokenizer, c["train_on_inputs"]).at(0);
    CHECK(ex.tokens == c["input_ids"].get<std::vector<int32_t>>());
    CHECK(ex.labels == c["labels"].get<std::vector<int32_t>>());
  }
}

namespace {

// Axolotl's llama3 chat template, built in or as the Jinja fixture's template; <|eot_id|> ends turns.
DatasetSpec llama3_spec(bool jinja, const nlohmann::ordered_json& fixture) {
  DatasetSpec spec;
  spec.chat_template = jinja ? "jinja" : "llama3";
  if (jinja) spec.chat_template_source = fixture["template"];
  spec.eot_tokens = {"<|eot_id|>"};
  return spec;
}

}  // namespace

TEST_CASE("message_field_training and drop_system_message, under the built-in and the Jinja llama3") {
  const nlohmann::ordered_json fixture = read_fixture("llama3_expected.json");
  const std::string rows =
      R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1", "train": true},)"
      R"( {"role": "assistant", "content": "A1", "train": false}, {"role": "user", "content": "U2", "train": null},)"
      R"( {"role": "assistant", "content": "A2"}]})" "\n";
  for (const bool jinja : {false, true}) {
    CAPTURE(jinja);
    DatasetSpec spec = llama3_spec(jinja, fixture);
    spec.message_field_training = "train";
    // A message's own flag wins over its role (and over train_on_inputs); null leaves the role's.
    CHECK(trained(examples_of(rows, spec, kFake).at(0)) == "U1<eot>|A2<eot>");
    CHECK(trained(examples_of(rows, spec, kFake, true).at(0)) == "S<eot>|U1<eot>|U2<eot>|A2<eot>");
    spec.drop_system_message = true;
    const Example dropped = examples_of(rows, spec, kFake).at(0);
    CHECK(kFake.decode(dropped.tokens).rfind("<bos><h>user</h>\n\nU1<eot>", 0) == 0);
    CHECK(trained(dropped) == "U1<eot>|A2<eot>");
    CHECK(error_of([&] { examples_of(R"({"messages": [{"role": "user", "content": "q", "train": "yes"}]})" "\n", spec, kFake); }) ==
          scratch().path.string() + "/rows.jsonl:1: messages[0] has a non-boolean \"train\"; expected true or false "
          "(datasets: message_field_training)");
  }
}

TEST_CASE("train_detail_tokens: Axolotl's spans widened to token boundaries; a token trains whole inside a trained span") {
  // kFake: one token per byte, so token i is character i (ASCII).
  const std::string content = "Hello, world";
  const auto trained_text = [&](const std::vector<TrainDetail>& details) {
    const std::vector<bool> t = train_detail_tokens(content, details, kFake);
    REQUIRE(t.size() == content.size());
    std::string out;
    for (size_t i = 0; i < t.size(); i++) out += t[i] ? content[i] : '.';
    return out;
  };
  CHECK(trained_text({{0, 4, true}}) == "Hello.......");
  CHECK(trained_text({{7, 11, true}, {0, 4, false}}) == ".......world");
  CHECK(trained_text({{0, 11, true}, {3, 5, false}}) == "Hello, world");  // any trained span holding it
  CHECK(trained_text({{20, 30, true}}) == "............");  // past the content: no token, skipped
  CHECK(trained_text({{2, 2, true}}) == "..l.........");
  CHECK(trained_text({{-5, 1, true}}) == "He..........");
  CHECK(trained_text({}) == "............");
  // A token holding several characters trains only when a span holds all of them; the span's
  // edges move to the tokens they cut. Two-byte characters: "é" is one character, two tokens here.
  const std::vector<bool> accent = train_detail_tokens("aéb", {{1, 1, true}}, kFake);
  CHECK(accent == std::vector<bool>{false, true, true, false});
  // The list's shape is checked, naming the message.
  CHECK(error_of([] { read_train_detail(nlohmann::ordered_json::parse(R"([{"begin_offset": 0, "train": true}])"), "f:1: m"); }) ==
        "f:1: m has an entry without an integer \"end_offset\"; expected a list of {begin_offset, end_offset, train} "
        "(datasets: message_field_training_detail)");
}

TEST_CASE("message_field_training_detail equals Axolotl's on transformers' tokenizer and offsets") {
  const nlohmann::ordered_json fixture = read_fixture("axolotl_masks.json");
  const BpeTokenizer tokenizer(std::string(LLM_CHAT_FIXTURE_DIR) + "/../hf_tokenizer/tokenizer.json");
  REQUIRE(fixture["detail_cases"].size() == 2);
  for (const auto& c : fixture["detail_cases"]) {
    const auto& t = fixture["templates"][c["template"].get<std::string>()];
    CAPTURE(c["template"]);
    DatasetSpec spec;
    spec.chat_template = "jinja";
    spec.chat_template_source = t["source"];
    spec.eot_tokens = t["eot_tokens"].get<std::vector<std::string>>();
    spec.message_field_training_detail = "train_detail";
    const Example ex = examples_of(row_of(fixture["detail_messages"]), spec, tokenizer).at(0);
    CHECK(ex.tokens == c["input_ids"].get<std::vector<int32_t>>());
    CHECK(ex.labels == c["labels"].get<std::vector<int32_t>>());
  }
}

TEST_CASE("message_field_training_detail: only the spans train, under the built-in and the Jinja llama3") {
  const nlohmann::ordered_json fixture = read_fixture("llama3_expected.json");
  const std::string rows =
      R"({"messages": [{"role": "user", "content": "Q"},)"
      R"( {"role": "assistant", "content": "good bad good", "spans": [{"begin_offset": 0, "end_offset": 3, "train": true},)"
      R"( {"begin_offset": 9, "end_offset": 12, "train": true}]}, {"role": "user", "content": "U2", "spans": []},)"
      R"( {"role": "assistant", "content": "A2", "spans": [{"begin_offset": 0, "end_offset": 1, "train": false}]}]})" "\n";
  for (const bool jinja : {false, true}) {
    CAPTURE(jinja);
    DatasetSpec spec = llama3_spec(jinja, fixture);
    spec.message_field_training_detail = "spans";
    // The spans' tokens and the end of their turn; an empty list trains nothing (not even with
    // train_on_inputs); a list of untrained spans trains the turn's end only.
    CHECK(trained(examples_of(rows, spec, kFake).at(0)) == "good|good<eot>|<eot>");
    CHECK(trained(examples_of(rows, spec, kFake, true).at(0)) == "Q<eot>|good|good<eot>|<eot>");
    CHECK(error_of([&] { examples_of(R"({"messages": [{"role": "user", "content": "q", "spans": 3}]})" "\n", spec, kFake); })
              .find("messages[0]'s \"spans\" is a number; expected a list of {begin_offset, end_offset, train}") !=
          std::string::npos);
  }
}

TEST_CASE("a row's own system prompt opens a conversation that has none (Axolotl's field_system)") {
  const nlohmann::ordered_json fixture = read_fixture("llama3_expected.json");
  const std::string rows =
      R"({"system": "Be brief.", "messages": [{"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]})" "\n"
      R"({"system": "Ignored.", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]})" "\n"
      R"({"system": null, "messages": [{"role": "user", "content": "U"}]})" "\n";
  for (const bool jinja : {false, true}) {
    CAPTURE(jinja);
    DatasetSpec spec = llama3_spec(jinja, fixture);
    spec.roles_to_train = {"system", "assistant"};
    const std::vector<Example> ex = examples_of(rows, spec, kFake);
    REQUIRE(ex.size() == 3);
    CHECK(kFake.decode(ex[0].tokens).rfind("<bos><h>system</h>\n\nBe brief.<eot><h>user</h>", 0) == 0);
    CHECK(trained(ex[0]) == "Be brief.<eot>|A<eot>");
    CHECK(kFake.decode(ex[1].tokens).find("Ignored") == std::string::npos);  // the row has its own
    CHECK(kFake.decode(ex[2].tokens).rfind("<bos><h>user</h>", 0) == 0);     // null: none
    // drop_system_message drops the added turn.
    spec.drop_system_message = true;
    CHECK(kFake.decode(examples_of(rows, spec, kFake).at(0).tokens).rfind("<bos><h>user</h>", 0) == 0);
    if (!jinja)
      CHECK(error_of([&] { examples_of(R"({"system": 3, "messages": [{"role": "user", "content": "U"}]})" "\n", spec, kFake); })
                .find("field \"system\" is a number; expected a string") == std::string::npos);  // dropped, never read
  }
  {
    DatasetSpec spec;
    spec.chat_template = "llama3";
    CHECK(error_of([&] { examples_of(R"({"system": 3, "messages": [{"role": "user", "content": "U"}]})" "\n", spec, kFake); })
              .find("rows.jsonl:1: field \"system\" is a number; expected a string") != std::string::npos);
  }
}

// A turn find_turn cannot find (empty content: its render differs from the dummy's only by the
// dummy) has no span; Axolotl's search for its end then starts at Python's index -1, the last
// token, and a match there is -1, which it discards: the conversation's last <eot> does not train.
TEST_CASE("the Jinja path: an empty trained turn trains nothing, not the conversation's last end") {
  DatasetSpec spec;
  spec.chat_template = "jinja";
  spec.chat_template_source = "{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>{{ m.content }}<|eot_id|>{% endfor %}";
  spec.eot_tokens = {"<|eot_id|>"};
  const std::string rows =
      R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""},)"
      R"( {"role": "user", "content": "r"}, {"role": "assistant", "content": "hi"}, {"role": "user", "content": "bye"}]})" "\n";
  CHECK(trained(examples_of(rows, spec, kFake).at(0)) == "hi<eot>");
}

TEST_CASE("tool calls' arguments and tools' parameters given as JSON text reach the template parsed, as Axolotl's") {
  DatasetSpec spec;
  spec.chat_template = "jinja";
  spec.chat_template_source =
      "{% for t in tools %}{{ t.function.parameters | tojson }}|{% endfor %}"
      "{% for m in messages %}{{ m.content }}{% for c in m.tool_calls or [] %}{{ c.function.arguments | tojson }}"
      "{% endfor %}<|eot_id|>{% endfor %}";
  spec.eot_tokens = {"<|eot_id|>"};
  const std::string row =
      R"({"tools": [{"type": "function", "function": {"name": "f", "parameters": "{\"type\": \"object\"}"}}],)"
      R"( "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "",)"
      R"( "tool_calls": [{"function": {"name": "f", "arguments": "{\"x\": 1, \"y\": null}"}},)"
      R"( {"function": {"name": "g", "arguments": {"z": null, "w": [null]}}}]}]})" "\n";
  // A null member is dropped at any depth (Axolotl's remove_none_values), before the text parses.
  CHECK(kFake.decode(examples_of(row, spec, kFake).at(0).tokens) ==
        R"({"type": "object"}|q<eot>{"x": 1, "y": null}{"w": [null]}<eot>)");
  // Text that is no JSON: Axolotl's json.loads raises, so the row is refused in one line.
  std::string bad = row;
  bad.replace(bad.find("{\\\"x\\\": 1, \\\"y\\\": null}"), 0, "not json");
  CHECK(error_of([&] { examples_of(bad, spec, kFake); }).find(
            "rows.jsonl:1: messages[1].tool_calls[0].function.arguments is text that is no JSON (Axolotl parses it with "
            "json.loads, which fails): 'not json{") != std::string::npos);
  CHECK(error_of([&] { examples_of(R"({"tools": {"a": 1}, "messages": [{"role": "user", "content": "q"}]})" "\n", spec, kFake); })
            .find("rows.jsonl:1: field \"tools\" is an object; expected a list of tool definitions") != std::string::npos);
}

TEST_CASE("chat_template_kwargs: more template variables, as apply_chat_template's keyword arguments") {
  DatasetSpec spec;
  spec.chat_template = "jinja";
  spec.chat_template_source =
      "{{ bos_token }}{% if date_string is defined %}[{{ date_string }}|{{ n + 1 }}|{{ flag }}]{% endif %}"
      "{% for m in messages %}{{ m.content }}<|eot_id|>{% endfor %}";
  spec.eot_tokens = {"<|eot_id|>"};
  const std::string row = R"({"messages": [{"role": "user", "content": "q"}]})" "\n";
  CHECK(kFake.decode(examples_of(row, spec, kFake).at(0).tokens) == "<bos>q<eot>");
  spec.chat_template_kwargs = R"({"date_string": "26 Jul 2024", "n": 2, "flag": false, "bos_token": "B"})";
  CHECK(kFake.decode(examples_of(row, spec, kFake).at(0).tokens) == "B[26 Jul 2024|3|False]q<eot>");
  // From the config: a YAML map, typed as YAML reads it; the template's own variables refused.
  const std::string data = "datasets:\n  - path: " + scratch().write("kwargs.jsonl", row) + "\n    type: chat_template\n";
  const TrainConfig c = parse_config(data + "chat_template_kwargs: {date_string: 26 Jul 2024, n: 2, flag: false, q: '2'}\n",
                                     (scratch().path / "cfg.yaml").string());
  CHECK(c.data.datasets[0].chat_template_kwargs == R"({"date_string":"26 Jul 2024","n":2,"flag":false,"q":"2"})");
  // Typed as PyYAML types them (Axolotl's yaml.safe_load): off a bool, 010 octal, 1e5 a string.
  const TrainConfig yaml11 = parse_config(data + "chat_template_kwargs: {a: off, b: 010, c: 1e5, d: !!str yes, e: 1:30}\n",
                                          (scratch().path / "cfg.yaml").string());
  CHECK(yaml11.data.datasets[0].chat_template_kwargs == R"({"a":false,"b":8,"c":"1e5","d":"yes","e":90})");
  // `!` resolves as plain (`! 5` is 5, `!` alone null); !!float stays a float; "\_" and "\N" are
  // U+00A0 and U+0085 (yaml-cpp writes them as Latin-1 bytes).
  const TrainConfig tags = parse_config(data + "chat_template_kwargs:\n  a: ! 5\n  b: !\n  c: !!float 010\n  d: \"x\\_y\\N\"\n",
                                        (scratch().path / "cfg.yaml").string());
  CHECK(tags.data.datasets[0].chat_template_kwargs == "{\"a\":5,\"b\":null,\"c\":10.0,\"d\":\"x\u00a0y\u0085\"}");
  // Merged keys stand first, as in PyYAML's dict; the map's own value wins.
  const TrainConfig merged = parse_config(data + "kw: &k {b: 1, a: 2}\nchat_template_kwargs: {z: 0, <<: *k, a: 3}\n",
                                          (scratch().path / "cfg.yaml").string());
  CHECK(merged.data.datasets[0].chat_template_kwargs == R"({"b":1,"a":3,"z":0})");
  CHECK(error_of([&] { parse_config(data + "chat_template_kwargs: {messages: []}\n", (scratch().path / "cfg.yaml").string()); })
            .find("chat_template_kwargs: expected template variables other than messages") != std::string::npos);
}

TEST_CASE("train_on_eot for eot_tokens, train_on_eos for EOS, and their conflict when EOS ends turns") {
  DatasetSpec spec;
  spec.chat_template = "jinja";
  spec.chat_template_source = "{% for m in messages %}{{ m.content }}<|eot_id|>{% endfor %}<|end_of_text|>";
  spec.eot_tokens = {"<|eot_id|>"};
  spec.train_on_eot = "turn";
  spec.train_on_eos = "none";
  CHECK(trained(examples_of(kConversation, spec, kFake).at(0)) == "A1<eot>|A2<eot>");
  spec.train_on_eot = "none";
  spec.train_on_eos = "all";  // EOS follows the last message only, within 3 tokens
  CHECK(trained(examples_of(kConversation, spec, kFake).at(0)) == "A1|A2|<eos>");
  spec.eot_tokens = {"<|eot_id|>", "<|end_of_text|>"};
  spec.train_on_eot = "last";
  CHECK(error_of([&] { examples_of(kConversation, spec, kFake); }) ==
        scratch().path.string() + "/rows.jsonl: train_on_eot last and train_on_eos all disagree on EOS, an "
        "end-of-turn token here; expected one setting for both (Axolotl's rule)");
  // A name the template never writes ends no turn (Axolotl drops it with a warning); one it writes
  // must be a token.
  spec.eot_tokens = {"<|im_end|>", "<|eot_id|>"};
  CHECK(trained(examples_of(kConversation, spec, kFake).at(0)) == "A1|A2<eot><eos>");
  spec.chat_template_source = "{% for m in messages %}{{ m.content }}<|eot|>{% endfor %}";
  spec.eot_tokens = {"<|eot_id|>", "<|eot|>"};
  CHECK(error_of([&] { examples_of(kConversation, spec, kFake); }) ==
        scratch().path.string() + "/rows.jsonl: eot_tokens: expected special tokens of the fake tokenizer, got <|eot|>");
  // EOS alone (Axolotl's default) is never refused: each option trains it as it says.
  spec.chat_template_source = "{% for m in messages %}{{ m.content }}<|end_of_text|>{% endfor %}";
  spec.train_on_eot = "none";
  spec.train_on_eos = "last";
  for (const std::vector<std::string>& eot_tokens : std::vector<std::vector<std::string>>{{}, {"<|end_of_text|>"}}) {
    spec.eot_tokens = eot_tokens;
    CHECK(trained(examples_of(kConversation, spec, kFake).at(0)) == "A1|A2<eos>");
  }
  spec.train_on_eot = "turn";
  CHECK(trained(examples_of(kConversation, spec, kFake).at(0)) == "A1<eos>|A2<eos>");
  // A built-in template's marker ends its turns: train_on_eot decides it.
  DatasetSpec builtin;
  builtin.chat_template = "llama3";
  builtin.train_on_eot = "none";
  CHECK(trained(examples_of(kConversation, builtin, kFake).at(0)) == "A1|A2");
}
