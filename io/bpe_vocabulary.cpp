// defines: find_bpe_tokenizer, read_tiktoken_vocabulary (Meta's ranks file and
// special_tokens.json), quoted
#include "io/bpe_vocabulary.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "engine/user_error.h"
#include "io/json_text.h"
#include "io/token_cache.h"  // fnv1a64

namespace llm {
namespace {

namespace fs = std::filesystem;

// Llama 3.1's special tokens in id order, as its tokenizer.py names them: ten named ones among
// the first eleven, the rest reserved.
std::vector<std::string> llama31_special_tokens() {
  std::vector<std::string> names = {"begin_of_text", "end_of_text", "reserved_special_token_0",
                                    "reserved_special_token_1", "finetune_right_pad_id",
                                    "reserved_special_token_2", "start_header_id", "end_header_id",
                                    "eom_id", "eot_id", "python_tag"};
  for (int i = 3; names.size() < 256; i++) names.push_back("reserved_special_token_" + std::to_string(i));
  for (std::string& n : names) n = "<|" + n + "|>";
  return names;
}

// Standard base64 with '=' padding; nullopt when `text` is not that.
std::optional<std::string> decode_base64(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  const size_t padding = text.size() - (text.find_last_not_of('=') + 1);
  if (padding > 2) return std::nullopt;
  std::string out;
  uint32_t bits = 0;
  for (size_t i = 0; i < text.size() - padding; i++) {
    int v = value(text[i]);
    if (v < 0) return std::nullopt;
    bits = bits << 6 | uint32_t(v);
    if (i % 4 == 3) {
      out += char(bits >> 16);
      out += char(bits >> 8);
      out += char(bits);
    }
  }
  if (padding == 2) out += char(bits >> 4);
  if (padding == 1) {
    out += char(bits >> 10);
    out += char(bits >> 2);
  }
  return out;
}

// Token bytes by rank from "base64 rank" lines; ranks are 0..N-1, each once, bytes distinct.
std::vector<std::string> read_ranks(const std::string& path, const std::string& text) {
  // Lines are parsed into (line number, bytes, rank) first: the rank count bounds the ranks.
  struct Line {
    int number;
    std::string bytes;
    int64_t rank;
  };
  std::vector<Line> lines;
  int number = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = std::min(text.find('\n', pos), text.size());
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    number++;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const std::string at = path + ":" + std::to_string(number) + ": ";
    const size_t space = line.find(' ');
    std::string_view rank_text = space == std::string_view::npos ? "" : line.substr(space + 1);
    int64_t rank = 0;
    bool rank_ok = !rank_text.empty() && rank_text.size() <= 10;
    for (size_t i = 0; rank_ok && i < rank_text.size(); i++) {  // a long text would overflow rank
      const char c = rank_text[i];
      rank_ok = c >= '0' && c <= '9';
      rank = rank * 10 + (c - '0');
    }
    if (!rank_ok) throw UserError(at + "expected 'base64 rank', got " + quoted(line));
    std::optional<std::string> bytes = decode_base64(line.substr(0, space));
    if (!bytes) throw UserError(at + "expected base64 token bytes, got " + quoted(line.substr(0, space)));
    lines.push_back({number, std::move(*bytes), rank});
  }
  if (lines.empty()) throw UserError(path + ": expected tiktoken ranks ('base64 rank' per line), got none");

  const int64_t count = int64_t(lines.size());
  std::vector<int> line_of_rank(count, 0);
  std::vector<std::string> tokens(count);
  std::unordered_map<std::string, int> line_of_bytes;
  for (Line& l : lines) {
    const std::string at = path + ":" + std::to_string(l.number) + ": ";
    if (l.rank >= count)
      throw UserError(at + "expected a rank below " + std::to_string(count) +
                      " (ranks are 0..N-1 for N lines), got " + std::to_string(l.rank));
    if (line_of_rank[l.rank] != 0)
      throw UserError(at + "expected a rank not used before, got " + std::to_string(l.rank) +
                      " again (line " + std::to_string(line_of_rank[l.rank]) + ")");
    if (auto [it, fresh] = line_of_bytes.emplace(l.bytes, l.number); !fresh)
      throw UserError(at + "expected token bytes not ranked before, got the bytes of line " +
                      std::to_string(it->second) + " again");
    line_of_rank[l.rank] = l.number;
    tokens[l.rank] = std::move(l.bytes);
  }
  return tokens;
}

// special_tokens.json beside the ranks: a JSON list of names, in id order.
std::vector<std::string> read_special_names(const std::string& json_path) {
  const std::string expected = "a JSON list of special token names, in id order";
  const nlohmann::json list = parse_json_text(read_whole_file(json_path, expected), json_path, expected);
  if (!list.is_array()) throw UserError(json_path + ": expected " + expected + ", got a JSON " + list.type_name());
  std::vector<std::string> names;
  for (const nlohmann::json& item : list) {
    if (!item.is_string() || item.get<std::string>().empty())
      throw UserError(json_path + ": [" + std::to_string(names.size()) + "]: expected a non-empty string, got " +
                      item.dump());
    if (std::find(names.begin(), names.end(), item.get<std::string>()) != names.end())
      throw UserError(json_path + ": [" + std::to_string(names.size()) + "]: expected a name not listed before, got " +
                      item.get<std::string>() + " again");
    names.push_back(item.get<std::string>());
  }
  return names;
}

}  // namespace

std::string quoted(std::string_view s) {
  return "'" + std::string(s.substr(0, 40)) + (s.size() > 40 ? "...'" : "'");
}

std::optional<std::string> find_bpe_tokenizer(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  for (const char* inside : {"tokenizer.json", "tokenizer.model", "original/tokenizer.model"})
    if (fs::is_regular_file(fs::path(path) / inside, ec)) return (fs::path(path) / inside).string();
  return std::nullopt;
}

BpeVocabulary read_tiktoken_vocabulary(const std::string& ranks_path) {
  BpeVocabulary v;
  v.source = ranks_path;
  const std::string text = read_whole_file(ranks_path, "a tiktoken ranks file ('base64 rank' per line)");
  v.tokens = read_ranks(ranks_path, text);
  const std::string json_path = (fs::path(ranks_path).parent_path() / "special_tokens.json").string();
  std::error_code ec;
  const bool listed = fs::exists(json_path, ec);
  v.specials = listed ? read_special_names(json_path) : llama31_special_tokens();
  v.specials_source = listed ? json_path : "Llama 3.1's special tokens";
  std::string names;
  for (const std::string& s : v.specials) names += s + "\n";
  char hash[24];
  std::snprintf(hash, sizeof hash, "%016llx",
                static_cast<unsigned long long>(fnv1a64(names.data(), names.size(), fnv1a64(text.data(), text.size()))));
  v.name = "tiktoken " + std::to_string(v.tokens.size()) + "+" + std::to_string(v.specials.size()) + " #" + hash;
  return v;
}

}  // namespace llm
