// Supervised fine-tuning data end to end through the llm_train binary: chat_template rows with
// a tiktoken tokenizer, multipack sample packing with flash attention, and the one-line errors
// of SFT data a tokenizer cannot express. The pieces (templates, masks, packing, the LM shift)
// are unit-tested in test_chat and test_data; these check the program wires them together.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "io/bpe_tokenizer.h"
#include "io/chat_template.h"
#include "test/tokenizer_fixture.h"
#include "test/train_fixture.h"

using namespace llm::testing;

namespace {

// Conversations in ShareGPT's spelling (from/value, human/gpt), as many Axolotl datasets are.
std::string sharegpt_rows(int count) {
  std::string rows;
  for (int i = 0; i < count; i++)
    rows += "{\"conversations\": [{\"from\": \"system\", \"value\": \"Be brief.\"}, "
            "{\"from\": \"human\", \"value\": \"hello " + std::to_string(i) + "\"}, "
            "{\"from\": \"gpt\", \"value\": \"world " + std::string(1 + i % 5, '1') + "\"}]}\n";
  return rows;
}

std::string chat_dataset(const Workspace& ws) {
  const std::string path = (ws.dir / "chat.jsonl").string();
  write_file(path, sharegpt_rows(40));
  return "datasets:\n  - path: " + path + "\n    type: chat_template\n    chat_template: llama3\n"
         "    field_messages: conversations\n"
         "    message_property_mappings: {role: from, content: value}\n"
         "    roles: {user: [human], assistant: [gpt]}\n";
}

}  // namespace

TEST_CASE("chat_template llama3: trains on the assistant turns only, shown in the start-up log") {
  Workspace ws("sft_chat");
  write_file((ws.dir / "tokenizer.model").string(), small_ranks_text());
  Run r = run_train(ws.config(chat_dataset(ws) + "tokenizer_config: " + ws.dir.string() +
                              "\nvocab_size: " + std::to_string(kRanks + 256) +
                              "\nsequence_len: 64\nmax_steps: 2\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("data: 40 documents -> 40 examples") != std::string::npos);
  // The loss mask of one example, special tokens by name: the assistant's words, never the system
  // or user text; <|eot_id|> is not this base tokenizer's EOS (<|end_of_text|>), so without
  // eot_tokens it is no target, as in Axolotl.
  CHECK(r.output.find("([[trained]]): <|begin_of_text|><|start_header_id|>system<|end_header_id|>\\n\\nBe brief."
                      "<|eot_id|><|start_header_id|>user<|end_header_id|>\\n\\nhello") != std::string::npos);
  CHECK(r.output.find("assistant<|end_header_id|>\\n\\n[[world 11111]]<|eot_id|>") != std::string::npos);
  CHECK(train_records(ws.out("metrics.jsonl")).size() == 2);
  // The saved tokenizer carries the template it trained with, as Axolotl saves it.
  CHECK(read_file(ws.out("chat_template.jinja")) == llm::builtin_chat_template_jinja("llama3"));
}

TEST_CASE("chat_template tokenizer_default: the tokenizer's own Jinja template, masked by message") {
  Workspace ws("sft_chat_jinja");
  write_file((ws.dir / "tokenizer.model").string(), small_ranks_text());
  // The template transformers would find beside the tokenizer (chat_template.jinja).
  write_file((ws.dir / "chat_template.jinja").string(),
             "{{ bos_token }}{% for m in messages %}### {{ m.role | upper }}:\n{{ m.content }}"
             "{% if m.role == 'assistant' %}<|eot_id|>{% endif %}\n{% endfor %}");
  std::string config = chat_dataset(ws);
  config.replace(config.find("chat_template: llama3"), 21, "chat_template: tokenizer_default");
  Run r = run_train(ws.config(config + "eot_tokens: ['<|eot_id|>']\ntokenizer_config: " + ws.dir.string() +
                              "\nvocab_size: " + std::to_string(kRanks + 256) + "\nsequence_len: 64\nmax_steps: 2\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  // trim_blocks drops the newline after {% endif %}, as transformers renders it. The example shown
  // is the first of the merged order: HF's Dataset.shuffle(seed=7) puts conversation 4 first.
  CHECK(r.output.find("([[trained]]): <|begin_of_text|>### SYSTEM:\\nBe brief.### USER:\\nhello 4### ASSISTANT:\\n"
                      "[[world 11111<|eot_id|>]]") != std::string::npos);
  CHECK(train_records(ws.out("metrics.jsonl")).size() == 2);
  CHECK(read_file(ws.out("chat_template.jinja")) == read_file((ws.dir / "chat_template.jinja").string()));
}

TEST_CASE("added_tokens_overrides: ChatML on a tokenizer without its markers, two added tokens renamed") {
  Workspace ws("sft_chat_overrides");
  std::string config = chat_dataset(ws);
  config.replace(config.find("chat_template: llama3"), 21, "chat_template: chatml");
  const std::string hf = (std::filesystem::path(__FILE__).parent_path() / "data" / "hf_tokenizer").string();
  Run r = run_train(ws.config(config + "tokenizer_config: " + hf + "\nvocab_size: 272\nsequence_len: 64\nmax_steps: 2\n"
                              "added_tokens_overrides: {269: '<|im_end|>', 270: '<|im_start|>'}\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("([[trained]]): <|im_start|>system\\nBe brief.<|im_end|>\\n<|im_start|>user\\nhello 4<|im_end|>\\n"
                      "<|im_start|>assistant\\n[[world 11111") != std::string::npos);
  // The saved tokenizer carries the new names (and ChatML, the template it trained with).
  llm::BpeTokenizer saved(ws.out("tokenizer.json"));
  CHECK(saved.special_id("<|im_start|>") == 270);
  CHECK(saved.special_id("<|im_end|>") == 269);
  CHECK(read_file(ws.out("tokenizer_config.json")).find("<|im_start|>") != std::string::npos);
}

TEST_CASE("chat_template with the byte tokenizer: one line naming the special token, exit 2") {
  Workspace ws("sft_chat_bytes");
  Run r = run_train(ws.config(chat_dataset(ws) + "max_steps: 1\n"));
  CHECK(r.exit_code == 2);
  CHECK(error_text(r).find("the chat template needs the special token <|begin_of_text|>") !=
        std::string::npos);
}

TEST_CASE("sample_packing: whole alpaca examples multipacked, long ones dropped and counted") {
  Workspace ws("sft_packing");
  std::string rows;
  for (int i = 0; i < 60; i++)
    rows += "{\"instruction\": \"say " + std::to_string(i) + "\", \"output\": \"" +
            std::string(1 + i % 9, 'z') + "\"}\n";
  rows += "{\"instruction\": \"" + std::string(300, 'q') + "\", \"output\": \"too long\"}\n";
  const std::string path = (ws.dir / "alpaca.jsonl").string();
  write_file(path, rows);
  Run r = run_train(ws.config("datasets:\n  - path: " + path + "\n    type: alpaca\n"
                              "sequence_len: 256\nsample_packing: true\nflash_attention: true\n"
                              "max_steps: 2\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("-> 60 examples (0 split into sequence_len chunks, 1 dropped as longer than sequence_len 256 "
                       "and 0 as shorter than min_sample_len 2,") != std::string::npos);
  // Bins of micro_batch_size x sequence_len, as Axolotl packs for a varlen attention.
  CHECK(r.output.find("multipack (first fit, at most 200 examples a bin) into bins of 512 tokens") != std::string::npos);
  CHECK(train_records(ws.out("metrics.jsonl")).size() == 2);
}
