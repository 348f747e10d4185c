// defines: prompters, find_prompter, build_prompt (Axolotl's prompter classes for --prompter)
#include "train/prompters.h"

namespace llm {

namespace {

constexpr const char* kAlpacaSystem =
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n";
constexpr const char* kInstruction = "### Instruction:\n";
constexpr const char* kResponse = "\n\n### Response:\n";

}  // namespace

const std::vector<Prompter>& prompters() {
  // GPTeacher, NomicGPT4All and Jeopardy are AlpacaPrompter without changes to build_prompt's
  // no-input form; MultipleChoiceConcise and SummarizeTLDR replace the turn (and the first keeps
  // the plain "{system}" format).
  static const std::vector<Prompter> all = {
      {"AlpacaPrompter", kAlpacaSystem, kInstruction, kResponse},
      {"UnpromptedPrompter", "", kInstruction, kResponse},
      {"JeopardyPrompter", kAlpacaSystem, kInstruction, kResponse},
      {"GPTeacherPrompter", kAlpacaSystem, kInstruction, kResponse},
      {"NomicGPT4AllPrompter", kAlpacaSystem, kInstruction, kResponse},
      {"MultipleChoiceExplainPrompter", "Choose the answer that best answers the question. Explain your reasoning.\n\n\n",
       kInstruction, kResponse},
      {"MultipleChoiceConcisePrompter",
       "Choose the answer that best answers the question. Be concise in your response.\n\n", "USER: ", "\nASSISTANT:"},
      {"SummarizeTLDRPrompter", "", "USER: Summarize the following article as a TL;DR.\n", "\nASSISTANT:"},
  };
  return all;
}

std::optional<Prompter> find_prompter(const std::string& name) {
  for (const Prompter& p : prompters())
    if (name == p.name) return p;
  return std::nullopt;
}

std::string build_prompt(const Prompter& prompter, const std::string& instruction) {
  return std::string(prompter.system) + prompter.turn_prefix + instruction + prompter.turn_suffix;
}

}  // namespace llm
