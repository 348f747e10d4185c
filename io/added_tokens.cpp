// defines: with_added_tokens, new_token_ids
#include "io/added_tokens.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>

#include <fmt/core.h>

#include "engine/user_error.h"
#include "io/token_cache.h"  // fnv1a64

namespace llm {
namespace {

class AddedTokensTokenizer final : public Tokenizer {
 public:
  AddedTokensTokenizer(std::unique_ptr<Tokenizer> base, const std::vector<std::string>& tokens)
      : base_(std::move(base)), vocab_(base_->vocab_size()) {
    std::string list;
    for (const std::string& token : tokens) {
      int32_t id = vocab_;
      if (std::optional<int32_t> special = base_->special_id(token)) {
        id = *special;
      } else if (const std::vector<int32_t> ids = base_->encode(token); ids.size() == 1) {
        id = ids[0];
      } else {
        text_of_.emplace(vocab_++, token);
      }
      id_of_.emplace(token, id);
      list += token + '\x1f';
    }
    // The list's hash names it: a token cache of other tokens is another cache.
    name_ = fmt::format("{} +{} tokens {:016x}", base_->name(), tokens.size(), fnv1a64(list.data(), list.size()));
    for (const auto& [token, id] : id_of_) by_first_byte_[static_cast<unsigned char>(token[0])].push_back(&token);
  }
  std::string name() const override { return name_; }
  int32_t vocab_size() const override { return vocab_; }
  int32_t base_vocab_size() const override { return base_->base_vocab_size(); }
  int32_t bos() const override { return base_->bos(); }
  int32_t eos() const override { return base_->eos(); }
  int32_t pad() const override { return base_->pad(); }
  bool pad_named() const override { return base_->pad_named(); }
  std::vector<int32_t> encode(const std::string& text) const override { return split(text, false); }
  std::vector<int32_t> encode_with_specials(const std::string& text) const override { return split(text, true); }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    std::vector<int32_t> run;  // base ids, decoded together (a character may span tokens)
    for (int32_t id : ids) {
      auto added = text_of_.find(id);
      if (added == text_of_.end()) {
        run.push_back(id);
        continue;
      }
      out += base_->decode(run) + added->second;
      run.clear();
    }
    return out + base_->decode(run);
  }
  // An added token may play BOS, EOS or PAD (special_tokens) and marks turns in a chat template.
  std::optional<int32_t> special_id(const std::string& name) const override {
    if (auto it = id_of_.find(name); it != id_of_.end()) return it->second;
    return base_->special_id(name);
  }
  std::optional<std::string> special_name(int32_t id) const override {
    if (auto it = text_of_.find(id); it != text_of_.end()) return it->second;
    return base_->special_name(id);
  }

 private:
  // The text cut at each added token (leftmost, then longest), the rest encoded by the base.
  std::vector<int32_t> split(const std::string& text, bool specials) const {
    std::vector<int32_t> out;
    auto encode = [&](size_t begin, size_t end) {
      if (begin == end) return;
      const std::string piece = text.substr(begin, end - begin);
      for (int32_t id : specials ? base_->encode_with_specials(piece) : base_->encode(piece)) out.push_back(id);
    };
    size_t plain = 0;
    for (size_t at = 0; at < text.size();) {
      const std::string* found = nullptr;
      for (const std::string* token : by_first_byte_[static_cast<unsigned char>(text[at])])
        if ((!found || token->size() > found->size()) && text.compare(at, token->size(), *token) == 0) found = token;
      if (!found) {
        at++;
        continue;
      }
      encode(plain, at);
      out.push_back(id_of_.at(*found));
      at += found->size();
      plain = at;
    }
    encode(plain, text.size());
    return out;
  }

  std::unique_ptr<Tokenizer> base_;
  int32_t vocab_;
  std::map<std::string, int32_t> id_of_;    // every added token's id
  std::map<int32_t, std::string> text_of_;  // the new ones' text
  std::array<std::vector<const std::string*>, 256> by_first_byte_;  // id_of_'s keys
  std::string name_;
};

}  // namespace

std::unique_ptr<Tokenizer> with_added_tokens(std::unique_ptr<Tokenizer> base, const std::vector<std::string>& tokens,
                                             const std::string& where) {
  if (tokens.empty()) return base;
  std::set<std::string> seen;
  for (const std::string& token : tokens) {
    if (token.empty()) throw UserError(where + ": tokens: expected non-empty strings, got an empty one");
    if (!seen.insert(token).second) throw UserError(where + ": tokens: '" + token + "' is listed twice");
  }
  return std::make_unique<AddedTokensTokenizer>(std::move(base), tokens);
}

std::vector<std::pair<int32_t, std::string>> new_token_ids(const Tokenizer& tokenizer,
                                                           const std::vector<std::string>& tokens, int32_t base_vocab) {
  std::vector<std::pair<int32_t, std::string>> out;
  for (const std::string& token : tokens)
    if (std::optional<int32_t> id = tokenizer.special_id(token); id && *id >= base_vocab) out.emplace_back(*id, token);
  return out;
}

}  // namespace llm
