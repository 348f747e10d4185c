// defines: ByteTokenizer::encode, ByteTokenizer::decode, with_special_tokens, make_tokenizer,
// save_tokenizer_files
#include "io/tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/user_error.h"
#include "io/bpe_tokenizer.h"
#include "io/durable_file.h"
#include "io/json_text.h"

namespace llm {

std::vector<int32_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); i++) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  text.reserve(ids.size());
  for (int32_t id : ids)
    if (id >= 0 && id < 256) text.push_back(static_cast<char>(id));
  return text;
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& tokenizer_file, const AddedTokensOverrides& overrides,
                                          const std::string& where) {
  if (tokenizer_file.empty()) {
    if (!overrides.empty())
      throw UserError(where + ": added_tokens_overrides: expected a tokenizer_config whose added tokens to rename, "
                      "got the byte tokenizer");
    return std::make_unique<ByteTokenizer>();
  }
  BpeVocabulary vocabulary = read_bpe_vocabulary(tokenizer_file);
  apply_added_tokens_overrides(vocabulary, overrides, where);
  return std::make_unique<BpeTokenizer>(std::move(vocabulary));
}

namespace {

// Another tokenizer with other BOS/EOS/PAD ids; its name says so, so the token cache of one
// mapping is never reused for another.
class RemappedTokenizer final : public Tokenizer {
 public:
  RemappedTokenizer(std::unique_ptr<Tokenizer> base, int32_t bos, int32_t eos, int32_t pad, bool pad_named)
      : base_(std::move(base)), bos_(bos), eos_(eos), pad_(pad), pad_named_(pad_named) {}
  std::string name() const override {
    return base_->name() + " bos=" + std::to_string(bos_) + " eos=" + std::to_string(eos_) +
           " pad=" + std::to_string(pad_);
  }
  int32_t vocab_size() const override { return base_->vocab_size(); }
  int32_t base_vocab_size() const override { return base_->base_vocab_size(); }
  int32_t bos() const override { return bos_; }
  int32_t eos() const override { return eos_; }
  int32_t pad() const override { return pad_; }
  bool pad_named() const override { return pad_named_; }
  std::vector<int32_t> encode(const std::string& text) const override { return base_->encode(text); }
  std::string decode(const std::vector<int32_t>& ids) const override { return base_->decode(ids); }
  std::optional<int32_t> special_id(const std::string& name) const override {
    return base_->special_id(name);
  }
  std::vector<int32_t> encode_with_specials(const std::string& text) const override {
    return base_->encode_with_specials(text);
  }
  std::optional<std::string> special_name(int32_t id) const override { return base_->special_name(id); }

 private:
  std::unique_ptr<Tokenizer> base_;
  int32_t bos_, eos_, pad_;
  bool pad_named_;
};

}  // namespace

std::unique_ptr<Tokenizer> with_special_tokens(std::unique_ptr<Tokenizer> base,
                                               const SpecialTokens& special,
                                               const std::string& where) {
  if (special.empty()) return base;
  auto id = [&](const std::string& name, const char* key, int32_t own) {
    if (name.empty()) return own;
    if (std::optional<int32_t> found = base->special_id(name)) return *found;
    throw UserError(where + ": special_tokens." + key + ": expected one of the " + base->name() +
                    " tokenizer's special tokens, or one of `tokens`, got '" + name + "'");
  };
  const int32_t bos = id(special.bos_token, "bos_token", base->bos());
  const int32_t eos = id(special.eos_token, "eos_token", base->eos());
  const int32_t pad = id(special.pad_token, "pad_token", base->pad());
  const bool pad_named = !special.pad_token.empty() || base->pad_named();
  return std::make_unique<RemappedTokenizer>(std::move(base), bos, eos, pad, pad_named);
}

std::vector<std::string> save_tokenizer_files(const TokenizerFiles& files, const std::string& dir) {
  const std::string& tokenizer_file = files.tokenizer_file;
  if (tokenizer_file.empty()) return {};
  namespace fs = std::filesystem;
  const fs::path from = fs::path(tokenizer_file).parent_path();
  std::error_code ec;
  auto write = [&](const std::string& name, const std::string& text) {
    write_text_durably((fs::path(dir) / name).string(), text);
    return name;
  };
  auto copy = [&](const std::string& name, const fs::path& source) {
    return write(name, read_whole_file(source.string(), "a tokenizer file"));
  };
  auto read_json = [](const fs::path& path, const char* what) {
    return parse_json_text<nlohmann::ordered_json>(read_whole_file(path.string(), what), path.string(), what);
  };
  const bool json_tokenizer = fs::path(tokenizer_file).extension() == ".json";
  std::vector<std::string> names;
  if (!json_tokenizer) {
    names.push_back(copy("tokenizer.model", tokenizer_file));
    if (!files.overrides.empty()) {  // the names in id order, renamed
      BpeVocabulary vocabulary = read_bpe_vocabulary(tokenizer_file);
      apply_added_tokens_overrides(vocabulary, files.overrides, tokenizer_file);
      names.push_back(write("special_tokens.json", nlohmann::json(vocabulary.specials).dump() + "\n"));
    } else if (fs::exists(from / "special_tokens.json", ec)) {
      names.push_back(copy("special_tokens.json", from / "special_tokens.json"));
    }
    if (!files.chat_template.empty()) names.push_back(write("chat_template.jinja", files.chat_template));
  } else {
    std::map<std::string, std::string> renamed;  // old name -> new
    // transformers' record of an added token (tokenizer.json's added_tokens, tokenizer_config.json's
    // added_tokens_decoder without the id).
    const auto added_entry = [](const std::string& content) {
      return nlohmann::ordered_json{{"content", content}, {"single_word", false}, {"lstrip", false},
                                    {"rstrip", false},    {"normalized", false},  {"special", false}};
    };
    if (files.overrides.empty() && files.added_tokens.empty()) {
      names.push_back(copy("tokenizer.json", tokenizer_file));
    } else {  // each renamed added token's content, and the added tokens
      nlohmann::ordered_json tokenizer = read_json(tokenizer_file, "a tokenizer.json");
      for (auto& added : tokenizer["added_tokens"])
        if (auto it = files.overrides.find(added.value("id", int64_t(-1))); it != files.overrides.end()) {
          renamed[added.value("content", "")] = it->second;
          added["content"] = it->second;
        }
      for (const auto& [id, content] : files.added_tokens) {
        nlohmann::ordered_json entry = {{"id", id}};
        entry.update(added_entry(content));
        tokenizer["added_tokens"].push_back(entry);
      }
      names.push_back(write("tokenizer.json", tokenizer.dump(2) + "\n"));
    }
    nlohmann::ordered_json config = nlohmann::ordered_json::object();
    if (fs::exists(from / "tokenizer_config.json", ec)) config = read_json(from / "tokenizer_config.json", "a tokenizer_config.json");
    for (const auto& [key, name] : {std::pair{"bos_token", files.special.bos_token}, {"eos_token", files.special.eos_token},
                                    {"pad_token", files.special.pad_token}})
      if (!name.empty()) config[key] = name;
    for (const auto& [id, name] : files.overrides)
      if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].contains(std::to_string(id)))
        config["added_tokens_decoder"][std::to_string(id)]["content"] = name;
    for (const auto& [id, content] : files.added_tokens) config["added_tokens_decoder"][std::to_string(id)] = added_entry(content);
    for (const char* role : {"bos_token", "eos_token", "pad_token", "unk_token"})  // a renamed token keeps its role
      if (config.contains(role) && config[role].is_string() && renamed.count(config[role].get<std::string>()))
        config[role] = renamed.at(config[role].get<std::string>());
    if (!files.chat_template.empty()) config["chat_template"] = files.chat_template;
    names.push_back(write("tokenizer_config.json", config.dump(2) + "\n"));
  }
  if (files.chat_template.empty() && fs::exists(from / "chat_template.jinja", ec))
    names.push_back(copy("chat_template.jinja", from / "chat_template.jinja"));
  return names;
}

}  // namespace llm
