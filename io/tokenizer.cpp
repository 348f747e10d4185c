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

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& tokenizer_file) {
  if (tokenizer_file.empty()) return std::make_unique<ByteTokenizer>();
  return std::make_unique<BpeTokenizer>(tokenizer_file);
}

namespace {

// Another tokenizer with other BOS/EOS/PAD ids; its name says so, so the token cache of one
// mapping is never reused for another.
class RemappedTokenizer final : public Tokenizer {
 public:
  RemappedTokenizer(std::unique_ptr<Tokenizer> base, int32_t bos, int32_t eos, int32_t pad)
      : base_(std::move(base)), bos_(bos), eos_(eos), pad_(pad) {}
  std::string name() const override {
    return base_->name() + " bos=" + std::to_string(bos_) + " eos=" + std::to_string(eos_) +
           " pad=" + std::to_string(pad_);
  }
  int32_t vocab_size() const override { return base_->vocab_size(); }
  int32_t bos() const override { return bos_; }
  int32_t eos() const override { return eos_; }
  int32_t pad() const override { return pad_; }
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
                    " tokenizer's special tokens (the vocabulary is not extended), got '" + name + "'");
  };
  const int32_t bos = id(special.bos_token, "bos_token", base->bos());
  const int32_t eos = id(special.eos_token, "eos_token", base->eos());
  const int32_t pad = id(special.pad_token, "pad_token", base->pad());
  return std::make_unique<RemappedTokenizer>(std::move(base), bos, eos, pad);
}

std::vector<std::string> save_tokenizer_files(const std::string& tokenizer_file, const SpecialTokens& special,
                                              const std::string& chat_template, const std::string& dir) {
  if (tokenizer_file.empty()) return {};
  namespace fs = std::filesystem;
  const fs::path from = fs::path(tokenizer_file).parent_path();
  std::error_code ec;
  auto copy = [&](const std::string& name, const fs::path& source) {
    write_text_durably((fs::path(dir) / name).string(), read_whole_file(source.string(), "a tokenizer file"));
    return name;
  };
  const bool json_tokenizer = fs::path(tokenizer_file).extension() == ".json";
  std::vector<std::string> names;
  if (!chat_template.empty() && !json_tokenizer) {
    write_text_durably((fs::path(dir) / "chat_template.jinja").string(), chat_template);
    names.push_back("chat_template.jinja");
  } else if (chat_template.empty() && fs::exists(from / "chat_template.jinja", ec)) {
    names.push_back(copy("chat_template.jinja", from / "chat_template.jinja"));
  }
  if (!json_tokenizer) {
    names.insert(names.begin(), copy("tokenizer.model", tokenizer_file));
    if (fs::exists(from / "special_tokens.json", ec)) names.push_back(copy("special_tokens.json", from / "special_tokens.json"));
    return names;
  }
  nlohmann::json config = nlohmann::json::object();
  if (fs::exists(from / "tokenizer_config.json", ec))
    config = parse_json_text(read_whole_file((from / "tokenizer_config.json").string(), "a tokenizer_config.json"),
                             (from / "tokenizer_config.json").string(), "a tokenizer_config.json");
  for (const auto& [key, name] : {std::pair{"bos_token", special.bos_token}, {"eos_token", special.eos_token},
                                  {"pad_token", special.pad_token}})
    if (!name.empty()) config[key] = name;
  if (!chat_template.empty()) config["chat_template"] = chat_template;
  write_text_durably((fs::path(dir) / "tokenizer_config.json").string(), config.dump(2) + "\n");
  names.insert(names.begin(), {copy("tokenizer.json", tokenizer_file), "tokenizer_config.json"});
  return names;
}

}  // namespace llm
