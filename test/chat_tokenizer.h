// A tokenizer small enough to read masks by hand, for the chat tests: one token per byte, then
// BOS/EOS/PAD, then Llama 3's and ChatML's chat markers (decoded as short names: <h>, <eot>, ...).
#pragma once
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "engine/ops.h"  // kIgnoreIndex
#include "io/examples.h"
#include "io/tokenizer.h"

namespace llm::testing {

// Bytes, then BOS/EOS/PAD, then the chat markers: enough vocabulary to check masks by hand.
// Its EOS is <|end_of_text|> unless `eos` names another of its tokens (an Instruct tokenizer's
// <|eot_id|>, say).
class FakeTokenizer final : public Tokenizer {
  using Ids = std::vector<int32_t>;

 public:
  explicit FakeTokenizer(int32_t eos = 257) : eos_(eos) {}
  std::string name() const override { return "fake"; }
  int32_t vocab_size() const override { return 264; }
  int32_t bos() const override { return 256; }
  int32_t eos() const override { return eos_; }
  int32_t pad() const override { return 258; }
  Ids encode(const std::string& text) const override {
    Ids ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string decode(const Ids& ids) const override {
    std::string s;
    for (int32_t id : ids) s += id < 256 ? std::string(1, char(id)) : kShort.at(id);
    return s;
  }
  std::optional<int32_t> special_id(const std::string& name) const override {
    for (const auto& [id, n] : kNames)
      if (n == name) return id;
    return std::nullopt;
  }
  std::optional<std::string> special_name(int32_t id) const override {
    auto it = kNames.find(id);
    return it == kNames.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  Ids encode_with_specials(const std::string& text) const override {
    Ids ids;
    for (size_t i = 0; i < text.size();) {
      bool special = false;
      for (const auto& [id, name] : kNames)
        if (text.compare(i, name.size(), name) == 0) {
          ids.push_back(id);
          i += name.size();
          special = true;
          break;
        }
      if (!special) ids.push_back(static_cast<unsigned char>(text[i++]));  // as encode
    }
    return ids;
  }
  inline static const std::map<int32_t, std::string> kNames = {
      {256, "<|begin_of_text|>"}, {257, "<|end_of_text|>"}, {259, "<|start_header_id|>"},
      {260, "<|end_header_id|>"}, {261, "<|eot_id|>"},      {262, "<|im_start|>"},
      {263, "<|im_end|>"}};
  // Short names, so expected strings stay readable.
  inline static const std::map<int32_t, std::string> kShort = {
      {256, "<bos>"}, {257, "<eos>"}, {258, "<pad>"}, {259, "<h>"},
      {260, "</h>"},  {261, "<eot>"}, {262, "<im>"},  {263, "</im>"}};

 private:
  int32_t eos_;
};

inline const FakeTokenizer kFake;

// The trained tokens of `ex` as text, runs that are not adjacent separated by "|".
inline std::string trained(const Example& ex) {
  std::string out;
  for (size_t i = 0; i < ex.tokens.size(); i++) {
    if (ex.labels[i] == kIgnoreIndex) continue;
    CHECK(ex.labels[i] == ex.tokens[i]);
    if (!out.empty() && ex.labels[i - 1] == kIgnoreIndex) out += "|";
    out += kFake.decode({ex.tokens[i]});
  }
  return out;
}

}  // namespace llm::testing
