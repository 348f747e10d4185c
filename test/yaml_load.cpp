// yaml_load: loads config texts as llm_train reads a config (train/config_fields.h's
// read_config_yaml: yaml-cpp, then PyYAML's scalars, tags, merge keys and line breaks) for
// tools/yaml_differential.py, which loads the same texts with PyYAML. Reads JSON lines (each a
// string, the YAML text) on stdin and writes one JSON line per input: {"ok": true, "value": the
// document as JSON} or {"ok": false, "value": the one-line error}. A scalar is typed as PyYAML's
// resolver types it; a float that JSON cannot hold is "nan", "inf" or "-inf", an integer past 64
// bits "BIGINT", a map's non-string key its JSON text.
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/user_error.h"
#include "train/config_fields.h"
#include "train/pyyaml_scalars.h"

namespace {

using json = nlohmann::ordered_json;

json scalar(const YAML::Node& node) {
  if (node.IsNull()) return nullptr;
  if (node.Tag() == "!") return node.Scalar();  // quoted, or tagged !!str
  const std::string& text = node.Scalar();
  switch (llm::resolve_plain_scalar(text)) {
    case llm::PlainScalar::null: return nullptr;
    case llm::PlainScalar::boolean: return *llm::pyyaml_bool(text);
    case llm::PlainScalar::integer: {
      const std::optional<int64_t> v = llm::pyyaml_int(text);
      return v ? json(*v) : json("BIGINT");
    }
    case llm::PlainScalar::floating: {
      const double v = *llm::pyyaml_float(text);
      if (std::isnan(v)) return "nan";
      if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
      return v;
    }
    case llm::PlainScalar::string: break;
  }
  return text;
}

json document(const YAML::Node& node, int depth = 0) {
  if (depth > 100) throw llm::UserError("nested deeper than yaml_load follows (an alias inside itself?)");
  if (node.IsMap()) {
    json out = json::object();
    for (const auto& kv : node) {
      const json key = scalar(kv.first);
      out[key.is_string() ? key.get<std::string>() : key.dump()] = document(kv.second, depth + 1);
    }
    return out;
  }
  if (node.IsSequence()) {
    json out = json::array();
    for (const YAML::Node& item : node) out.push_back(document(item, depth + 1));
    return out;
  }
  return scalar(node);
}

}  // namespace

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    const std::string text = json::parse(line).get<std::string>();
    json out;
    try {
      out = {{"ok", true}, {"value", document(llm::read_config_yaml(text, "config.yaml", false))}};
    } catch (const llm::UserError& e) {
      out = {{"ok", false}, {"value", e.what()}};
    }
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n" << std::flush;
  }
  return 0;
}
