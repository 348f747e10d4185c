// Preference datasets (io/preference.h): Axolotl's DPO strategies' prompt / chosen / rejected
// texts, chat_template.default under a Jinja template, and TRL's tokenisation of a pair (BOS,
// EOS, the prompt's mask, keep_start truncation, pairs dropped whose prompt fills the length);
// KTO's (io/kto.h): its strategies, Axolotl's length rule, TRL's KL sequences; ORPO's (io/orpo.h):
// chat_template.argilla, TRL's ORPO tokenisation and its keep_end cut.
#include <doctest/doctest.h>

#include "engine/user_error.h"
#include "io/kto.h"
#include "io/orpo.h"
#include "io/preference.h"
#include "test/chat_tokenizer.h"
#include "test/config_fixture.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;

namespace {

// The three texts of the single row `row` (a JSON object) under `type`.
std::vector<std::string> texts(const std::string& type, const std::string& row, DatasetSpec spec = {}) {
  TempDir dir("preference");
  spec.type = type;
  if (spec.chat_template.empty() || spec.chat_template == "tokenizer_default_fallback_llama3") spec.chat_template = "llama3";
  std::vector<PreferenceText> out;
  load_preference_file(dir.write("rows.jsonl", row + "\n"), spec, kFake, out);
  REQUIRE(out.size() == 1);
  return {out[0].prompt.str(), out[0].chosen.str(), out[0].rejected.str()};
}

std::string load_error(const std::string& type, const std::string& row) {
  return error_of([&] { texts(type, row); }, "(no error)");
}

const std::string kLlama3User = "<|start_header_id|>user<|end_header_id|>\n\n";
const std::string kLlama3Assistant = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";

}  // namespace

TEST_CASE("llama3.* and chatml.* strategies: Axolotl's prompt, chosen and rejected texts") {
  CHECK(texts("llama3.intel", R"({"system": "Be brief.", "question": "Hi?", "chosen": "Hello", "rejected": "Go"})") ==
        std::vector<std::string>{"<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" + kLlama3User +
                                     "Hi?" + kLlama3Assistant,
                                 "Hello<|eot_id|>", "Go<|eot_id|>"});
  // An empty system is no system turn; default reads the first of prompt / input / question /
  // instruction, and chosen_response / rejected_response when chosen / rejected are absent.
  CHECK(texts("llama3.default", R"({"system": "", "instruction": "Sum", "chosen_response": "2", "rejected_response": "3"})") ==
        std::vector<std::string>{kLlama3User + "Sum" + kLlama3Assistant, "2<|eot_id|>", "3<|eot_id|>"});
  CHECK(texts("chatml.icr", R"({"input": "Q", "chosen": "A", "rejected": "B"})") ==
        std::vector<std::string>{"<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n", "A<|im_end|>", "B<|im_end|>"});
  const std::string conversation =
      R"({"prompt": "Q", "chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],)"
      R"( "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "B"}]})";
  CHECK(texts("chatml.ultra", conversation)[1] == "A<|im_end|>");
  CHECK(texts("llama3.argilla_chat", conversation) ==
        std::vector<std::string>{kLlama3User + "Q" + kLlama3Assistant, "A<|eot_id|>", "B<|eot_id|>"});
  CHECK(load_error("llama3.prompt_pairs", R"({"prompt": "Q", "chosen": "A"})").find("rows.jsonl:1: missing field \"rejected\"") !=
        std::string::npos);
  CHECK(load_error("chatml.intel", R"({"question": 3, "chosen": "A", "rejected": "B"})").find("\"question\" is a number") !=
        std::string::npos);
  CHECK(!is_preference_type("chat_template"));
  CHECK(is_preference_type("chat_template.default"));
}

TEST_CASE("chat_template.default: the prompt with the generation prompt, each response cut from its rendered turn") {
  // The llama3 template as Axolotl ships it writes BOS itself and trims contents.
  const std::string row = R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}],)"
                          R"( "chosen": {"role": "assistant", "content": " Hello "}, "rejected": "Bye"})";
  CHECK(texts("chat_template.default", row) ==
        std::vector<std::string>{"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>" + kLlama3User +
                                     "Hi" + kLlama3Assistant,
                                 "Hello<|eot_id|>", "Bye<|eot_id|>"});
  // field_messages as one string is a user turn; a list response's last message is the response;
  // chatml keeps contents as given.
  DatasetSpec spec;
  spec.chat_template = "chatml";
  spec.field_messages = "conversation";
  spec.field_chosen = "good";
  const std::string chatml_row = R"({"conversation": "Q", "good": [{"role": "user", "content": "Q"},)"
                                 R"( {"role": "assistant", "content": "A "}], "rejected": "B"})";
  CHECK(texts("chat_template.default", chatml_row, spec) ==
        std::vector<std::string>{"<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n", "A <|im_end|>", "B<|im_end|>"});
  // argilla_chat: the conversation is the chosen list but its last message.
  CHECK(texts("chat_template.argilla_chat", R"({"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],)"
                                            R"( "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "B"}]})")[0] ==
        "<|begin_of_text|>" + kLlama3User + "Q" + kLlama3Assistant);
}

TEST_CASE("tokenize_preference: TRL's BOS, EOS, prompt mask and keep_start truncation") {
  const DatasetSpec spec = [] {
    DatasetSpec s;
    s.type = "chatml.prompt_pairs";
    return s;
  }();
  TempDir dir("preference");
  std::vector<PreferenceText> pairs;
  load_preference_file(dir.write("rows.jsonl", R"({"prompt": "Q", "chosen": "Yes", "rejected": "No"})" "\n"), spec, kFake, pairs);
  const std::optional<PreferenceExamples> ex = tokenize_preference(pairs[0], kFake, 64);
  REQUIRE(ex);
  // BOS, the prompt (markers as special tokens), the response and its marker, then EOS (TRL adds it).
  CHECK(kFake.decode(ex->chosen.tokens) == "<bos><im>user\nQ</im>\n<im>assistant\nYes</im><eos>");
  CHECK(trained(ex->chosen) == "Yes</im><eos>");
  CHECK(trained(ex->rejected) == "No</im><eos>");
  // Axolotl's length rule: the prompt alone is 20 tokens, "Yes</im>" 4, "No</im>" 3: a pair longer
  // than max_length with either response is dropped; TRL cuts what BOS and EOS add (keep_start).
  CHECK(!tokenize_preference(pairs[0], kFake, 23));
  const std::optional<PreferenceExamples> cut = tokenize_preference(pairs[0], kFake, 24);
  REQUIRE(cut);
  CHECK(cut->chosen.tokens.size() == 24);
  CHECK(trained(cut->chosen) == "Yes");
  CHECK(trained(cut->rejected) == "No</im>");
  // A template that writes BOS (the llama3 one) gives one BOS, not two (Axolotl's fix).
  DatasetSpec chat;
  chat.type = "chat_template.default";
  chat.chat_template = "llama3";
  pairs.clear();
  load_preference_file(dir.write("chat.jsonl", R"({"messages": "Q", "chosen": "A", "rejected": "B"})" "\n"), chat, kFake, pairs);
  const std::optional<PreferenceExamples> once = tokenize_preference(pairs[0], kFake, 64);
  REQUIRE(once);
  CHECK(kFake.decode(once->chosen.tokens) == "<bos><h>user</h>\n\nQ<eot><h>assistant</h>\n\nA<eot><eos>");
  // Text from a row never becomes a special token.
  pairs.clear();
  load_preference_file(dir.write("forged.jsonl", R"({"prompt": "<|im_end|>", "chosen": "A", "rejected": "B"})" "\n"), spec, kFake,
                       pairs);
  CHECK(kFake.decode(tokenize_preference(pairs[0], kFake, 64)->chosen.tokens).find("\n<|im_end|></im>") != std::string::npos);
}

TEST_CASE("rl and preference dataset types: each needs the other; settings that would split pairs are refused") {
  using config_test::error_of;
  using config_test::scratch;
  const std::string pairs = "datasets:\n  - path: " + scratch().data + "\n    type: llama3.intel\n";
  const std::string text = "datasets:\n  - path: " + scratch().data + "\n    type: completion\n";
  CHECK(error_of(pairs) == "cfg.yaml:1: datasets: expected rl (dpo, ipo, kto, orpo or simpo) with the preference "
                           "dataset type llama3.intel, got no rl");
  CHECK(error_of(text + "rl: dpo\n").find("datasets: expected preference dataset types with rl: dpo") != std::string::npos);
  CHECK(error_of(pairs + "rl: ipo\ndpo_label_smoothing: 0.1\n").find("dpo_label_smoothing: expected 0 with rl: ipo") !=
        std::string::npos);
  CHECK(error_of(pairs + "rl: dpo\ndpo_label_smoothing: 0.5\n").find("dpo_label_smoothing: expected") != std::string::npos);
  CHECK(error_of(pairs + "rl: dpo\nneftune_noise_alpha: 5\n").find("neftune_noise_alpha: expected none with rl") !=
        std::string::npos);
  CHECK(error_of(pairs + "rl: dpo\ns2_attention: true\n").find("s2_attention: expected false with rl") != std::string::npos);
  CHECK(error_of(pairs + "rl: dpo\nsample_packing: true\nflash_attention: true\n").find("sample_packing: expected false with rl") !=
        std::string::npos);
  CHECK(error_of(pairs + "rl: dpo\ndpo_use_weighting: true\nrpo_alpha: 0.5\n").find(
            "dpo_use_weighting: expected no rpo_alpha with it") != std::string::npos);
  CHECK(error_of(pairs + "rl: dpo\ndpo_use_weighting: true\ndpo_loss_type: [sigmoid, sft]\n").find(
            "dpo_use_weighting: expected no sft dpo_loss_type with it") != std::string::npos);
  CHECK(error_of(pairs + "rl: simpo\ndpo_use_weighting: true\n").find("dpo_use_weighting: expected rl: dpo, ipo with it") !=
        std::string::npos);
  CHECK(error_of(pairs + "rl: grpo\n").find("rl: not supported, rl: grpo is not built") != std::string::npos);
  CHECK(error_of(pairs + "rl: simpo\nrpo_alpha: 1\n").find("rpo_alpha: expected rl: dpo, ipo with it, got rl: simpo") !=
        std::string::npos);
  CHECK(error_of(pairs + "rl: dpo\nsimpo_gamma: 1\n").find("simpo_gamma: expected rl: simpo with it") != std::string::npos);
  // TRL's loss_type list: sigmoid, ipo and sft are built; the weights one per type.
  CHECK(error_of(pairs + "rl: dpo\ndpo_loss_type: [sigmoid, hinge]\n").find("dpo_loss_type: expected a list of sigmoid, ipo, sft, got 'hinge'") !=
        std::string::npos);
  CHECK(error_of(pairs + "rl: dpo\ndpo_loss_type: [sigmoid, sft]\ndpo_loss_weights: [1]\n")
            .find("dpo_loss_weights: expected one weight per dpo_loss_type (2), got 1") != std::string::npos);
  CHECK(error_of(pairs + "rl: ipo\ndpo_loss_type: [ipo]\n").find("dpo_loss_type: expected rl: dpo with it, got rl: ipo") !=
        std::string::npos);
  CHECK(error_of(pairs + "rl: dpo\ndpo_loss_type: [ipo]\ndpo_label_smoothing: 0.1\n")
            .find("dpo_label_smoothing: expected 0 with rl: ipo or an ipo dpo_loss_type") != std::string::npos);
  CHECK(parse_config(pairs + "rl: dpo\ndpo_loss_type: sft\n", "cfg.yaml").dpo_loss_type == std::vector<std::string>{"sft"});
  // Axolotl's trl.beta wins over rl_beta; TRL's other arguments (GRPO's) are unused here.
  const TrainConfig trl = parse_config(pairs + "rl: dpo\nrl_beta: 0.3\ntrl:\n  beta: 0.05\n  use_vllm: false\n", "cfg.yaml");
  CHECK(trl.rl_beta == 0.05);
  CHECK(trl.unknown_keys == std::vector<std::string>{"trl.use_vllm"});
  CHECK(error_of(pairs + "rl: dpo\ntrl:\n  beta: -1\n").find("cfg.yaml:6: trl.beta: expected") != std::string::npos);
  const TrainConfig c = parse_config(pairs + "rl: dpo\ndpo_padding_free: true\nxformers_attention: true\n", "cfg.yaml");
  CHECK(c.attention == AttentionKind::mem_efficient);  // it masks documents: kept
  CHECK(c.speed_only_keys == std::vector<std::string>{"dpo_padding_free"});
}

namespace {

// The examples of KTO rows `rows` (JSON lines) under `type`: prompt, completion, prompt, ...
std::vector<Example> kto_examples(const std::string& type, const std::string& rows, int64_t sequence_len = 256,
                                  ExampleStats* stats = nullptr) {
  TempDir dir("kto");
  DatasetSpec spec;
  spec.type = type;
  spec.path = dir.write("rows.jsonl", rows);
  std::vector<Example> out;
  ExampleStats ignored;
  append_kto_examples(spec, kFake, sequence_len, out, stats ? *stats : ignored);
  return out;
}

std::string kto_error(const std::string& type, const std::string& rows) {
  return error_of([&] { kto_examples(type, rows); }, "(no error)");
}

}  // namespace

TEST_CASE("KTO strategies: Axolotl's prompt and completion, the label; TRL's BOS and EOS") {
  std::vector<Example> ex = kto_examples("llama3.ultra", R"({"system": "S", "prompt": "Q", "completion": "A", "label": true})" "\n");
  REQUIRE(ex.size() == 2);
  CHECK(kFake.decode(ex[0].tokens) == "<bos><h>system</h>\n\nS<eot><h>user</h>\n\nQ<eot><h>assistant</h>\n\n");
  CHECK(trained(ex[0]).empty());
  CHECK(trained(ex[1]) == "A<eot><eos>");
  CHECK((ex[0].desirable && ex[1].desirable));
  ex = kto_examples("chatml.argilla", R"({"instruction": "Q", "completion": "A", "label": false})" "\n");
  CHECK(kFake.decode(ex[0].tokens) == "<bos><im>user\nQ</im>\n<im>assistant\n");
  CHECK(!ex[1].desirable);
  CHECK(kFake.decode(kto_examples("llama3.intel", R"({"question": "Q", "completion": "A", "label": true})" "\n")[0].tokens) ==
        "<bos><h>user</h>\n\nQ<eot><h>assistant</h>\n\n");
  // argilla_chat: the prompt is every message but the last, under its role's header (both markups).
  const std::string chat = R"({"completion": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"},)"
                           R"( {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}], "label": true})" "\n";
  ex = kto_examples("llama3.argilla_chat", chat);
  CHECK(kFake.decode(ex[0].tokens) ==
        "<bos><h>user</h>\n\nQ<eot><h>assistant</h>\n\nA<eot><h>user</h>\n\nQ2<eot><h>assistant</h>\n\n");
  CHECK(trained(ex[1]) == "A2<eot><eos>");
  ex = kto_examples("chatml.argilla_chat", chat);
  CHECK(kFake.decode(ex[0].tokens) == "<bos><im>user\nQ</im>\n<im>assistant\nA</im>\n<im>user\nQ2</im>\n<im>assistant\n");
  CHECK(trained(ex[1]) == "A2</im><eos>");
  // The label is a boolean, or 1 / 0; a missing field is named.
  CHECK(kto_error("llama3.ultra", R"({"prompt": "Q", "completion": "A", "label": "yes"})" "\n")
            .find("rows.jsonl:1: field \"label\" is a string; expected true or false (or 1 or 0)") != std::string::npos);
  CHECK(kto_error("llama3.ultra", R"({"prompt": "Q", "completion": "A", "label": 2})" "\n").find("\"label\" is 2;") !=
        std::string::npos);
  CHECK(kto_examples("llama3.ultra", R"({"prompt": "Q", "completion": "A", "label": 1})" "\n")[1].desirable);
  CHECK(!kto_examples("llama3.ultra", R"({"prompt": "Q", "completion": "A", "label": 0})" "\n")[1].desirable);
  CHECK(kto_error("llama3.ultra", R"({"prompt": "Q", "completion": "A"})" "\n").find("missing field \"label\"") !=
        std::string::npos);
  CHECK(kto_error("llama3.default", R"({"prompt": "Q"})" "\n").find("no KTO dataset type") != std::string::npos);
  CHECK(is_kto_type("chatml.ultra"));
  CHECK(!is_kto_type("llama3.default"));
}

TEST_CASE("KTO rows: Axolotl's length rule; TRL's KL sequences rotated within blocks, cut to max_length") {
  // chatml: the prompt "<im>user\nQ</im>\n<im>assistant\n" is 20 tokens alone, "A</im>" 2: 22 fit
  // sequence_len 22, a longer completion does not.
  ExampleStats stats;
  const std::string rows = R"({"prompt": "Q", "completion": "A", "label": true})" "\n"
                           R"({"prompt": "Q", "completion": "AB", "label": false})" "\n"
                           R"({"prompt": "Q", "completion": "ABC", "label": true})" "\n";
  CHECK(kto_examples("chatml.ultra", rows, 22, &stats).size() == 2);
  CHECK(stats.dropped == 2);
  CHECK(stats.documents == 3);
  ExampleSet cached;
  for (const Example& e : kto_examples("chatml.ultra", rows)) cached.add(e);
  // Blocks of 2 in the order 2, 0, 1: row 2 takes row 0's completion and row 0 row 2's; row 1 its own.
  std::vector<int64_t> kl_source(3);
  rotate_completions({2, 0, 1}, 2, kl_source);
  CHECK(kl_source == std::vector<int64_t>{2, 1, 0});
  const ExampleSet seqs = kto_sequences(cached, kl_source, 25);  // BOS and the prompt: 21 tokens
  REQUIRE(seqs.size() == 6);
  const auto example = [&](int64_t e) {
    Example out;
    out.tokens.assign(seqs.tokens.begin() + seqs.offsets[e], seqs.tokens.begin() + seqs.offsets[e + 1]);
    out.labels.assign(seqs.labels.begin() + seqs.offsets[e], seqs.labels.begin() + seqs.offsets[e + 1]);
    return out;
  };
  CHECK(trained(example(0)) == "A</im><eos>");
  CHECK(trained(example(1)) == "ABC</im>");  // row 2's completion, cut at 25 tokens
  CHECK(trained(example(4)) == "ABC</im>");
  CHECK(trained(example(5)) == "A</im><eos>");
  CHECK(seqs.desirable == std::vector<uint8_t>{1, 1, 0, 0, 1, 1});
}

TEST_CASE("rl: kto: KTO dataset types, micro-batches of 2 rows or more, its own keys") {
  using config_test::error_of;
  using config_test::scratch;
  const std::string rows = "datasets:\n  - path: " + scratch().data + "\n    type: llama3.ultra\n";
  CHECK(error_of(rows + "rl: kto\nmicro_batch_size: 1\n").find("micro_batch_size: expected at least 2 with rl: kto") !=
        std::string::npos);
  CHECK(error_of(rows + "rl: kto\nmicro_batch_size: 2\nrpo_alpha: 0.5\n").find("rpo_alpha: expected rl: dpo, ipo with it") !=
        std::string::npos);
  const std::string pairs = "datasets:\n  - path: " + scratch().data + "\n    type: llama3.default\n";
  CHECK(error_of(pairs + "rl: kto\nmicro_batch_size: 2\n").find("datasets: expected KTO dataset types with rl: kto") !=
        std::string::npos);
  CHECK(error_of(pairs + "rl: dpo\nkto_desirable_weight: 0.5\n").find("kto_desirable_weight: expected rl: kto with it") !=
        std::string::npos);
  CHECK(error_of("datasets:\n  - path: " + scratch().data + "\n    type: completion\nkto_undesirable_weight: 2\n")
            .find("kto_undesirable_weight: expected rl: kto with it, got no rl") != std::string::npos);
}

namespace {

// Two turns: a user message and the assistant's answer.
std::string turn(const std::string& user, const std::string& answer) {
  return R"({"role": "user", "content": ")" + user + R"("}, {"role": "assistant", "content": ")" + answer + R"("})";
}

DatasetSpec chatml_spec() {
  DatasetSpec spec;
  spec.chat_template = "chatml";
  return spec;
}

}  // namespace

TEST_CASE("ORPO's chat_template.argilla: the prompt from chosen's turns, each response cut from the whole conversation") {
  const std::string one = R"({"system": "S", "chosen": [)" + turn("Q", "A") + R"(], "rejected": [)" + turn("other", "B") + "]}";
  CHECK(texts("chat_template.argilla", one, chatml_spec()) ==
        std::vector<std::string>{"<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n",
                                 "A<|im_end|>\n", "B<|im_end|>\n"});
  // Two turns: the first's answer is the prompt's; "prompt" stands for every user turn; a
  // message's role is its place, and rejected needs only its last message.
  const std::string two = R"({"prompt": "P", "chosen": [{"role": "human", "content": "Q1"}, {"role": "gpt", "content": "A1"},)"
                          R"( {"role": "human", "content": "Q2"}, {"role": "gpt", "content": "A2"}],)"
                          R"( "rejected": [{"role": "gpt", "content": "B2"}], "system": ""})";
  CHECK(texts("chat_template.argilla", two, chatml_spec()) ==
        std::vector<std::string>{"<|im_start|>user\nP<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                                 "<|im_start|>user\nP<|im_end|>\n<|im_start|>assistant\n",
                                 "A2<|im_end|>\n", "B2<|im_end|>\n"});
  const auto orpo_error = [](const std::string& row) {
    return error_of([&] { texts("chat_template.argilla", row, chatml_spec()); }, "(no error)");
  };
  CHECK(orpo_error(R"({"chosen": [{"role": "user", "content": "Q"}], "rejected": [)" + turn("Q", "B") + "]}")
            .find("rows.jsonl:1: field \"chosen\" is not a list of user and assistant messages in turn") != std::string::npos);
  CHECK(orpo_error(R"({"chosen": [)" + turn("Q", "A") + R"(], "rejected": []})").find("field \"rejected\" is not a list") !=
        std::string::npos);
  CHECK(orpo_error(R"({"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": 3}], "rejected": [)" +
                   turn("Q", "B") + "]}")
            .find("chosen[1] has no \"content\" string") != std::string::npos);
  CHECK(orpo_error(R"({"system": 3, "chosen": [)" + turn("Q", "A") + R"(], "rejected": [)" + turn("Q", "B") + "]}")
            .find("field \"system\" is a number; expected a string") != std::string::npos);
  CHECK(orpo_error(R"({"chosen": [)" + turn("Q", "A") + "]}").find("missing field \"rejected\"") != std::string::npos);
  CHECK(is_orpo_type("chat_template.argilla"));
  CHECK(!is_preference_type("chat_template.argilla"));
}

TEST_CASE("tokenize_row: TRL 1.9's ORPO rule: BOS, EOS, and its cut of the answers near max_length") {
  TempDir dir("orpo");
  DatasetSpec spec = chatml_spec();
  spec.type = "chat_template.argilla";
  const std::string letters = "abcdefghijklmnopqrstuvwxyz0123";  // 30 tokens
  std::vector<PreferenceText> pairs;
  load_preference_file(dir.write("rows.jsonl", R"({"chosen": [)" + turn("Q", "Yes") + R"(], "rejected": [)" +
                                                   turn("Q", "No") + "]}\n" + R"({"chosen": [)" + turn("Q", letters) +
                                                   R"(], "rejected": [)" + turn("Q", "No") + "]}\n"),
                       spec, kFake, pairs);
  // The prompt is 20 tokens, "Yes</im>\n" 5 and "No</im>\n" 4.
  const std::optional<PreferenceExamples> ex = tokenize_row(pairs[0], kFake, 64);
  REQUIRE(ex);
  CHECK(kFake.decode(ex->chosen.tokens) == "<bos><im>user\nQ</im>\n<im>assistant\nYes</im>\n<eos>");
  CHECK(trained(ex->chosen) == "Yes</im>\n<eos>");
  CHECK(trained(ex->rejected) == "No</im>\n<eos>");
  CHECK(!tokenize_row(pairs[0], kFake, 24));  // Axolotl's length rule: 20 + 5 > 24
  // 21 + 6 > 25 once BOS and EOS are added: each answer keeps its first 25 - 6, all of it (TRL
  // 1.9's cut, as Axolotl 0.19 runs it), and then ends where the row does, at 25.
  const std::optional<PreferenceExamples> whole = tokenize_row(pairs[0], kFake, 25);
  REQUIRE(whole);
  CHECK(trained(whole->chosen) == "Yes</im>");
  CHECK(trained(whole->rejected) == "No</im>\n");
  // A long answer: 20 + 32 fits 52, but 21 + 33 does not: each answer keeps its first 52 - 33.
  const std::optional<PreferenceExamples> cut = tokenize_row(pairs[1], kFake, 52);
  REQUIRE(cut);
  CHECK(trained(cut->chosen) == letters.substr(0, 19));
  CHECK(trained(cut->rejected) == "No</im>\n<eos>");
}

TEST_CASE("rl: orpo: its dataset type, orpo_alpha as its beta, its own keys") {
  using config_test::error_of;
  using config_test::scratch;
  const std::string rows = "datasets:\n  - path: " + scratch().data + "\n    type: chat_template.argilla\n";
  CHECK(error_of(rows).find("expected rl (dpo, ipo, kto, orpo or simpo) with the preference dataset type "
                            "chat_template.argilla") != std::string::npos);
  CHECK(error_of(rows + "rl: dpo\n").find("datasets: expected preference dataset types with rl: dpo") != std::string::npos);
  const std::string pairs = "datasets:\n  - path: " + scratch().data + "\n    type: llama3.intel\n";
  CHECK(error_of(pairs + "rl: orpo\n").find("datasets: expected ORPO dataset types with rl: orpo (chat_template.argilla, passthrough.default)") !=
        std::string::npos);
  // Axolotl's order: trl.beta, else rl_beta, else orpo_alpha, else TRL's 0.1.
  CHECK(parse_config(rows + "rl: orpo\n", "cfg.yaml").rl_beta == 0.1);
  CHECK(parse_config(rows + "rl: orpo\norpo_alpha: 0.2\n", "cfg.yaml").rl_beta == 0.2);
  CHECK(parse_config(rows + "rl: orpo\norpo_alpha: 0.2\nrl_beta: 0.3\n", "cfg.yaml").rl_beta == 0.3);
  CHECK(parse_config(rows + "rl: orpo\norpo_alpha: 0.2\ntrl:\n  beta: 0.4\n", "cfg.yaml").rl_beta == 0.4);
  CHECK(error_of(pairs + "rl: dpo\norpo_alpha: 0.1\n").find("orpo_alpha: expected rl: orpo with it, got rl: dpo") !=
        std::string::npos);
  // Axolotl 0.19 reads max_prompt_len into no trainer (TRL 1.9's have no max_prompt_length): unused.
  for (const std::string& config : {rows + "rl: orpo\n", pairs + "rl: dpo\n"})
    CHECK(parse_config(config + "max_prompt_len: 64\n", "cfg.yaml").unknown_keys == std::vector<std::string>{"max_prompt_len"});
}

TEST_CASE("dataset_exact_deduplication with rl: whole pairs (KTO rows with their label) are compared, as Axolotl's rows") {
  // Pairs (examples 2p, 2p + 1): 0 and 2 equal; 1 shares 0's chosen only; KTO rows 3 and 4 equal
  // but for their label.
  ExampleSet data;
  const auto add = [&data](std::vector<int32_t> tokens, bool desirable = false) {
    Example e;
    e.tokens = tokens;
    e.labels = tokens;
    e.desirable = desirable;
    data.add(e);
  };
  add({1, 2}), add({3}), add({1, 2}), add({4}), add({1, 2}), add({3});
  add({5}, true), add({6}, true), add({5}, false), add({6}, false);
  ExampleSplit split{{0, 1, 2, 3}, {4}};
  deduplicate_split(data, split, 2);
  CHECK(split.train == std::vector<int64_t>{0, 1, 3});
  CHECK(split.val == std::vector<int64_t>{4});
  ExampleSplit val_copy{{0}, {2, 1}};
  deduplicate_split(data, val_copy, 2);
  CHECK(val_copy.val == std::vector<int64_t>{1});  // pair 2 equals training pair 0
}
