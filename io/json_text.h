// A user's JSON file read whole, or one UserError line naming the file and what it should have
// been: how every JSON input is read (tokenizer files, config.json, adapter_config.json,
// safetensors headers and indexes, checkpoint manifests and tensor file headers).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace llm {

// A JSON value's kind with its article, for messages: "an array", "an object", "a string", ...
inline std::string json_kind(const nlohmann::json& value) {
  const std::string name = value.type_name();
  return (name == "array" || name == "object" ? "an " : "a ") + name;
}

// A file's whole text; UserError naming `path` and `expected` when it cannot be read.
std::string read_whole_file(const std::string& path, const std::string& expected);

// One UserError line for text that is no JSON document: a NUL byte (nlohmann ends its input at
// one and would ignore what follows; JSON holds none), a syntax error, or a number like 1e999.
[[noreturn]] void throw_invalid_json(const std::string& path, const std::string& expected, const std::string& why);
size_t nul_byte_at(const std::string& text);  // npos when none

// JSON nested deeper than this is refused before it is parsed: nlohmann's parser is iterative,
// but writing a value back (an error message quoting it) recurses once a level, so a document of
// a few hundred KB of '[' would overflow the stack. Real files nest a few levels.
constexpr int kMaxJsonDepth = 512;
// Whether `text` opens more than `limit` arrays and objects inside one another (strings skipped).
bool json_nested_deeper_than(const std::string& text, int limit = kMaxJsonDepth);

template <class Json = nlohmann::json>
Json parse_json_text(const std::string& text, const std::string& path, const std::string& expected) {
  if (const size_t at = nul_byte_at(text); at != std::string::npos)
    throw_invalid_json(path, expected, "a NUL byte at byte " + std::to_string(at + 1));
  if (json_nested_deeper_than(text)) throw_invalid_json(path, expected, "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw_invalid_json(path, expected, "byte " + std::to_string(e.byte));
  } catch (const nlohmann::json::exception& e) {  // out_of_range
    throw_invalid_json(path, expected, e.what());
  }
}

// The same text's JSON without exceptions: discarded (is_discarded()) wherever parse_json_text
// would refuse it, so a reader that skips bad text (a cut metrics line) takes the same checks.
inline nlohmann::json parse_json_or_discarded(const std::string& text) {
  if (nul_byte_at(text) != std::string::npos || json_nested_deeper_than(text))
    return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

inline nlohmann::json read_json_file(const std::string& path, const std::string& expected) {
  return parse_json_text(read_whole_file(path, expected), path, expected);
}

}  // namespace llm
