// defines: spectrum_snr_file, spectrum_unfrozen_parameters (Axolotl's Spectrum plugin)
#include "train/config_spectrum.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "engine/user_error.h"
#include "io/json_text.h"

namespace llm {

namespace {

// Python's json writes an infinite SNR as the bare word Infinity (and NaN, -Infinity), which JSON
// has not: outside strings, each becomes the string of itself for the parser.
std::string quote_python_numbers(const std::string& text) {
  std::string out;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); i++) {
    const char ch = text[i];
    if (in_string) {
      out += ch;
      if (ch == '\\' && i + 1 < text.size()) out += text[++i];
      else if (ch == '"') in_string = false;
      continue;
    }
    if (ch == '"') in_string = true;
    bool replaced = false;
    for (const char* word : {"-Infinity", "Infinity", "NaN"})
      if (text.compare(i, std::char_traits<char>::length(word), word) == 0) {
        out += std::string("\"") + word + "\"";
        i += std::char_traits<char>::length(word) - 1;
        replaced = true;
        break;
      }
    if (!replaced) out += ch;
  }
  return out;
}

double snr_value(const nlohmann::json& v, const std::string& path, const std::string& name) {
  if (v.is_number()) return v.get<double>();
  if (v == "Infinity") return std::numeric_limits<double>::infinity();
  if (v == "-Infinity") return -std::numeric_limits<double>::infinity();
  if (v == "NaN") return std::numeric_limits<double>::quiet_NaN();
  throw UserError(path + ": " + name + ".snr: expected a number, got " + v.dump());
}

}  // namespace

std::string spectrum_snr_file(const std::string& model_name) {
  std::string slug = model_name;
  std::replace(slug.begin(), slug.end(), '/', '-');
  std::replace(slug.begin(), slug.end(), '_', '-');
  return "model_snr_results/snr_results_" + slug + ".json";
}

std::vector<std::string> spectrum_unfrozen_parameters(const std::string& text, const std::string& path,
                                                      double top_fraction) {
  const std::string expected = "Spectrum's SNR results: a map of weight names to {snr, type}";
  const nlohmann::ordered_json scan = parse_json_text<nlohmann::ordered_json>(quote_python_numbers(text), path, expected);
  if (!scan.is_object()) throw UserError(path + ": expected " + expected + ", got a JSON " + scan.type_name());
  struct Kind {
    std::string type;
    std::vector<std::pair<std::string, double>> weights;  // in file order
  };
  std::vector<Kind> kinds;
  for (const auto& [name, info] : scan.items()) {
    if (!info.is_object() || !info.contains("type") || !info["type"].is_string() || !info.contains("snr"))
      throw UserError(path + ": " + name + ": expected {snr, type}, got " + info.dump());
    const std::string type = info["type"].get<std::string>();
    auto kind = std::find_if(kinds.begin(), kinds.end(), [&](const Kind& k) { return k.type == type; });
    if (kind == kinds.end()) kind = kinds.insert(kinds.end(), Kind{type, {}});
    kind->weights.push_back({name, snr_value(info["snr"], path, name)});
  }
  std::vector<std::string> patterns = {"^lm_head.weight$", "^model.embed_tokens.weight$"};
  for (Kind& k : kinds) {
    // Python's sorted(reverse=True) keeps equal ratios in file order; a NaN compares as neither.
    std::stable_sort(k.weights.begin(), k.weights.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    const size_t top = static_cast<size_t>(static_cast<double>(k.weights.size()) * top_fraction);
    for (size_t i = 0; i < std::min(top, k.weights.size()); i++) patterns.push_back(k.weights[i].first);
  }
  return patterns;
}

}  // namespace llm
