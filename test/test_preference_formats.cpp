// Preference rows their author formats (io/preference_formats.h): passthrough (an entry without a
// type under rl) and user-defined formats (a `type:` map under rl), for DPO and KTO; the config's
// names for them. Axolotl's own texts and TRL's ids for both are in test_axolotl_rows.
#include <doctest/doctest.h>

#include "io/kto.h"
#include "io/preference.h"
#include "io/preference_formats.h"
#include "test/chat_tokenizer.h"
#include "test/config_fixture.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;

namespace {

DatasetSpec spec_of(const std::string& type, const PreferenceFormat& format = {}) {
  DatasetSpec spec;
  spec.type = type;
  spec.preference_format = format;
  return spec;
}

// The row's DPO pair, tokenized with kFake (one token a byte, markers as their short names).
PreferenceExamples pair_of(const DatasetSpec& spec, const std::string& row) {
  TempDir dir("formats");
  std::vector<PreferenceText> pairs;
  load_preference_file(dir.write("rows.jsonl", row + "\n"), spec, kFake, pairs);
  REQUIRE(pairs.size() == 1);
  const std::optional<PreferenceExamples> ex = tokenize_preference(pairs[0], kFake, 256);
  REQUIRE(ex);
  return *ex;
}

std::vector<KtoText> unpaired_of(const DatasetSpec& spec, const std::string& rows) {
  TempDir dir("formats");
  std::vector<KtoText> out;
  load_kto_file(dir.write("rows.jsonl", rows), spec, out);
  return out;
}

std::string pair_error(const DatasetSpec& spec, const std::string& row) {
  return error_of([&] { pair_of(spec, row); }, "(no error)");
}

}  // namespace

TEST_CASE("passthrough: the row's texts as they are, a special token's name in them that token") {
  const DatasetSpec spec = spec_of("passthrough.default");
  const PreferenceExamples ex =
      pair_of(spec, R"({"prompt": "<|im_start|>user\nQ<|im_end|>\n", "chosen": "Yes<|im_end|>", "rejected": "No"})");
  CHECK(kFake.decode(ex.chosen.tokens) == "<bos><im>user\nQ</im>\nYes</im><eos>");
  CHECK(trained(ex.chosen) == "Yes</im><eos>");
  CHECK(trained(ex.rejected) == "No<eos>");
  // Axolotl refuses a row without its three texts; a missing or non-string field is named.
  CHECK(pair_error(spec, R"({"prompt": "Q", "chosen": "", "rejected": "No"})")
            .find("rows.jsonl:1: expected non-empty prompt, chosen and rejected texts") != std::string::npos);
  CHECK(pair_error(spec, R"({"prompt": "Q", "chosen": "Yes"})").find("rows.jsonl:1: missing field \"rejected\"") !=
        std::string::npos);
  // TRL's conversational rows (lists of messages) name the types that read messages.
  CHECK(pair_error(spec, R"({"prompt": [{"role": "user", "content": "Q"}], "chosen": "Yes", "rejected": "No"})")
            .find("rows.jsonl:1: field \"prompt\" is a list (of messages?); expected a string: a dataset entry without "
                  "`type` passes each row's texts through, and messages need a type that reads them (DPO: "
                  "chat_template.default)") != std::string::npos);
  CHECK(pair_error(spec, R"({"prompt": {"text": "Q"}, "chosen": "Yes", "rejected": "No"})")
            .find("field \"prompt\" is an object; expected a string") != std::string::npos);
  const std::vector<KtoText> rows = unpaired_of(spec, R"({"prompt": "Q: ", "completion": "A<|eot_id|>", "label": 1})" "\n"
                                                      R"({"prompt": "Q: ", "completion": "B", "label": false})" "\n");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].completion.str() == "A<|eot_id|>");
  CHECK(rows[0].completion.common_source() == jinja::kTemplateSource);
  CHECK((rows[0].desirable && !rows[1].desirable));
  CHECK(error_of([&] { unpaired_of(spec, R"({"prompt": "Q", "completion": "", "label": true})" "\n"); })
            .find("expected non-empty prompt and completion texts") != std::string::npos);
  CHECK(error_of([&] { unpaired_of(spec, R"({"prompt": "Q", "completion": [{"role": "assistant", "content": "A"}], "label": true})" "\n"); })
            .find("field \"completion\" is a list (of messages?); expected a string: a dataset entry without `type` "
                  "passes each row's texts through, and messages need a type that reads them (KTO: llama3.argilla_chat "
                  "or chatml.argilla_chat, one list in \"completion\")") != std::string::npos);
}

TEST_CASE("user_defined.default: each text its format with the row's field; the fields' values stay text") {
  PreferenceFormat f;
  f.field_prompt = "question";
  f.field_chosen = "good";
  f.prompt_format = "<|im_start|>[{system}] {prompt}<|im_end|>\n";
  f.chosen_format = "{chosen}<|im_end|>";
  f.rejected_format = "";  // Axolotl's `if not rejected_format`: the default
  const DatasetSpec spec = spec_of("user_defined.default", f);
  const PreferenceExamples ex = pair_of(spec, R"({"question": "Q<|im_end|>", "good": "Yes", "rejected": "No", "system": "S"})");
  // The format's marker is a token; the same name inside the row's question is its bytes.
  CHECK(kFake.decode(ex.chosen.tokens) == "<bos><im>[S] Q<|im_end|></im>\nYes</im><eos>");
  CHECK(trained(ex.rejected) == "No<eos>");
  // {system}: "" for a null or absent system field (Axolotl's `sample.get(field_system) or ""`).
  for (const char* row : {R"({"question": "Q", "good": "Y", "rejected": "N", "system": null})",
                          R"({"question": "Q", "good": "Y", "rejected": "N"})"})
    CHECK(kFake.decode(pair_of(spec, row).chosen.tokens) == "<bos><im>[] Q</im>\nY</im><eos>");
  CHECK(pair_error(spec, R"({"question": "Q", "good": "Y", "rejected": "N", "system": 3})")
            .find("field \"system\" is a number; expected a string") != std::string::npos);
  PreferenceFormat no_system = f;  // a format without {system} never reads the field
  no_system.prompt_format = "{prompt}: ";
  CHECK(trained(pair_of(spec_of("user_defined.default", no_system),
                        R"({"question": "Q", "good": "Y", "rejected": "N", "system": 3})").chosen) == "Y</im><eos>");
  // KTO: completion_format and field_label.
  PreferenceFormat k;
  k.field_completion = "answer";
  k.field_label = "ok";
  k.completion_format = "{completion}!";
  const std::vector<KtoText> rows =
      unpaired_of(spec_of("user_defined.default", k), R"({"prompt": "Q", "answer": "A", "ok": true})" "\n");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].prompt.str() == "Q");
  CHECK(rows[0].completion.str() == "A!");
  CHECK(rows[0].desirable);
  CHECK(error_of([&] { unpaired_of(spec_of("user_defined.default", k), R"({"prompt": "Q", "answer": "A", "ok": "yes"})" "\n"); })
            .find("field \"ok\" is a string; expected true or false (or 1 or 0)") != std::string::npos);
}

TEST_CASE("the config: no type under rl is passthrough, a type map user_defined.default, short names .default") {
  using config_test::error_of;
  using config_test::scratch;
  const std::string entry = "datasets:\n  - path: " + scratch().data + "\n";
  for (const char* rl : {"rl: dpo\n", "rl: orpo\n", "rl: kto\nmicro_batch_size: 2\n"})
    CHECK(parse_config(entry + rl, "cfg.yaml").data.datasets.at(0).type == "passthrough.default");
  CHECK(parse_config(entry, "cfg.yaml").data.datasets.at(0).type == "completion");
  CHECK(parse_config(entry + "    type: llama3\nrl: dpo\n", "cfg.yaml").data.datasets.at(0).type == "llama3.default");
  CHECK(parse_config(entry + "    type: chat_template\nrl: dpo\n", "cfg.yaml").data.datasets.at(0).type ==
        "chat_template.default");
  CHECK(parse_config(entry + "    type: chat_template\n", "cfg.yaml").data.datasets.at(0).type == "chat_template");
  const TrainConfig kto = parse_config(entry + "    type: {field_completion: answer, completion_format: '{completion}!'}\n"
                                       "rl: kto\nmicro_batch_size: 2\n", "cfg.yaml");
  CHECK(kto.data.datasets.at(0).type == "user_defined.default");
  CHECK(kto.data.datasets.at(0).preference_format.completion_format == "{completion}!");
  // field_system alone is either kind's: rl decides.
  CHECK(parse_config(entry + "    type: {field_system: sys}\nrl: dpo\n", "cfg.yaml").data.datasets.at(0).type ==
        "user_defined.default");
  CHECK(parse_config(entry + "    type: {field_system: sys}\n", "cfg.yaml").data.datasets.at(0).type == "user_defined");
  // Refused: a map of both kinds, an instruction format under rl, rl's format without rl, a format
  // naming a field it does not have.
  CHECK(error_of(entry + "    type: {field_prompt: q, field_instruction: i}\nrl: dpo\n")
            .find("datasets[0].type: expected the keys of one user-defined format") != std::string::npos);
  CHECK(error_of(entry + "    type: {field_instruction: i}\nrl: dpo\n").find("datasets: expected rl's user-defined keys") !=
        std::string::npos);
  CHECK(error_of(entry + "    type: {field_prompt: q}\n")
            .find("datasets: expected rl (dpo, ipo, kto, orpo or simpo) with the preference dataset type "
                  "user_defined.default") != std::string::npos);
  CHECK(error_of(entry + "    type: {chosen_format: '{prompt}'}\nrl: dpo\n")
            .find("datasets[0].type.chosen_format: expected a Python format string of chosen, got the field {prompt}") !=
        std::string::npos);
}
