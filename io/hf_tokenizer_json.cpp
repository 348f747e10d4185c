// defines: read_hf_tokenizer_json: Hugging Face's tokenizer.json of a Llama 3 model (a byte-level
// BPE converted from Meta's tiktoken ranks) and tokenizer_config.json beside it.
//
// Why the ids alone are enough: the conversion writes every token with its tiktoken rank as its
// id and lists the merges in the order of the ranks of what they make, so merging lowest-id
// result first (tiktoken) and lowest merge index first (HF) choose the same pairs. The reader
// checks that order instead of trusting it, and checks the pre-tokenizer is Llama 3's regex: a
// tokenizer.json of another family would otherwise train on the wrong ids without a word.
#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "engine/user_error.h"
#include "io/bpe_vocabulary.h"
#include "io/json_text.h"
#include "io/token_cache.h"  // fnv1a64

namespace llm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// GPT-2's byte-level alphabet: the printable bytes stand for themselves, the other 68 bytes, in
// order, for the code points from 256 on. Returns the byte a code point stands for, or -1.
int byte_of_code_point(uint32_t cp) {
  static const std::array<int, 256 + 68> table = [] {
    std::array<int, 256 + 68> t;
    t.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; b++) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      t[printable ? b : next++] = b;
    }
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

// A vocabulary entry's bytes (its UTF-8 text read through the byte-level alphabet), or nullopt.
std::optional<std::string> token_bytes(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : -1;
    if (extra < 0 || i + extra >= text.size()) return std::nullopt;
    uint32_t cp = extra == 0 ? c : extra == 1 ? c & 0x1f : c & 0x0f;
    for (int k = 1; k <= extra; k++) {
      const auto cont = static_cast<unsigned char>(text[i + k]);
      if ((cont >> 6) != 2) return std::nullopt;
      cp = cp << 6 | (cont & 0x3f);
    }
    const int byte = byte_of_code_point(cp);
    if (byte < 0) return std::nullopt;
    out += char(byte);
    i += extra + 1;
  }
  return out;
}

// A member's string value, or "" when it is absent or not a string: json::value would throw
// type_error for {"type": 5}, which is bad input to refuse in one line, not a fatal error.
std::string string_member(const json& object, const char* key) {
  const auto it = object.find(key);  // end() for an object without it and for a non-object
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// True when the pre-tokenizer (or one of a Sequence's) splits on Llama 3's regex.
bool splits_like_llama3(const json& pre) {
  if (!pre.is_object()) return false;
  if (string_member(pre, "type") == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].is_array()) {
    for (const json& p : pre["pretokenizers"])
      if (splits_like_llama3(p)) return true;
    return false;
  }
  const json* pattern = pre.contains("pattern") ? &pre["pattern"] : nullptr;
  return string_member(pre, "type") == "Split" && pattern && pattern->is_object() && pattern->contains("Regex") &&
         (*pattern)["Regex"].is_string() && (*pattern)["Regex"].get<std::string>() == kLlama3Pattern;
}

// A merge as "left right" (tokenizers before 0.20) or ["left", "right"].
std::optional<std::string> merged_text(const json& merge) {
  if (merge.is_string()) {
    const std::string s = merge.get<std::string>();
    const size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) return std::nullopt;
    return s.substr(0, space) + s.substr(space + 1);
  }
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string())
    return merge[0].get<std::string>() + merge[1].get<std::string>();
  return std::nullopt;
}

// tokenizer_config.json's bos_token / eos_token / pad_token: a name, {"content": name}, or null.
std::string token_name(const json& config, const char* key, const std::string& path) {
  if (!config.contains(key) || config[key].is_null()) return "";
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  throw UserError(path + ": " + key + ": expected a token name, {\"content\": name} or null, got " + v.dump());
}

}  // namespace

BpeVocabulary read_hf_tokenizer_json(const std::string& json_path) {
  const std::string& p = json_path;
  const std::string expected = "a Hugging Face tokenizer.json";
  const std::string text = read_whole_file(p, expected);
  const json doc = parse_json_text(text, p, expected);
  if (!doc.is_object() || !doc.contains("model") || !doc["model"].is_object())
    throw UserError(p + ": expected " + expected + " (an object with a \"model\"), got none");
  const json& model = doc["model"];
  if (const json type = model.value("type", json("none")); type != "BPE")
    throw UserError(p + ": model.type: expected BPE (Llama 3's byte-level BPE), got " +
                    (type.is_string() ? type.get<std::string>() : type.dump()));
  if (!splits_like_llama3(doc.value("pre_tokenizer", json())))
    throw UserError(p + ": pre_tokenizer: expected a Split on Llama 3's regex (this engine tokenizes Llama 3 only), got another");
  if (!model.contains("vocab") || !model["vocab"].is_object() || model["vocab"].empty())
    throw UserError(p + ": model.vocab: expected an object of token -> id, got none");

  BpeVocabulary v;
  v.source = p;
  const json& vocab = model["vocab"];
  v.tokens.assign(vocab.size(), std::string());
  std::vector<bool> seen(vocab.size(), false);
  std::unordered_map<std::string, int64_t> id_of;  // by the token's text
  for (const auto& [token, id_json] : vocab.items()) {
    const std::string at = p + ": model.vocab[" + llm::quoted(token) + "]: ";
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 || id_json.get<int64_t>() >= int64_t(vocab.size()))
      throw UserError(at + "expected an id below " + std::to_string(vocab.size()) + " (ids are 0..N-1), got " + id_json.dump());
    const int64_t id = id_json.get<int64_t>();
    if (seen[id]) throw UserError(at + "expected an id not used before, got " + std::to_string(id) + " again");
    std::optional<std::string> bytes = token_bytes(token);
    if (!bytes) throw UserError(at + "expected byte-level text (GPT-2's byte alphabet), got other characters");
    seen[id] = true;
    v.tokens[id] = std::move(*bytes);
    id_of[token] = id;
  }

  // The merges in the order of the ids they make (see the top of the file).
  static const json kNoMerges = json::array();
  const json& merges = model.contains("merges") ? model["merges"] : kNoMerges;
  if (!merges.is_array()) throw UserError(p + ": model.merges: expected a list, got a JSON " + std::string(merges.type_name()));
  int64_t last = -1;
  for (size_t i = 0; i < merges.size(); i++) {
    const std::string at = p + ": model.merges[" + std::to_string(i) + "]: ";
    std::optional<std::string> made = merged_text(merges[i]);
    if (!made) throw UserError(at + "expected \"left right\" or [left, right], got " + merges[i].dump());
    auto it = id_of.find(*made);
    if (it == id_of.end()) throw UserError(at + "expected a merge that makes a token of the vocab, got " + merges[i].dump());
    if (it->second < last)
      throw UserError(at + "expected merges in the order of their tokens' ids (a BPE converted from tiktoken ranks), got id " +
                      std::to_string(it->second) + " after " + std::to_string(last));
    last = it->second;
  }

  // Added tokens past the vocab are the specials, their ids following it without a gap.
  const json added = doc.value("added_tokens", json::array());
  if (!added.is_array() && !added.is_null())  // null: no added tokens
    throw UserError(p + ": added_tokens: expected a list of {\"id\": N, \"content\": name}, got a JSON " +
                    std::string(added.type_name()));
  std::vector<std::string> specials(added.size());
  for (size_t i = 0; i < specials.size(); i++) {
    const json& t = added[i];
    const std::string at = p + ": added_tokens[" + std::to_string(i) + "]: ";
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
        !t["content"].is_string() || t["content"].get<std::string>().empty())
      throw UserError(at + "expected {\"id\": N, \"content\": name}, got " + t.dump());
    // Checked before the subtraction: an id near -2^63 would overflow it (found by llm_fuzz).
    const int64_t id = t["id"].get<int64_t>(), first = int64_t(v.tokens.size());
    const int64_t slot = id < first ? -1 : id - first;
    if (slot < 0 || slot >= int64_t(specials.size()) || !specials[slot].empty())
      throw UserError(at + "expected an id from " + std::to_string(v.tokens.size()) + " on, each once, without gaps, got " +
                      t["id"].dump());
    if (std::find(specials.begin(), specials.end(), t["content"].get<std::string>()) != specials.end())
      throw UserError(at + "expected a name not listed before, got " + t["content"].get<std::string>() + " again");
    specials[slot] = t["content"].get<std::string>();
  }
  v.specials = std::move(specials);
  v.specials_source = p;

  // transformers' tokenizer_config.json names BOS, EOS and PAD (an Instruct model's EOS differs).
  uint64_t hash = fnv1a64(text.data(), text.size());
  const std::string config_path = (fs::path(p).parent_path() / "tokenizer_config.json").string();
  std::error_code ec;
  if (fs::exists(config_path, ec)) {
    const std::string what = "transformers' tokenizer_config.json";
    const json config = parse_json_text(read_whole_file(config_path, what), config_path, what);
    if (!config.is_object()) throw UserError(config_path + ": expected a JSON object, got a JSON " + std::string(config.type_name()));
    v.bos = token_name(config, "bos_token", config_path);
    v.eos = token_name(config, "eos_token", config_path);
    v.pad = token_name(config, "pad_token", config_path);
    v.specials_source = config_path;
    const std::string chosen = v.bos + "\n" + v.eos + "\n" + v.pad;
    hash = fnv1a64(chosen.data(), chosen.size(), hash);
  }
  char hex[24];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  v.name = "hf-bpe " + std::to_string(v.tokens.size()) + "+" + std::to_string(v.specials.size()) + " #" + hex;
  return v;
}

}  // namespace llm
