// defines: llama3_pre_tokenize, find_tiktoken_model, BpeTokenizer (loading, encode, decode)
#include "io/bpe_tokenizer.h"

#include <unicode/regex.h>
#include <unicode/utext.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/check.h"
#include "io/token_cache.h"  // fnv1a64
#include "engine/user_error.h"

namespace llm {
namespace {

namespace fs = std::filesystem;

// meta-llama/llama3 tokenizer.py's pat_str, which HF's tokenizer.json repeats.
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr int32_t kNotAToken = std::numeric_limits<int32_t>::max();

// Compiled once: an ICU pattern is immutable and safe to share between threads (its matchers are not).
const icu::RegexPattern& llama3_pattern() {
  static const std::unique_ptr<icu::RegexPattern> pattern = [] {
    UErrorCode status = U_ZERO_ERROR;
    UParseError where;
    std::unique_ptr<icu::RegexPattern> p(icu::RegexPattern::compile(
        icu::UnicodeString::fromUTF8(kLlama3Pattern), where, status));
    LLM_CHECK(U_SUCCESS(status), std::string("Llama 3 pre-tokenizer regex: ") + u_errorName(status));
    return p;
  }();
  return *pattern;
}

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

std::string quoted(std::string_view s) {
  return "'" + std::string(s.substr(0, 40)) + (s.size() > 40 ? "...'" : "'");
}

std::string read_whole_file(const std::string& path, const std::string& expected) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || fs::is_directory(path, ec))
    throw UserError(path + ": expected " + expected + ", got " +
                    (fs::exists(path, ec) ? "an unreadable file" : "no such file"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::vector<std::string_view> llama3_pre_tokenize(std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  // A UTF-8 UText makes the matcher's indices byte offsets into `text` (no UTF-16 copy).
  std::unique_ptr<UText, UText* (*)(UText*)> input(
      utext_openUTF8(nullptr, text.data(), int64_t(text.size()), &status), utext_close);
  std::unique_ptr<icu::RegexMatcher> matcher(llama3_pattern().matcher(status));
  LLM_CHECK(U_SUCCESS(status), std::string("pre-tokenizer: ") + u_errorName(status));
  matcher->reset(input.get());
  std::vector<std::string_view> pieces;
  size_t done = 0;
  while (matcher->find(status) && U_SUCCESS(status)) {
    const auto begin = size_t(matcher->start64(status)), end = size_t(matcher->end64(status));
    // The pattern matches every character, but bytes of malformed UTF-8 must not be dropped.
    if (begin > done) pieces.push_back(text.substr(done, begin - done));
    pieces.push_back(text.substr(begin, end - begin));
    done = end;
  }
  LLM_CHECK(U_SUCCESS(status), std::string("pre-tokenizer: ") + u_errorName(status));
  if (done < text.size()) pieces.push_back(text.substr(done));
  return pieces;
}

std::optional<std::string> find_tiktoken_model(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  for (const char* inside : {"tokenizer.model", "original/tokenizer.model"})
    if (fs::is_regular_file(fs::path(path) / inside, ec)) return (fs::path(path) / inside).string();
  return std::nullopt;
}

BpeTokenizer::BpeTokenizer(const std::string& model_path) {
  read_ranks(model_path);
  read_specials(model_path);
}

void BpeTokenizer::read_ranks(const std::string& path) {
  const std::string text = read_whole_file(path, "a tiktoken ranks file ('base64 rank' per line)");
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
  tokens_.assign(count, "");
  for (Line& l : lines) {
    const std::string at = path + ":" + std::to_string(l.number) + ": ";
    if (l.rank >= count)
      throw UserError(at + "expected a rank below " + std::to_string(count) +
                      " (ranks are 0..N-1 for N lines), got " + std::to_string(l.rank));
    if (line_of_rank[l.rank] != 0)
      throw UserError(at + "expected a rank not used before, got " + std::to_string(l.rank) +
                      " again (line " + std::to_string(line_of_rank[l.rank]) + ")");
    line_of_rank[l.rank] = l.number;
    tokens_[l.rank] = std::move(l.bytes);
  }
  // Views into tokens_, which no longer moves.
  ranks_.reserve(tokens_.size());
  for (int32_t rank = 0; rank < int32_t(count); rank++)
    if (!ranks_.emplace(tokens_[rank], rank).second)
      throw UserError(path + ":" + std::to_string(line_of_rank[rank]) +
                      ": expected token bytes not ranked before, got the bytes of rank " +
                      std::to_string(ranks_.at(tokens_[rank])) + " again");
  // BPE starts from single bytes: any text must be expressible.
  for (int byte = 0; byte < 256; byte++) {
    if (!ranks_.count(std::string(1, char(byte)))) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", byte);
      throw UserError(path + ": expected a token for each of the 256 single bytes, got none for byte " + hex);
    }
  }
  ranks_hash_ = fnv1a64(text.data(), text.size());
}

void BpeTokenizer::read_specials(const std::string& model_path) {
  const std::string json_path = (fs::path(model_path).parent_path() / "special_tokens.json").string();
  std::error_code ec;
  if (fs::exists(json_path, ec)) {
    const std::string expected = "a JSON list of special token names, in id order";
    nlohmann::json list;
    try {
      list = nlohmann::json::parse(read_whole_file(json_path, expected));
    } catch (const nlohmann::json::parse_error& e) {
      throw UserError(json_path + ": expected " + expected + ", got invalid JSON (byte " +
                      std::to_string(e.byte) + ")");
    } catch (const nlohmann::json::exception& e) {  // out_of_range: a number like 1e999
      throw UserError(json_path + ": expected " + expected + ", got invalid JSON (" + e.what() + ")");
    }
    if (!list.is_array()) throw UserError(json_path + ": expected " + expected + ", got a JSON " + list.type_name());
    for (const nlohmann::json& item : list) {
      if (!item.is_string() || item.get<std::string>().empty())
        throw UserError(json_path + ": [" + std::to_string(specials_.size()) +
                        "]: expected a non-empty string, got " + item.dump());
      specials_.push_back(item.get<std::string>());
    }
  } else {
    specials_ = llama31_special_tokens();
  }
  const std::string source = fs::exists(json_path, ec) ? json_path : "Llama 3.1's special tokens";
  for (size_t i = 0; i < specials_.size(); i++) {
    const int32_t id = int32_t(tokens_.size() + i);
    if (!special_ids_.emplace(specials_[i], id).second)
      throw UserError(source + ": [" + std::to_string(i) + "]: expected a name not listed before, got " +
                      specials_[i] + " again");
    specials_by_first_byte_[static_cast<unsigned char>(specials_[i][0])].push_back(id);
  }
  for (std::vector<int32_t>& ids : specials_by_first_byte_)  // a name that prefixes another loses
    std::stable_sort(ids.begin(), ids.end(), [this](int32_t a, int32_t b) {
      return specials_[a - tokens_.size()].size() > specials_[b - tokens_.size()].size();
    });
  bos_ = special("<|begin_of_text|>", source);
  eos_ = special("<|end_of_text|>", source);
  // Llama 3 has no padding token; Llama 3.1 fine-tunes pad with this one.
  pad_ = special("<|finetune_right_pad_id|>", source);
  std::string names;
  for (const std::string& s : specials_) names += s + "\n";
  char hash[24];
  std::snprintf(hash, sizeof hash, "%016llx",
                static_cast<unsigned long long>(fnv1a64(names.data(), names.size(), ranks_hash_)));
  name_ = "tiktoken " + std::to_string(tokens_.size()) + "+" + std::to_string(specials_.size()) + " #" + hash;
}

int32_t BpeTokenizer::special(const std::string& token, const std::string& source) const {
  auto it = special_ids_.find(token);
  if (it == special_ids_.end())
    throw UserError(source + ": expected " + token + " among the special tokens, got none");
  return it->second;
}

int32_t BpeTokenizer::vocab_size() const { return int32_t(tokens_.size() + specials_.size()); }

int32_t BpeTokenizer::rank_of(std::string_view bytes) const {
  auto it = ranks_.find(bytes);
  return it == ranks_.end() ? kNotAToken : it->second;
}

// tiktoken's byte-pair merge: start from single bytes and merge the adjacent pair whose
// concatenation has the lowest rank (the leftmost on ties) until no pair is a token.
void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (int32_t whole = rank_of(piece); whole != kNotAToken) {
    out.push_back(whole);
    return;
  }
  struct Part {
    size_t start;
    int32_t pair_rank;  // rank of this part joined with the next one
  };
  std::vector<Part> parts(piece.size() + 1);
  auto joined_rank = [&](size_t i) {
    return i + 2 < parts.size() ? rank_of(piece.substr(parts[i].start, parts[i + 2].start - parts[i].start))
                                : kNotAToken;
  };
  for (size_t i = 0; i < parts.size(); i++) parts[i].start = i;
  for (size_t i = 0; i < parts.size(); i++) parts[i].pair_rank = joined_rank(i);
  while (parts.size() > 2) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < parts.size(); i++)
      if (parts[i].pair_rank < parts[best].pair_rank) best = i;
    if (parts[best].pair_rank == kNotAToken) break;
    parts.erase(parts.begin() + best + 1);
    parts[best].pair_rank = joined_rank(best);
    if (best > 0) parts[best - 1].pair_rank = joined_rank(best - 1);
  }
  for (size_t i = 0; i + 1 < parts.size(); i++)
    out.push_back(rank_of(piece.substr(parts[i].start, parts[i + 1].start - parts[i].start)));
}

void BpeTokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  for (std::string_view piece : llama3_pre_tokenize(text)) encode_piece(piece, out);
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  encode_ordinary(text, ids);
  return ids;
}

std::vector<int32_t> BpeTokenizer::encode_with_specials(const std::string& text) const {
  std::vector<int32_t> ids;
  size_t plain = 0;  // start of the text not yet encoded
  for (size_t i = 0; i < text.size();) {
    int32_t found = -1;
    for (int32_t id : specials_by_first_byte_[static_cast<unsigned char>(text[i])]) {
      const std::string& s = specials_[id - tokens_.size()];
      if (text.compare(i, s.size(), s) == 0) {
        found = id;
        break;
      }
    }
    if (found < 0) {
      i++;
      continue;
    }
    encode_ordinary(std::string_view(text).substr(plain, i - plain), ids);
    ids.push_back(found);
    i += specials_[found - tokens_.size()].size();
    plain = i;
  }
  encode_ordinary(std::string_view(text).substr(plain), ids);
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (int32_t id : ids)
    if (id >= 0 && size_t(id) < tokens_.size()) text += tokens_[id];
  return text;
}

std::optional<int32_t> BpeTokenizer::special_id(const std::string& name) const {
  auto it = special_ids_.find(name);
  if (it == special_ids_.end()) return std::nullopt;
  return it->second;
}

}  // namespace llm
