// Tokenizer: text <-> token ids. ByteTokenizer is the default when the model has no tokenizer
// file: one token per byte plus BOS, EOS and PAD (vocab 259, the `tiny` preset's vocab_size).
// Llama 3's BPE tokenizer is io/bpe_tokenizer.h.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace llm {

// The interface the data pipeline sees: ByteTokenizer or Llama 3's BpeTokenizer stand behind it.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string name() const = 0;  // identifies the vocabulary in the token cache checksum
  virtual int32_t vocab_size() const = 0;
  // The vocabulary without its added and special tokens (HF's tokenizer.vocab_size; Llama 3's
  // 128000): the ids below it are plain tokens.
  virtual int32_t base_vocab_size() const { return vocab_size(); }
  virtual int32_t bos() const = 0;
  virtual int32_t eos() const = 0;
  virtual int32_t pad() const = 0;
  // Whether the tokenizer's files (or the config's special_tokens) name PAD, as HF's pad_token is
  // set; false where pad() is a stand-in (HF's pad_token is None there: TRL pads with EOS).
  virtual bool pad_named() const { return true; }
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;  // no BOS/EOS added
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;   // specials skipped
  // The id of a special token by name ("<|eot_id|>"), for chat templates; nullopt when the
  // vocabulary has no such token.
  virtual std::optional<int32_t> special_id(const std::string& name) const = 0;
  // As encode, but a special token's name in the text ("<|eot_id|>") becomes its id: how a
  // rendered Jinja chat template is read (as transformers tokenizes apply_chat_template's text).
  virtual std::vector<int32_t> encode_with_specials(const std::string& text) const = 0;
  // The name of the special token `id`; nullopt for any other id.
  virtual std::optional<std::string> special_name(int32_t id) const = 0;
};

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kBos = 256, kEos = 257, kPad = 258, kVocabSize = 259;

  std::string name() const override { return "byte"; }
  int32_t vocab_size() const override { return kVocabSize; }
  int32_t base_vocab_size() const override { return kBos; }  // the bytes
  int32_t bos() const override { return kBos; }
  int32_t eos() const override { return kEos; }
  int32_t pad() const override { return kPad; }
  std::vector<int32_t> encode(const std::string& text) const override;  // id = byte value
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::optional<int32_t> special_id(const std::string&) const override { return std::nullopt; }
  std::vector<int32_t> encode_with_specials(const std::string& text) const override { return encode(text); }
  std::optional<std::string> special_name(int32_t) const override { return std::nullopt; }
};

// Axolotl's special_tokens: which entries of the vocabulary play BOS, EOS and PAD (empty: the
// tokenizer's own, with any `tokens` added: io/added_tokens.h).
struct SpecialTokens {
  std::string bos_token, eos_token, pad_token;
  bool empty() const { return bos_token.empty() && eos_token.empty() && pad_token.empty(); }
};

// `base` with the special tokens named in `special` as its BOS/EOS/PAD; a name that is not one
// of its special tokens is a UserError naming `where` (the config file) and the key.
std::unique_ptr<Tokenizer> with_special_tokens(std::unique_ptr<Tokenizer> base,
                                               const SpecialTokens& special,
                                               const std::string& where);

// Axolotl's added_tokens_overrides: the id of an added (special) token -> its new name, e.g. a
// Llama 3 reserved token renamed <|im_start|> for ChatML; the vocabulary keeps its size.
using AddedTokensOverrides = std::map<int64_t, std::string>;

// BpeTokenizer on a tokenizer file (a config's tokenizer_config: tokenizer.json or a tiktoken
// ranks file) when one is given, its added tokens renamed as `overrides` says, else
// ByteTokenizer. UserError naming `where` (the config) and added_tokens_overrides when an id is
// no added token's, a name is another token's already, or there is no tokenizer file to rename in.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& tokenizer_file,
                                          const AddedTokensOverrides& overrides = {},
                                          const std::string& where = "");

// What a run saves beside its model, as HF's Trainer leaves a directory AutoTokenizer loads.
struct TokenizerFiles {
  std::string tokenizer_file;  // the config's tokenizer_config; empty: the byte tokenizer, no files
  SpecialTokens special;       // recorded as Axolotl's special_tokens are
  std::string chat_template;   // the template the run trained with; empty: the tokenizer's own
  AddedTokensOverrides overrides;
  // Tokens the run added (io/added_tokens.h: new_token_ids): listed among tokenizer.json's added
  // tokens (not special, not normalized, as transformers' add_tokens records them).
  std::vector<std::pair<int32_t, std::string>> added_tokens;
};

// Writes `files` into `dir`: tokenizer.json with its tokenizer_config.json (`special` and
// `overrides` recorded in them), or tokenizer.model with special_tokens.json (renamed as
// `overrides` says); and the chat template: `chat_template` when given (tokenizer_config.json's
// chat_template, or chat_template.jinja beside tokenizer.model), else the tokenizer's own
// chat_template.jinja if it has one. Returns the names written.
std::vector<std::string> save_tokenizer_files(const TokenizerFiles& files, const std::string& dir);

}  // namespace llm
