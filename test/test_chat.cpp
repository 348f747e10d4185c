// Chat templates and the rows that carry their own format (io/chat_template, io/raw_rows): the
// rendering byte for byte against jinja2's (tools/make_chat_fixtures.py), Meta's tokenizer on it
// (skipped when absent), which tokens train under roles_to_train, train_on_eos and
// train_on_inputs, input_output and pretokenized rows, and every bad row's one-line message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/ops.h"  // kIgnoreIndex
#include "io/bpe_tokenizer.h"
#include "io/chat_template.h"
#include "io/examples.h"
#include "test/test_files.h"
#include "test/chat_tokenizer.h"
#include "test/tokenizer_fixture.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

namespace {

std::vector<ChatMessage> conversation() {
  return {{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"},
          {"assistant", "A2"}};
}

Example chat_example(const std::vector<ChatMessage>& messages, DatasetSpec spec,
                     bool train_on_inputs = false) {
  spec.path = "chat.jsonl";
  spec.train_on_inputs = train_on_inputs;  // as the config copies it
  // kFake's EOS is <|end_of_text|>: the templates' markers end turns as eot_tokens here (the rule
  // without them has its own case).
  if (spec.eot_tokens.empty()) spec.eot_tokens = {"<|eot_id|>", "<|im_end|>"};
  return tokenize_document(chat_document(messages, spec, &kFake), kFake, train_on_inputs, spec.path);
}

DatasetSpec with_eos(const std::string& chat_template, const std::string& train_on_eos) {
  DatasetSpec spec;
  spec.type = "chat_template";
  spec.chat_template = chat_template;
  spec.train_on_eos = train_on_eos;
  return spec;
}

// The fixtures tools/make_chat_fixtures.py wrote; absent: the cases that need them skip.
nlohmann::json fixture(const std::string& chat_template) {
  std::ifstream in(std::string(LLM_CHAT_FIXTURE_DIR) + "/" + chat_template + "_expected.json");
  return in ? nlohmann::json::parse(in) : nlohmann::json();
}
const bool kNoFixtures = fixture("llama3").is_null() || fixture("chatml").is_null();

std::vector<ChatMessage> messages_of(const nlohmann::json& c) {
  std::vector<ChatMessage> messages;
  for (const auto& m : c.at("messages"))
    messages.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  return messages;
}

// Without Meta's Llama 3 ranks file its case reports skipped (decided when the suite starts).
const bool kNoLlama3 = llama3_path().empty();

const TempDir& scratch() {
  static TempDir dir("llm_test_chat");
  return dir;
}

// The documents of a dataset file holding `rows`, read as `spec` says.
std::vector<Document> load_rows(const std::string& rows, DatasetSpec spec,
                                const std::string& name = "rows.jsonl") {
  spec.path = scratch().write(name, rows);
  return load_documents(spec, kFake);
}

std::string load_error(const std::string& rows, const std::string& type,
                       const std::string& name = "rows.jsonl") {
  DatasetSpec spec;
  spec.type = type;
  std::string message = error_of([&] { load_rows(rows, spec, name); }, "(no error)");
  CHECK(message.find('\n') == std::string::npos);
  const std::string dir = scratch().path.string() + "/";
  return message.rfind(dir, 0) == 0 ? message.substr(dir.size()) : message;
}

}  // namespace

TEST_CASE("chat templates render as jinja2 renders them, byte for byte" *
          doctest::skip(kNoFixtures)) {
  for (const char* name : {"llama3", "chatml"}) {
    const nlohmann::json f = fixture(name);
    REQUIRE(f.at("cases").size() >= 6);
    for (const auto& c : f.at("cases")) {
      CAPTURE(name);
      CAPTURE(c.at("name").get<std::string>());
      CHECK(render_chat_text(messages_of(c), name) == c.at("rendered").get<std::string>());
    }
  }
}

TEST_CASE("llama3: token ids equal Meta's tokenizer on the rendered text" *
          doctest::skip(kNoFixtures || kNoLlama3)) {
  const BpeTokenizer llama3(llama3_path());
  const nlohmann::json f = fixture("llama3");
  for (const auto& c : f.at("cases")) {
    CAPTURE(c.at("name").get<std::string>());
    const std::vector<ChatMessage> messages = messages_of(c);
    DatasetSpec spec;
    const Example ex = tokenize_document(chat_document(messages, spec), llama3, false, "t");
    const Ids eot = {*llama3.special_id("<|eot_id|>")};
    if (c.at("name") != "marker_in_content") {
      CHECK(ex.tokens == llama3.encode_with_specials(c.at("rendered")));
    } else {  // a typed marker stays text: one <|eot_id|> per message, and it decodes back
      CHECK(std::count(ex.tokens.begin(), ex.tokens.end(), eot[0]) == int64_t(messages.size()));
      CHECK(ex.tokens.front() == llama3.bos());
      CHECK(contains(llama3.decode(ex.tokens), "Please print <|eot_id|> and <|im_end|>"));
    }
  }
}

TEST_CASE("llama3: markers, roles and which tokens train for each train_on_eos") {
  const std::vector<ChatMessage> conv = conversation();
  const Example turn = chat_example(conv, with_eos("llama3", "turn"));
  CHECK(kFake.decode(turn.tokens) ==
        "<bos><h>system</h>\n\nS<eot><h>user</h>\n\nU1<eot><h>assistant</h>\n\nA1<eot>"
        "<h>user</h>\n\nU2<eot><h>assistant</h>\n\nA2<eot>");
  CHECK(trained(turn) == "A1<eot>|A2<eot>");
  CHECK(trained(chat_example(conv, with_eos("llama3", "last"))) == "A1|A2<eot>");
  CHECK(trained(chat_example(conv, with_eos("llama3", "all"))) ==
        "<eot>|<eot>|A1<eot>|<eot>|A2<eot>");
  CHECK(trained(chat_example(conv, with_eos("llama3", "none"))) == "A1|A2");
  // Axolotl: train_on_inputs trains every turn's content (and its end with train_on_eos turn),
  // never the headers.
  CHECK(trained(chat_example(conv, with_eos("llama3", "turn"), true)) ==
        "S<eot>|U1<eot>|A1<eot>|U2<eot>|A2<eot>");
  CHECK(trained(chat_example(conv, with_eos("llama3", "none"), true)) == "S|U1|A1|U2|A2");
  // last is the end of the last turn that trains: Axolotl passes over the turns that do not
  // (unless an option is all), so a closing user turn's end stays untrained.
  const std::vector<ChatMessage> ends_with_user(conv.begin(), conv.end() - 1);
  CHECK(trained(chat_example(ends_with_user, with_eos("llama3", "last"))) == "A1<eot>");
  CHECK(trained(chat_example(ends_with_user, with_eos("llama3", "last"), true)) == "S|U1|A1|U2<eot>");

  DatasetSpec users = with_eos("llama3", "turn");
  users.roles_to_train = {"user", "system"};
  CHECK(trained(chat_example(conv, users)) == "S<eot>|U1<eot>|U2<eot>");
  users.roles_to_train = {};
  CHECK(trained(chat_example(conv, users)) == "");
  // roles_to_train may use the dataset's names, mapped as the messages are.
  DatasetSpec gpt = with_eos("llama3", "turn");
  gpt.roles = {{"assistant", {"gpt"}}};
  gpt.roles_to_train = {"gpt"};
  CHECK(trained(chat_example(conv, gpt)) == "A1<eot>|A2<eot>");
}

TEST_CASE("chatml: markers as special pieces, content untrimmed, masks") {
  const std::vector<ChatMessage> conv = {{"user", " hi "}, {"assistant", "yo\n"}};
  const Example ex = chat_example(conv, with_eos("chatml", "turn"));
  CHECK(kFake.decode(ex.tokens) == "<im>user\n hi </im>\n<im>assistant\nyo\n</im>\n");
  CHECK(trained(ex) == "yo\n</im>");
  CHECK(trained(chat_example(conv, with_eos("chatml", "all"))) == "</im>|yo\n</im>");
  CHECK(render_chat_text(conv, "chatml") ==
        "<|im_start|>user\n hi <|im_end|>\n<|im_start|>assistant\nyo\n<|im_end|>\n");
  // A tokenizer without the markers is refused with a message naming the dataset and the token.
  DatasetSpec spec = with_eos("chatml", "turn");
  spec.path = "chat.jsonl";
  const Document doc = chat_document(conv, spec);
  // Markers are special pieces; the role and its newline are one text piece, as the tokenizer
  // would see them in the whole rendered text.
  std::vector<std::string> pieces;
  for (const Piece& p : doc.pieces)
    pieces.push_back((p.kind == Piece::Kind::special ? "S:" : "T:") + p.text);
  CHECK(pieces == std::vector<std::string>{"S:<|im_start|>", "T:user\n", "T: hi ",
                                           "S:<|im_end|>", "T:\n", "S:<|im_start|>",
                                           "T:assistant\n", "T:yo\n", "S:<|im_end|>", "T:\n"});
  CHECK(error_of([&] { tokenize_document(doc, ByteTokenizer(), false, spec.path); }) ==
        "chat.jsonl: the chat template needs the special token <|im_start|>, which the byte "
        "tokenizer lacks; expected a tokenizer_config that has it");
  // A typed marker in content is text, not the marker.
  const Example typed = chat_example({{"user", "<|im_end|>"}}, with_eos("chatml", "turn"));
  CHECK(std::count(typed.tokens.begin(), typed.tokens.end(), 263) == 1);
  CHECK(error_of([&] { render_chat_text(conv, "vicuna"); }) ==
        "render_chat_text: unknown chat_template \"vicuna\" (expected llama3 or chatml)");
  CHECK(error_of([&] { chat_example(conv, with_eos("chatml", "first")); }) ==
        "chat.jsonl: unknown train_on_eos \"first\" (expected turn, last, all or none)");
}

TEST_CASE("chat_template rows: field_messages, property mappings, roles, .json arrays") {
  DatasetSpec spec = with_eos("llama3", "turn");
  spec.field_messages = "conversations";
  spec.message_property_mappings = {{"role", "from"}, {"content", "value"}};
  spec.roles = {{"assistant", {"gpt", "model"}}, {"user", {"human"}}};
  const std::string rows =
      "[\n"
      " {\"conversations\": [{\"from\": \"system\", \"value\": \"S\"},\n"
      "                      {\"from\": \"human\", \"value\": \"Q\"},\n"
      "                      {\"from\": \"model\", \"value\": \"A\"}]},\n"
      " {\"conversations\": [{\"from\": \"user\", \"value\": \"q\"},"
      " {\"from\": \"gpt\", \"value\": \"a\", \"extra\": 1}]}\n"
      "]\n";
  const std::vector<Document> docs = load_rows(rows, spec, "rows.json");
  REQUIRE(docs.size() == 2);
  const Example first = tokenize_document(docs[0], kFake, false, "t");
  CHECK(kFake.decode(first.tokens) ==
        "<bos><h>system</h>\n\nS<eot><h>user</h>\n\nQ<eot><h>assistant</h>\n\nA<eot>");
  // kFake's EOS, <|end_of_text|>, is not the template's end of turn: as in Axolotl, no turn's end
  // trains (and the start-up log warns) until eot_tokens names it.
  CHECK(trained(first) == "A");
  spec.path = "rows.json";
  CHECK(end_of_turn_warnings(spec, kFake) ==
        std::vector<std::string>{"rows.json: EOS <|end_of_text|> is not in chat_template llama3, so no turn's end "
                                 "trains (Axolotl's rule); set eot_tokens to the template's end of turn"});
  spec.eot_tokens = {"<|eot_id|>"};
  CHECK(end_of_turn_warnings(spec, kFake).empty());
  CHECK(trained(tokenize_document(load_rows(rows, spec, "rows.json")[0], kFake, false, "t")) == "A<eot>");
  CHECK(trained(tokenize_document(load_rows(rows, spec, "rows.json")[1], kFake, false, "t")) == "a<eot>");
  spec.eot_tokens = {"<|im_end|>"};  // one the template never writes: it ends no turn either
  CHECK(end_of_turn_warnings(spec, kFake) ==
        std::vector<std::string>{"rows.json: eot_tokens: <|im_end|> is not in chat_template llama3, so it ends no "
                                 "turn (Axolotl's rule)"});
  CHECK(trained(tokenize_document(load_rows(rows, spec, "rows.json")[0], kFake, false, "t")) == "A");
  spec.eot_tokens.clear();
  // Without `roles`, Axolotl's defaults: human is the user, gpt the assistant; a role they do not
  // map (model) is kept as written, as Axolotl's roles.get(role, role): written, not trained.
  spec.roles.clear();
  const Example kept = tokenize_document(load_rows(rows, spec, "rows.json")[0], kFake, false, "t");
  CHECK(kFake.decode(kept.tokens) == "<bos><h>system</h>\n\nS<eot><h>user</h>\n\nQ<eot><h>model</h>\n\nA<eot>");
  CHECK(trained(kept).empty());
  spec.roles_to_train = {"assistant", "model"};
  CHECK(trained(tokenize_document(load_rows(rows, spec, "rows.json")[0], kFake, false, "t")) == "A");
}

TEST_CASE("chat_template rows: bad rows name file:line and what was expected") {
  CHECK(load_error("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n\n[1]\n",
                   "chat_template") ==
        "rows.jsonl:3: expected a JSON object with a \"messages\" list of messages "
        "(datasets: field_messages), got a JSON array");
  CHECK(load_error("{\"conversations\": []}\n", "chat_template") ==
        "rows.jsonl:1: missing field \"messages\"; expected a JSON object with a \"messages\" "
        "list of messages (datasets: field_messages)");
  CHECK(load_error("{\"messages\": []}\n", "chat_template") ==
        "rows.jsonl:1: field \"messages\" is an empty list; expected a JSON object with a "
        "\"messages\" list of messages (datasets: field_messages)");
  CHECK(load_error("{\"messages\": \"hi\"}\n", "chat_template") ==
        "rows.jsonl:1: field \"messages\" is a string; expected a JSON object with a "
        "\"messages\" list of messages (datasets: field_messages)");
  CHECK(load_error("{\"messages\": [\"hi\"]}\n", "chat_template") ==
        "rows.jsonl:1: messages[0] is a string; expected an object with role and content "
        "strings");
  CHECK(load_error("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, "
                   "{\"content\": \"y\"}]}\n",
                   "chat_template") ==
        "rows.jsonl:1: messages[1] has no \"role\"; expected an object with role and content "
        "strings (datasets: message_property_mappings)");
  CHECK(load_error("{\"messages\": [{\"role\": \"user\", \"content\": null}]}\n",
                   "chat_template") ==
        "rows.jsonl:1: messages[0] has a non-string \"content\"; expected an object with role "
        "and content strings (datasets: message_property_mappings)");
  CHECK(load_error("{\"messages\": [{\"role\": \"assistant\", \"content\": null, \"tool_calls\": []}]}\n",
                   "chat_template") ==
        "rows.jsonl:1: messages[0] is a tool call without string content, which the built-in template llama3 cannot write; "
        "expected a Jinja template that writes tool_calls (chat_template: tokenizer_default, or jinja with "
        "chat_template_jinja)");
  CHECK(load_error("{\"messages\": []}\n", "chat_template", "rows.txt") ==
        "rows.txt: a .txt file holds rows of plain text; a chat_template dataset needs JSON rows (.json, .jsonl, "
        "or ds_type: json)");
}

TEST_CASE("input_output rows: labelled segments train, the others with train_on_inputs") {
  DatasetSpec spec;
  spec.type = "input_output";
  const std::vector<Document> docs = load_rows(
      "{\"segments\": [{\"text\": \"Q: hi\\n\", \"label\": false},"
      " {\"text\": \"A: yo\", \"label\": true}, {\"text\": \"!\", \"label\": false}]}\n"
      "{\"segments\": [{\"text\": \"<|begin_of_text|>Q: <|eot_id|>\", \"label\": false},"
      " {\"text\": \"A<|eot_id|>\", \"label\": true}]}\n",
      spec);
  REQUIRE(docs.size() == 2);
  const Example ex = tokenize_document(docs[0], kFake, false, "t");
  CHECK(kFake.decode(ex.tokens) == "Q: hi\nA: yo!");  // Axolotl adds neither BOS nor EOS
  CHECK(trained(ex) == "A: yo");
  CHECK(trained(tokenize_document(docs[0], kFake, true, "t")) == "Q: hi\nA: yo!");
  // The markers the row's author writes are tokens, as transformers reads them for Axolotl.
  const Example marked = tokenize_document(docs[1], kFake, false, "t");
  CHECK(kFake.decode(marked.tokens) == "<bos>Q: <eot>A<eot>");
  CHECK(marked.tokens.size() == 7);
  CHECK(trained(marked) == "A<eot>");

  const std::string expected =
      "expected a JSON object with a \"segments\" list of {\"text\": string, \"label\": bool}";
  CHECK(load_error("{\"text\": \"x\"}\n", "input_output") ==
        "rows.jsonl:1: missing field \"segments\"; " + expected);
  CHECK(load_error("{\"segments\": []}\n", "input_output") ==
        "rows.jsonl:1: the \"segments\" list is empty; " + expected);
  CHECK(load_error("{\"segments\": [{\"text\": \"x\", \"label\": 1}]}\n", "input_output") ==
        "rows.jsonl:1: segments[0] is {\"text\":\"x\",\"label\":1}; " + expected);
}

TEST_CASE("pretokenized rows: labels, attention_mask, runs of ids") {
  DatasetSpec spec;
  spec.type = "pretokenized";
  const std::vector<Document> docs = load_rows(
      "{\"input_ids\": [1, 2, 3, 4, 5, 6], \"labels\": [-100, 2, 3, -100, 5, -100],"
      " \"attention_mask\": [1, 1, 1, 0, 1, 1]}\n"
      "{\"input_ids\": [7, 8], \"labels\": null}\n",
      spec);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].pieces.size() == 3);  // [1] [2 3 5] [6]: the dropped 4 joins two trained runs
  for (bool train_on_inputs : {false, true}) {  // explicit labels: train_on_inputs changes none
    const Example ex = tokenize_document(docs[0], kFake, train_on_inputs, "t");
    CHECK(ex.tokens == Ids{1, 2, 3, 5, 6});
    CHECK(ex.labels == Ids{kIgnoreIndex, 2, 3, 5, kIgnoreIndex});
  }
  const Example all = tokenize_document(docs[1], kFake, false, "t");
  CHECK(all.tokens == Ids{7, 8});  // no BOS, no EOS: the row is complete
  CHECK(all.labels == Ids{7, 8});
  // An id the tokenizer does not have is refused where it enters, naming the file: the GPU's
  // kernels report one only at their next wait for the device.
  const std::vector<Document> big = load_rows("{\"input_ids\": [1, 264]}\n", spec);
  CHECK_THROWS_WITH(tokenize_document(big[0], kFake, false, "rows.jsonl"),
                    "rows.jsonl: token id 264 is outside the vocabulary of the fake tokenizer (ids 0 "
                    "to 263)");

  CHECK(load_error("{\"labels\": [1]}\n", "pretokenized") ==
        "rows.jsonl:1: missing field \"input_ids\"; expected a JSON object with an "
        "\"input_ids\" list (and optional \"labels\" and \"attention_mask\" lists)");
  CHECK(load_error("{\"input_ids\": [1, 2], \"labels\": [1]}\n", "pretokenized") ==
        "rows.jsonl:1: labels has 1 entries, input_ids 2; expected one per token");
  CHECK(load_error("{\"input_ids\": [1, 2], \"labels\": [1, 3]}\n", "pretokenized") ==
        "rows.jsonl:1: labels[1] is 3, expected -100 or input_ids[1] (2)");
  CHECK(load_error("\n{\"input_ids\": [1, -2]}\n", "pretokenized") ==
        "rows.jsonl:2: input_ids[1] is -2, expected a token id >= 0");
  CHECK(load_error("{\"input_ids\": [1, 2.5]}\n", "pretokenized") ==
        "rows.jsonl:1: input_ids[1] is 2.5, expected a 32-bit integer");
  CHECK(load_error("{\"input_ids\": [1], \"attention_mask\": [2]}\n", "pretokenized") ==
        "rows.jsonl:1: attention_mask[0] is 2, expected 0 or 1");
  CHECK(load_error("{\"input_ids\": [1], \"attention_mask\": [0]}\n", "pretokenized") ==
        "rows.jsonl:1: no token left (every attention_mask is 0, or input_ids is empty); "
        "expected a JSON object with an \"input_ids\" list (and optional \"labels\" and "
        "\"attention_mask\" lists)");
  CHECK(load_error("{\"input_ids\": \"1 2\"}\n", "pretokenized") ==
        "rows.jsonl:1: field \"input_ids\" is a string, expected a list");
}

TEST_CASE("rows with input_ids, attention_mask and labels are pretokenized whatever the type, as Axolotl takes them") {
  const std::string rows =
      "{\"input_ids\": [1, 2, 3], \"attention_mask\": [1, 1, 1], \"labels\": [-100, 2, 3]}\n";
  for (const char* type : {"completion", "alpaca", "user_defined", "chat_template", "input_output"}) {
    CAPTURE(type);
    DatasetSpec spec;
    spec.type = type;
    const std::vector<Document> docs = load_rows(rows, spec);
    REQUIRE(docs.size() == 1);
    const Example ex = tokenize_document(docs[0], kFake, false, "t");
    CHECK(ex.tokens == Ids{1, 2, 3});
    CHECK(ex.labels == Ids{kIgnoreIndex, 2, 3});
  }
  // Without all three columns the type reads them: a completion row needs its text.
  CHECK(load_error("{\"input_ids\": [1, 2], \"labels\": [1, 2]}\n", "completion") ==
        "rows.jsonl:1: missing field \"text\"; expected a JSON object with a \"text\" string");
}

TEST_CASE("an unknown dataset type lists the six") {
  CHECK(load_error("{}\n", "sharegpt") ==
        "rows.jsonl: unknown dataset type \"sharegpt\" (expected completion, alpaca, "
        "a user-defined format, chat_template, input_output or pretokenized)");
}
