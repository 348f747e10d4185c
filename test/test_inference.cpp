// llm_train inference, Axolotl's `axolotl inference`: a prompt read from stdin up to its end,
// answered by the model the config loads, streamed and then printed whole; the sampling itself
// (HF's processors) is test_model's next_token_probabilities.
#include "test/mpirun.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {

const std::string kRule(80, '=');

// The run's output after its banner for the first prompt: the streamed text, then the whole one.
struct Answer {
  std::string streamed, whole;
};

Answer answer_of(const Run& r) {
  const std::string banner = "Give me an instruction (Ctrl + D to submit): \n" + kRule + "\n" + kRule + "\n";
  const size_t start = r.output.find(banner);
  REQUIRE_MESSAGE(start != std::string::npos, r.output);
  const size_t streamed = start + banner.size();
  const size_t rule = r.output.find("\n" + kRule + "\n", streamed);
  REQUIRE(rule != std::string::npos);
  const size_t whole = rule + kRule.size() + 2;
  const size_t end = r.output.find("\n" + kRule + "\n", whole);
  REQUIRE(end != std::string::npos);
  return {r.output.substr(streamed, rule - streamed), r.output.substr(whole, end - whole)};
}

}  // namespace

TEST_CASE("inference: the prompt after BOS, answered until the input ends; the same seed, the same answer") {
  Workspace ws("inference");
  const std::string config = ws.config();
  write_file((ws.dir / "prompt.txt").string(), "  line 5: the quick brown\n");
  const Run a = run_train("inference " + config + " < " + (ws.dir / "prompt.txt").string());
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  const Answer answer = answer_of(a);
  // The prompt stripped as Axolotl strips it (the byte tokenizer shows no BOS), then new text.
  CHECK(answer.streamed.rfind("line 5: the quick brown", 0) == 0);
  CHECK(answer.streamed.size() > std::string("line 5: the quick brown").size());
  CHECK(answer.whole == answer.streamed);  // the stream shows every token
  // After the answer the input is at its end: one more banner, then the run ends.
  CHECK(a.output.find("Give me an instruction", a.output.find(answer.whole) + answer.whole.size()) != std::string::npos);
  CHECK(!fs::exists(ws.out("metrics.jsonl")));  // nothing of a run
  const Run b = run_train("inference " + config + " < " + (ws.dir / "prompt.txt").string());
  REQUIRE(b.exit_code == 0);
  CHECK(answer_of(b).whole == answer.whole);
  // An empty input ends it at once.
  write_file((ws.dir / "empty.txt").string(), "");
  const Run none = run_train("inference " + config + " < " + (ws.dir / "empty.txt").string());
  CHECK(none.exit_code == 0);
  CHECK(none.output.find("Give me an instruction") != std::string::npos);
  CHECK(none.output.find(kRule + "\n" + kRule + "\n" + kRule) == std::string::npos);
}

TEST_CASE("inference: under the config's chat template, one user message with the generation prompt") {
  Workspace ws("inference_chat");
  write_file((ws.dir / "prompt.txt").string(), "Hi!\n");
  // The top-level chat_template (the byte tokenizer writes ChatML's markers as text).
  const Run top = run_train("inference " + ws.config("chat_template: chatml\n") + " < " + (ws.dir / "prompt.txt").string());
  REQUIRE_MESSAGE(top.exit_code == 0, top.output);
  CHECK(answer_of(top).streamed.rfind("<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n", 0) == 0);
  // Else the first dataset's, when it is a chat_template one.
  write_file((ws.dir / "chats.jsonl").string(), "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, "
                                                "{\"role\": \"assistant\", \"content\": \"b\"}]}\n");
  std::string yaml = read_file(ws.config());
  const size_t at = yaml.find("datasets:");
  yaml.replace(at, yaml.find("dataset_prepared_path") - at,
               "datasets:\n  - path: " + (ws.dir / "chats.jsonl").string() + "\n    type: chat_template\n"
               "    chat_template: chatml\n");
  write_file((ws.dir / "chat.yaml").string(), yaml + "val_set_size: 0\n");
  const Run first = run_train("inference " + (ws.dir / "chat.yaml").string() + " < " + (ws.dir / "prompt.txt").string());
  REQUIRE_MESSAGE(first.exit_code == 0, first.output);
  CHECK(answer_of(first).streamed.rfind("<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n", 0) == 0);
}

// Axolotl's --prompter: its class's build_prompt of the instruction (newlines stripped), after BOS,
// over any chat template. The texts are Axolotl 0.19's (checked against its prompters module).
TEST_CASE("inference --prompter: Axolotl's prompter formats the instruction, the chat template unused") {
  Workspace ws("inference_prompter");
  write_file((ws.dir / "prompt.txt").string(), "\nName a colour.\n\n");
  const std::string config = ws.config("chat_template: chatml\n");
  const std::string input = " < " + (ws.dir / "prompt.txt").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"AlpacaPrompter", "Below is an instruction that describes a task. Write a response that appropriately completes "
                         "the request.\n\n### Instruction:\nName a colour.\n\n### Response:\n"},
      {"UnpromptedPrompter", "### Instruction:\nName a colour.\n\n### Response:\n"},
      {"MultipleChoiceConcisePrompter", "Choose the answer that best answers the question. Be concise in your "
                                        "response.\n\nUSER: Name a colour.\nASSISTANT:"},
      {"SummarizeTLDRPrompter", "USER: Summarize the following article as a TL;DR.\nName a colour.\nASSISTANT:"}};
  for (const auto& [name, prompt] : cases) {
    CAPTURE(name);
    const Run r = run_train("inference " + config + " --prompter " + name + input);
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    CHECK(answer_of(r).streamed.rfind(prompt, 0) == 0);
  }
  const Run bad = run_train("inference " + config + " --prompter Alpaca" + input);
  CHECK(bad.exit_code == 2);
  CHECK(error_text(bad).rfind("error: command line: --prompter: expected one of AlpacaPrompter, ", 0) == 0);
  // A key llm_train does not read is named, as a run names it.
  const Run typo = run_train("inference " + config + " --prompterr AlpacaPrompter" + input);
  CHECK(typo.output.find("keys not used by llm_train: prompterr") != std::string::npos);
}

TEST_CASE("inference: no config, or a diffusion model, refused in one line") {
  Workspace ws("inference_bad");
  const Run none = run_train("inference");
  CHECK(none.exit_code == 2);
  CHECK(error_text(none) == "error: command line: inference needs a config (llm_train inference CONFIG.yaml)\n");
  const Run diffusion = run_train("inference " + ws.config("plugins:\n  - axolotl.integrations.diffusion.DiffusionPlugin\n") +
                                  " < /dev/null");
  CHECK(diffusion.exit_code == 2);
  CHECK(error_text(diffusion).find("inference: expected a causal LM, got a diffusion model") != std::string::npos);
  // One process samples, as Axolotl's command: several ranks stop together, said once.
  const Run ranks = run_train("inference " + ws.config() + " < /dev/null", mpirun(2));
  CHECK(ranks.exit_code != 0);
  const std::string said = "inference: expected one rank, got 2";
  CHECK(ranks.output.find(said) != std::string::npos);
  CHECK(ranks.output.find(said) == ranks.output.rfind(said));
}
