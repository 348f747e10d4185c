// defines: llama3_pre_tokenize, BpeTokenizer (its indexes, encode, decode)
#include "io/bpe_tokenizer.h"

#include <unicode/regex.h>
#include <unicode/utext.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>

#include "engine/check.h"
#include "engine/user_error.h"

namespace llm {
namespace {

namespace fs = std::filesystem;

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

BpeVocabulary read_bpe_vocabulary(const std::string& path) {
  return fs::path(path).extension() == ".json" ? read_hf_tokenizer_json(path) : read_tiktoken_vocabulary(path);
}

void apply_added_tokens_overrides(BpeVocabulary& v, const AddedTokensOverrides& overrides, const std::string& where) {
  const int64_t first = int64_t(v.tokens.size()), end = first + int64_t(v.specials.size());
  const std::string key = where + ": added_tokens_overrides: ";
  std::vector<std::string> renamed = v.specials;
  for (const auto& [id, name] : overrides) {
    if (id < first || id >= end)
      throw UserError(key + "expected the id of an added token of " + v.source + " (" + std::to_string(first) + ".." +
                      std::to_string(end - 1) + "), got " + std::to_string(id));
    if (name.empty()) throw UserError(key + "expected a name for token " + std::to_string(id) + ", got an empty one");
    const std::string& old = v.specials[size_t(id - first)];
    for (const auto& [role, current] : {std::pair{"BOS", v.bos.empty() ? kDefaultBos : v.bos},
                                        {"EOS", v.eos.empty() ? kDefaultEos : v.eos}})
      if (old == current)
        throw UserError(key + "expected a reserved token's id, got " + std::to_string(id) + ", the tokenizer's " + role +
                        " " + old + " (special_tokens chooses which token plays it)");
    renamed[size_t(id - first)] = name;
    v.name += " " + std::to_string(id) + "=" + name;  // another vocabulary: another token cache
  }
  // Text finds a special token by its name, and the saved tokenizer.json keys its vocabulary by
  // it: a name two tokens share, renamed or ordinary, would make the export another tokenizer.
  for (const auto& [id, name] : overrides) {
    for (size_t i = 0; i < renamed.size(); i++)
      if (renamed[i] == name && first + int64_t(i) != id)
        throw UserError(key + "expected a name no other token has, got " + name + " (token " + std::to_string(first + int64_t(i)) + ")");
    const auto ordinary = std::find(v.tokens.begin(), v.tokens.end(), name);
    if (ordinary != v.tokens.end())
      throw UserError(key + "expected a name no other token has, got " + name + " (token " +
                      std::to_string(ordinary - v.tokens.begin()) + ", an ordinary one)");
  }
  for (const auto& [id, name] : overrides)
    if (v.specials[size_t(id - first)] == (v.pad.empty() ? kDefaultPad : v.pad)) v.pad = name;  // PAD stays this token
  v.specials = std::move(renamed);
}

BpeTokenizer::BpeTokenizer(const std::string& path) : BpeTokenizer(read_bpe_vocabulary(path)) {}

BpeTokenizer::BpeTokenizer(BpeVocabulary vocabulary) : tokens_(std::move(vocabulary.tokens)), specials_(std::move(vocabulary.specials)) {
  // Views into tokens_, which no longer moves; both readers made the bytes distinct.
  ranks_.reserve(tokens_.size());
  for (int32_t rank = 0; rank < int32_t(tokens_.size()); rank++) ranks_.emplace(tokens_[rank], rank);
  // BPE starts from single bytes: any text must be expressible.
  for (int byte = 0; byte < 256; byte++) {
    if (!ranks_.count(std::string(1, char(byte)))) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", byte);
      throw UserError(vocabulary.source + ": expected a token for each of the 256 single bytes, got none for byte " + hex);
    }
  }
  for (size_t i = 0; i < specials_.size(); i++) {
    const int32_t id = int32_t(tokens_.size() + i);
    special_ids_.emplace(specials_[i], id);
    specials_by_first_byte_[static_cast<unsigned char>(specials_[i][0])].push_back(id);
  }
  for (std::vector<int32_t>& ids : specials_by_first_byte_)  // a name that prefixes another loses
    std::stable_sort(ids.begin(), ids.end(), [this](int32_t a, int32_t b) {
      return specials_[a - tokens_.size()].size() > specials_[b - tokens_.size()].size();
    });
  const std::string& source = vocabulary.specials_source;
  bos_ = special(vocabulary.bos.empty() ? kDefaultBos : vocabulary.bos, source);
  eos_ = special(vocabulary.eos.empty() ? kDefaultEos : vocabulary.eos, source);
  // Llama 3 has no padding token: Llama 3.1 fine-tunes pad with its own, Llama 3.0 has none
  // (its padded positions are masked, so EOS serves). A config's special_tokens.pad_token wins.
  const bool has_pad_token = special_ids_.count(kDefaultPad) > 0;
  pad_named_ = !vocabulary.pad.empty();
  pad_ = pad_named_                ? special(vocabulary.pad, source)
         : has_pad_token          ? special_ids_.at(kDefaultPad)
                                  : eos_;
  name_ = std::move(vocabulary.name);
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

std::optional<std::string> BpeTokenizer::special_name(int32_t id) const {
  if (id < int32_t(tokens_.size()) || id >= vocab_size()) return std::nullopt;
  return specials_[size_t(id) - tokens_.size()];
}

std::optional<int32_t> BpeTokenizer::special_id(const std::string& name) const {
  auto it = special_ids_.find(name);
  if (it == special_ids_.end()) return std::nullopt;
  return it->second;
}

}  // namespace llm
