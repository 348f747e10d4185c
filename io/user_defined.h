// Axolotl's user-defined instruction datasets (a `type:` map, its user_defined strategy on
// alpaca_w_system's tokenizing): a row's instruction (required), input, output and system (each ""
// when absent or null; system the format's system_prompt when no row of the file has the field)
// become the prompt
//   system_format(system) when both are non-empty, then format(instruction, input) when input is
//   non-empty, else no_input_format(instruction)
// which trains as alpaca's prompt does (train_on_inputs), and the output, which trains, then EOS
// (none after an empty output, and no BOS before an empty prompt, as Axolotl tokenizes them).
// The formats are Python str.format strings with named fields only: {name}, and {{ / }} for braces.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/data_config.h"
#include "io/jinja_value.h"

namespace llm {

// `format` with each {name} replaced by its value; UserError on a field not in `values` or a
// brace without its pair, naming `what`.
std::string format_named(const std::string& format, const std::vector<std::pair<std::string, std::string>>& values,
                         const std::string& what);

// The same as template text: the format's own text under jinja::kTemplateSource (a special
// token's name there is that token), each value under `value_source`.
jinja::Text format_text(const std::string& format, const std::vector<std::pair<std::string, std::string>>& values,
                        int value_source, const std::string& what);

// What is wrong with `format` given the field names it may use (its first problem), or nullopt.
std::optional<std::string> format_problem(const std::string& format, const std::vector<std::string>& names);

// The prompt of one row.
std::string user_defined_prompt(const UserDefinedFormat& f, const std::string& system, const std::string& instruction,
                                const std::string& input);

}  // namespace llm
