// Axolotl's prompters (its axolotl.prompters classes) that its inference command's --prompter
// names, as their build_prompt(instruction) writes a prompt without input: the system prompt (in
// its format) when the class has one, then the instruction turn.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace llm {

struct Prompter {
  const char* name;          // the class name
  const char* system;        // system_no_input_prompt already in its system_format; "" for none
  const char* turn_prefix;   // turn_no_input_format before {instruction}
  const char* turn_suffix;   // and after it
};

// The prompters built (the instruct style, build_prompt's default).
const std::vector<Prompter>& prompters();
std::optional<Prompter> find_prompter(const std::string& name);
// The prompt `prompter` builds of `instruction`.
std::string build_prompt(const Prompter& prompter, const std::string& instruction);

}  // namespace llm
