// What Llama 3's BPE tokenizer is made of, read from either file a model ships: Meta's tiktoken
// ranks file (original/tokenizer.model, with special_tokens.json beside it or Llama 3.1's 256
// special names) or Hugging Face's tokenizer.json (with tokenizer_config.json beside it naming
// BOS/EOS/PAD, as transformers and Axolotl read them). Both give the same token bytes by id.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace llm {

// meta-llama/llama3 tokenizer.py's pat_str, which HF's tokenizer.json repeats.
inline constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct BpeVocabulary {
  std::string source;                 // the file, for messages
  std::vector<std::string> tokens;    // bytes of token id (= its merge rank), all distinct
  std::vector<std::string> specials;  // names of the ids after `tokens`, in id order
  std::string bos, eos, pad;          // the specials' names chosen for these ("": Llama 3's own)
  std::string specials_source;        // where the special names (or the choice of them) came from
  std::string name;                   // kind, sizes and a hash of the files (the token cache's key)
};

// The tokenizer file a path names: the file itself, or inside a directory tokenizer.json (what
// transformers and Axolotl read), else tokenizer.model, else original/tokenizer.model (where
// Meta's HF repos keep the ranks); nullopt when none exists.
std::optional<std::string> find_bpe_tokenizer(const std::string& path);

// Either reader throws UserError, one line naming the file, on anything but a well-formed file.
BpeVocabulary read_tiktoken_vocabulary(const std::string& ranks_path);
BpeVocabulary read_hf_tokenizer_json(const std::string& json_path);

// "'text'" cut at 40 characters, for messages.
std::string quoted(std::string_view s);

}  // namespace llm
