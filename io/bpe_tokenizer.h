// BpeTokenizer: Llama 3's byte-level BPE, read from Meta's tiktoken ranks file or HF's
// tokenizer.json (io/bpe_vocabulary.h). Text is cut into pieces by Llama 3's pre-tokenizer regex,
// then each piece is merged byte pair by byte pair, lowest rank first, exactly as tiktoken does.
// The 256 special tokens follow the ranks (128000.. for Llama 3).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/bpe_vocabulary.h"
#include "io/tokenizer.h"

namespace llm {

// Llama 3's pre-tokenizer: contractions, letter runs with one leading non-letter, numbers in
// groups of 1-3, punctuation runs, newline runs and whitespace. Returns views into `text` that
// cover it end to end.
std::vector<std::string_view> llama3_pre_tokenize(std::string_view text);

// Llama 3's names for the tokens that play BOS, EOS and PAD when the files name none.
inline constexpr const char* kDefaultBos = "<|begin_of_text|>";
inline constexpr const char* kDefaultEos = "<|end_of_text|>";
inline constexpr const char* kDefaultPad = "<|finetune_right_pad_id|>";

// The vocabulary of a tokenizer.json (by its extension) or a tiktoken ranks file.
BpeVocabulary read_bpe_vocabulary(const std::string& path);

// `vocabulary` with its added (special) tokens renamed as Axolotl's added_tokens_overrides says;
// UserError naming `where` and the key on an id that is no added token's or a name taken.
void apply_added_tokens_overrides(BpeVocabulary& vocabulary, const AddedTokensOverrides& overrides,
                                  const std::string& where);

class BpeTokenizer final : public Tokenizer {
 public:
  // Reads `path`: a tokenizer.json (by its extension) or a tiktoken ranks file. Throws
  // UserError on a bad file, or when BOS or EOS is not among the special tokens.
  explicit BpeTokenizer(const std::string& path);
  explicit BpeTokenizer(BpeVocabulary vocabulary);
  BpeTokenizer(const BpeTokenizer&) = delete;  // ranks_ views the strings of tokens_
  BpeTokenizer& operator=(const BpeTokenizer&) = delete;

  std::string name() const override { return name_; }
  int32_t vocab_size() const override;
  int32_t base_vocab_size() const override { return static_cast<int32_t>(tokens_.size()); }  // the ranks
  int32_t bos() const override { return bos_; }
  int32_t eos() const override { return eos_; }
  int32_t pad() const override { return pad_; }
  bool pad_named() const override { return pad_named_; }
  std::vector<int32_t> encode(const std::string& text) const override;  // specials are text
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::optional<int32_t> special_id(const std::string& name) const override;
  // As encode, but a special token's name in the text ("<|eot_id|>") becomes its id: for chat
  // templates, never for user data (which could then forge control tokens).
  std::vector<int32_t> encode_with_specials(const std::string& text) const override;
  std::optional<std::string> special_name(int32_t id) const override;

 private:
  int32_t special(const std::string& token, const std::string& source) const;
  int32_t rank_of(std::string_view bytes) const;  // the largest int32 when not a token
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;

  std::vector<std::string> tokens_;                         // (ranks) bytes of token id = rank
  std::unordered_map<std::string_view, int32_t> ranks_;     // views into tokens_
  std::vector<std::string> specials_;                       // (256) names of ids ranks.. on
  std::unordered_map<std::string, int32_t> special_ids_;
  std::array<std::vector<int32_t>, 256> specials_by_first_byte_;  // longest name first
  std::string name_;  // BpeVocabulary::name
  int32_t bos_ = 0, eos_ = 0, pad_ = 0;
  bool pad_named_ = false;
};

}  // namespace llm
