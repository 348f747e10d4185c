// A whole JSON document from a file's text, or one UserError line naming the file and what it
// should have been: how the tokenizer files (special_tokens.json, tokenizer.json,
// tokenizer_config.json) are read.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace llm {

nlohmann::json parse_json_text(const std::string& text, const std::string& path, const std::string& expected);

}  // namespace llm
