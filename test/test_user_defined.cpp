// Axolotl's user-defined instruction format (io/user_defined.h): a dataset `type:` given as a map
// of fields and Python format strings, read as its user_defined strategy reads rows; the formats
// checked at start-up, the prompt and its mask, and a run of llm_train on it.
#include <doctest/doctest.h>

#include "engine/user_error.h"
#include "io/documents.h"
#include "io/examples.h"
#include "io/tokenizer.h"
#include "io/user_defined.h"
#include "test/config_fixture.h"
#include "test/test_files.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {

std::string text_of(const Document& doc, Loss loss) {
  std::string out;
  for (const Piece& p : doc.pieces)
    if (p.loss == loss) out += p.text;
  return out;
}

}  // namespace

TEST_CASE("format_named: Python's str.format with named fields; {{ and }} are braces") {
  CHECK(format_named("[INST] {instruction} {{ok}} [/INST]", {{"instruction", "Hi"}}, "format") == "[INST] Hi {ok} [/INST]");
  CHECK(error_of([] { format_named("{input}", {{"instruction", "Hi"}}, "no_input_format"); }, "(none)") ==
        "no_input_format: the format holds the field {input}, which it does not have");
  CHECK(format_problem("{instruction} }", {"instruction"}) == "a single '}' (write '}}' for a brace)");
  CHECK(format_problem("{instruction", {"instruction"}) == "a '{' without its '}' (write '{{' for a brace)");
  CHECK(!format_problem("{instruction}: {input}", {"instruction", "input"}));
}

TEST_CASE("user-defined rows: Axolotl's fields and defaults, the system prompt, input or no input") {
  TempDir dir;
  const std::string path = dir.write("rows.jsonl", R"({"q": "Add", "ctx": "1 2", "a": "3", "sys": "Be exact."})" "\n"
                                                   R"({"q": "Greet", "a": "hi"})" "\n"
                                                   R"({"q": "Wait", "sys": null})" "\n");
  DatasetSpec spec{path, "user_defined"};
  UserDefinedFormat& f = spec.user_defined;
  f.field_instruction = "q", f.field_input = "ctx", f.field_output = "a", f.field_system = "sys";
  f.system_prompt = "Default.";
  f.format = "[INST] {instruction}\n{input} [/INST]";
  f.no_input_format = "[INST] {instruction} [/INST]";
  f.system_format = "<<SYS>>{system}<</SYS>>";
  const std::vector<Document> docs = load_documents(spec, ByteTokenizer());
  REQUIRE(docs.size() == 3);
  CHECK(text_of(docs[0], Loss::prompt) == "<<SYS>>Be exact.<</SYS>>[INST] Add\n1 2 [/INST]");
  CHECK(text_of(docs[0], Loss::trained) == "3");
  // A row without the system field, in a file whose other rows have it: HF's loader gives it None,
  // no system text (system_prompt stands in only when no row has the field).
  CHECK(text_of(docs[1], Loss::prompt) == "[INST] Greet [/INST]");
  CHECK(text_of(docs[2], Loss::trained).empty());  // no output: nothing trains, not even EOS
  CHECK_FALSE(docs[2].add_eos);
  CHECK(text_of(docs[2], Loss::prompt) == "[INST] Wait [/INST]");  // a null system is none, not system_prompt
  const std::string no_column = dir.write("no_column.jsonl", R"({"q": "Greet", "a": "hi"})" "\n");
  spec.path = no_column;
  CHECK(text_of(load_documents(spec, ByteTokenizer())[0], Loss::prompt) == "<<SYS>>Default.<</SYS>>[INST] Greet [/INST]");
  // Axolotl's defaults: "{instruction} {input} ", "{instruction} ", no system text.
  const std::string plain = dir.write("plain.jsonl", R"({"instruction": "Add", "input": "1 2", "output": "3"})" "\n");
  CHECK(text_of(load_documents({plain, "user_defined"}, ByteTokenizer())[0], Loss::prompt) == "Add 1 2 ");
  const std::string missing = dir.write("missing.jsonl", R"({"input": "x"})" "\n");
  CHECK(error_of([&] { load_documents({missing, "user_defined"}, ByteTokenizer()); }, "(none)")
            .find("missing.jsonl:1: missing field \"instruction\"") != std::string::npos);
}

TEST_CASE("config: type as a map is a user-defined format; unknown keys and bad formats stop in one line") {
  using config_test::error_with;
  using config_test::parse;
  const TrainConfig c = parse("    type:\n      field_instruction: q\n      format: '{instruction} -> '\n");
  CHECK(c.data.datasets[0].type == "user_defined");
  CHECK(c.data.datasets[0].user_defined.field_instruction == "q");
  CHECK(c.data.datasets[0].user_defined.no_input_format == "{instruction} ");
  CHECK(error_with("    type: {field_question: q}\n").find("datasets[0].type.field_question: expected one of field_system, system_prompt") !=
        std::string::npos);
  CHECK(error_with("    type: {no_input_format: '{instruction} {input}'}\n")
            .find("datasets[0].type.no_input_format: expected a Python format string of instruction, got the field "
                  "{input}, which it does not have") != std::string::npos);
}

TEST_CASE("llm_train trains a user-defined format: the prompt masked, the output and EOS trained") {
  Workspace ws("user_defined");
  const std::string rows = (ws.dir / "rows.jsonl").string();
  std::string text;
  for (int i = 0; i < 24; i++)
    text += R"({"instruction": "Add )" + std::to_string(i) + R"( and 1", "output": ")" + std::to_string(i + 1) + "\"}\n";
  write_file(rows, text);
  const std::string config = (ws.dir / "c.yaml").string();
  write_file(config, kSmallModel + "datasets:\n  - path: " + rows +
                         "\n    type:\n      format: '[INST] {instruction} {input} [/INST] '\n"
                         "      no_input_format: '[INST] {instruction} [/INST] '\n"
                         "sequence_len: 64\nmicro_batch_size: 2\nmax_steps: 2\nval_set_size: 0\noutput_dir: " +
                         ws.out() + "\noverwrite_output_dir: true\n");
  const Run r = run_train(config);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("([[trained]]): <bos>[INST] Add ") != std::string::npos);
  CHECK(r.output.find(" [/INST] [[") != std::string::npos);
}
