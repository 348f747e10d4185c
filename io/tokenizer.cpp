// defines: ByteTokenizer::encode, ByteTokenizer::decode, make_tokenizer
#include "io/tokenizer.h"

#include "io/bpe_tokenizer.h"

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

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& tiktoken_file) {
  if (tiktoken_file.empty()) return std::make_unique<ByteTokenizer>();
  return std::make_unique<BpeTokenizer>(tiktoken_file);
}

}  // namespace llm
