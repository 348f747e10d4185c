// Llama 3's BPE tokenizer (io/bpe_tokenizer): the pre-tokenizer regex, byte-pair merges, special
// tokens and every bad ranks / special_tokens.json file, on a small ranks file built here; then
// Meta's real ranks file (vectors from tiktoken on the same file), skipped when it is absent.
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "io/added_tokens.h"
#include "io/bpe_tokenizer.h"
#include "train/config.h"
#include "engine/user_error.h"
#include "test/test_files.h"
#include "test/tokenizer_fixture.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;
using Pieces = std::vector<std::string>;

namespace {

const BpeTokenizer& small() {
  static TempDir scratch;
  static BpeTokenizer tok(scratch.write("tokenizer.model", small_ranks_text()));
  return tok;
}

Pieces split(const std::string& text) {
  Pieces out;
  for (std::string_view p : llama3_pre_tokenize(text)) out.emplace_back(p);
  return out;
}

// The UserError message of loading `model_path` (checked to be one line), or "(no error)".
std::string load_error(const std::string& model_path) {
  try {
    BpeTokenizer tok(model_path);
  } catch (const UserError& e) {
    std::string message = e.what();
    CHECK(message.find('\n') == std::string::npos);
    return message;
  }
  return "(no error)";
}

int32_t id(char byte) { return static_cast<unsigned char>(byte); }
int32_t merge(const std::string& token) {
  for (size_t i = 0; i < kMerges.size(); i++)
    if (kMerges[i] == token) return int32_t(256 + i);
  FAIL("no merge " << token);
  return -1;
}

const std::string kMixedText =
    "Llama 3's tokenizer: naïve café, Ωmega-3 (x²+1) = 42!\n\n  Indented\tcode();\r\n"
    "中文字符和日本語のテキスト, 한국어도. Emoji: 🎉👍🏽🇫🇷 and ZWJ 👩‍💻.\n"
    "Numbers 1234567 and 3.14159, URLs https://example.com/a?b=c#d, trailing spaces   \n";

}  // namespace

TEST_CASE("pre-tokenizer: Llama 3's regex splits (expected lists from Python's regex module)") {
  CHECK(split("I'm don't WE'LL they've") ==
        Pieces{"I", "'m", " don", "'t", " WE", "'LL", " they", "'ve"});
  CHECK(split("12345678 x1234") == Pieces{"123", "456", "78", " x", "123", "4"});
  CHECK(split(" 42") == Pieces{" ", "42"});
  CHECK(split("a  b   c") == Pieces{"a", " ", " b", "  ", " c"});
  CHECK(split("hi  ") == Pieces{"hi", "  "});
  CHECK(split("hello\n\nworld") == Pieces{"hello", "\n\n", "world"});
  CHECK(split("  \n\n  x") == Pieces{"  \n\n", " ", " x"});
  CHECK(split("line 1\r\nline 2") == Pieces{"line", " ", "1", "\r\n", "line", " ", "2"});
  CHECK(split("x!!!\n\ny") == Pieces{"x", "!!!\n\n", "y"});
  CHECK(split("tab\there") == Pieces{"tab", "\there"});
  CHECK(split("(x) = \"y\";") == Pieces{"(x", ")", " =", " \"", "y", "\";"});
  CHECK(split("héllo wörld Ωmega") == Pieces{"héllo", " wörld", " Ωmega"});
  CHECK(split("你好，世界") == Pieces{"你好", "，世界"});
  CHECK(split("\u00a0\u00a0a") == Pieces{"\u00a0", "\u00a0a"});  // no-break spaces are \s
  CHECK(split("").empty());
}

TEST_CASE("pre-tokenizer: pieces cover the text, malformed UTF-8 included") {
  for (const std::string& text : {kMixedText, std::string("ab\xff\xfe cd \xc3"), std::string("\x80\x80x")}) {
    std::string joined;
    for (std::string_view p : llama3_pre_tokenize(text)) {
      CHECK(!p.empty());
      joined += p;
    }
    CHECK(joined == text);
  }
}

TEST_CASE("BPE: whole-piece lookup, then the lowest-rank pair first, not left to right") {
  const BpeTokenizer& tok = small();
  CHECK(tok.encode("hello") == Ids{merge("hello")});
  CHECK(tok.encode("hell") == Ids{merge("hell")});
  CHECK(tok.encode("xhello") == Ids{id('x'), merge("hello")});  // ll, he, hell, hello
  CHECK(tok.encode("help") == Ids{merge("he"), id('l'), id('p')});
  // "el" ranks after "ll": e+ll, where a left-to-right merge would give el+l.
  CHECK(tok.encode("ell") == Ids{id('e'), merge("ll")});
  CHECK(tok.encode("hellohello") == Ids{merge("hello"), merge("hello")});
  CHECK(tok.encode("hello world") == Ids{merge("hello"), merge(" world")});
  CHECK(tok.encode("world") == Ids{id('w'), merge("or"), merge("ld")});
  CHECK(tok.encode("12345") == Ids{merge("123"), id('4'), id('5')});
  CHECK(tok.encode("").empty());
}

TEST_CASE("decode(encode(x)) == x on UTF-8 text with emoji, CJK and malformed bytes") {
  const BpeTokenizer& tok = small();
  for (const std::string& text : {kMixedText, std::string("\xff\xfe\x80 hello \xc3"), std::string(1000, ' ')})
    CHECK(tok.decode(tok.encode(text)) == text);
}

TEST_CASE("special tokens: ids after the ranks, recognised only by encode_with_specials") {
  const BpeTokenizer& tok = small();
  CHECK(tok.vocab_size() == kRanks + 256);
  CHECK(tok.bos() == kRanks);
  CHECK(tok.eos() == kRanks + 1);
  CHECK(tok.pad() == kRanks + 4);  // <|finetune_right_pad_id|>
  const std::string chat = "<|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>";
  for (int32_t t : tok.encode(chat)) CHECK(t < kRanks);  // plain text: the names are text
  CHECK(tok.encode_with_specials(chat) == Ids{kRanks + 6, id('u'), id('s'), id('e'), id('r'), kRanks + 7,
                                               id('\n'), id('\n'), merge("hello"), kRanks + 9});
  // The longest name wins where one prefixes another; a half name stays text.
  CHECK(tok.encode_with_specials("<|reserved_special_token_10|><|eot") ==
        Ids{kRanks + 18, id('<'), id('|'), id('e'), id('o'), id('t')});
  CHECK(tok.decode({tok.bos(), merge("hello"), tok.eos(), tok.pad(), -1, 1 << 30}) == "hello");
  CHECK(tok.name().rfind("tiktoken 268+256 #", 0) == 0);
}

TEST_CASE("special_tokens.json beside the ranks file names the specials") {
  TempDir s;
  const std::string model = s.write("tokenizer.model", small_ranks_text());
  s.write("special_tokens.json",
          R"(["<|end_of_text|>", "<|begin_of_text|>", "<|finetune_right_pad_id|>", "<|x|>"])");
  BpeTokenizer tok(model);
  CHECK(tok.vocab_size() == kRanks + 4);
  CHECK(tok.bos() == kRanks + 1);
  CHECK(tok.eos() == kRanks);
  CHECK(tok.pad() == kRanks + 2);
  CHECK(tok.encode_with_specials("<|x|>") == Ids{kRanks + 3});
  CHECK(tok.name() != small().name());  // the names take part in the cache checksum
}

TEST_CASE("bad ranks files: one line naming the file, the line and what was expected") {
  TempDir s;
  const std::string good = small_ranks_text();
  const std::string p = (s.path / "tokenizer.model").string();
  auto with = [&](const std::string& text) { return s.write("tokenizer.model", text); };
  CHECK(load_error((s.path / "none.model").string()) ==
        (s.path / "none.model").string() + ": expected a tiktoken ranks file ('base64 rank' per line), got no such file");
  CHECK(load_error(with("")) == p + ": expected tiktoken ranks ('base64 rank' per line), got none");
  CHECK(load_error(with("AA== 0\nAQ==\n")) == p + ":2: expected 'base64 rank', got 'AQ=='");
  CHECK(load_error(with("AA== 0\nAQ== x1\n")) == p + ":2: expected 'base64 rank', got 'AQ== x1'");
  // A rank past 10 digits is refused before its value overflows (UBSan, llm_fuzz tokenizer).
  CHECK(load_error(with("AA== 0\nAQ== 99999999999999999999\n")) ==
        p + ":2: expected 'base64 rank', got 'AQ== 99999999999999999999'");
  CHECK(load_error(with("AA== 0\nA*== 1\n")) == p + ":2: expected base64 token bytes, got 'A*=='");
  // A carriage return inside a line is quoted visibly, never raw (found by llm_fuzz tokenizer).
  CHECK(load_error(with("AA== 0\nAQ==\r\x1b\n")) == p + ":2: expected 'base64 rank', got 'AQ==\\r\\x1b'");
  CHECK(load_error(with("AA== 0\nAQ= 1\n")) == p + ":2: expected base64 token bytes, got 'AQ='");
  CHECK(load_error(with("AA== 0\n\nAQ== 5\n")) ==
        p + ":3: expected a rank below 2 (ranks are 0..N-1 for N lines), got 5");
  CHECK(load_error(with("AA== 0\nAQ== 0\n")) == p + ":2: expected a rank not used before, got 0 again (line 1)");
  CHECK(load_error(with("AA== 0\nAA== 1\n")) ==
        p + ":2: expected token bytes not ranked before, got the bytes of line 1 again");
  std::string no_byte_a;  // "AA" where "A" should be
  for (int b = 0; b < 256; b++)
    no_byte_a += base64(b == 'A' ? "AA" : std::string(1, char(b))) + " " + std::to_string(b) + "\n";
  CHECK(load_error(with(no_byte_a)) ==
        p + ": expected a token for each of the 256 single bytes, got none for byte 0x41");
}

TEST_CASE("bad special_tokens.json: one line naming the file and what was expected") {
  TempDir s;
  const std::string model = s.write("tokenizer.model", small_ranks_text());
  const std::string json = (s.path / "special_tokens.json").string();
  auto with = [&](const std::string& text) {
    s.write("special_tokens.json", text);
    return load_error(model);
  };
  CHECK(with("[\"<|begin_of_text|>\",") ==
        json + ": expected a JSON list of special token names, in id order, got invalid JSON (byte 22)");
  CHECK(with("[1e999]") == json + ": expected a JSON list of special token names, in id order, got invalid "
                             "JSON ([json.exception.out_of_range.406] number overflow parsing '1e999')");
  CHECK(with("{\"bos\": 1}") == json + ": expected a JSON list of special token names, in id order, got a JSON object");
  CHECK(with("[\"<|begin_of_text|>\", 7]") == json + ": [1]: expected a non-empty string, got 7");
  CHECK(with("[\"<|a|>\", \"<|a|>\"]") == json + ": [1]: expected a name not listed before, got <|a|> again");
  CHECK(with("[\"<|begin_of_text|>\", \"<|finetune_right_pad_id|>\"]") ==
        json + ": expected <|end_of_text|> among the special tokens, got none");
}

TEST_CASE("make_tokenizer: the byte tokenizer by default, BpeTokenizer from tokenizer_config") {
  TempDir s;
  const std::string data = s.write("data.txt", "hello\n");
  const std::string model = s.write("tokenizer.model", small_ranks_text());
  const std::string datasets = "datasets:\n  - path: " + data + "\n";
  CHECK(make_tokenizer(parse_config(datasets, "cfg.yaml").tokenizer_config)->name() == "byte");
  std::unique_ptr<Tokenizer> tok = make_tokenizer(parse_config(datasets + "tokenizer_config: " + s.path.string(), "cfg.yaml").tokenizer_config);
  CHECK(tok->name() == small().name());
  CHECK(tok->encode("hello world") == Ids{merge("hello"), merge(" world")});
}

// Hugging Face's tokenizer.json of the same small vocabulary, written by the `tokenizers` library
// (tools/make_hf_tokenizer_json.py --small), with the ids `tokenizers` itself encodes to.
namespace {

const std::string kHfTokenizerDir = (fs::path(__FILE__).parent_path() / "data" / "hf_tokenizer").string();

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("tokenizer.json: the ids HF's tokenizers gives, and the ranks file's, for the same vocabulary") {
  BpeTokenizer tok(kHfTokenizerDir + "/tokenizer.json");
  CHECK(tok.vocab_size() == kRanks + 4);
  CHECK(tok.bos() == kRanks);      // tokenizer_config.json's bos_token
  CHECK(tok.eos() == kRanks + 3);  // its eos_token, <|eot_id|>, as an Instruct model's
  CHECK(tok.pad() == kRanks + 2);  // pad_token null: <|finetune_right_pad_id|>
  CHECK(tok.encode_with_specials("<|eot_id|>hello") == Ids{kRanks + 3, merge("hello")});
  CHECK(tok.name().rfind("hf-bpe 268+4 #", 0) == 0);
  const nlohmann::json expected = nlohmann::json::parse(read_text(kHfTokenizerDir + "/expected.json"));
  REQUIRE(expected.size() == 5);
  for (const nlohmann::json& e : expected) {
    const std::string text = e["text"].get<std::string>();
    // HF splits off added tokens' names in any text; ours only where asked (chat templates).
    CHECK_MESSAGE(tok.encode_with_specials(text) == e["ids"].get<Ids>(), text);
    CHECK(tok.encode(text) == small().encode(text));
    CHECK(tok.decode(tok.encode(text)) == text);
  }
}

TEST_CASE("find_bpe_tokenizer: a directory's tokenizer.json before its ranks files") {
  TempDir s;
  fs::create_directories(s.path / "hf" / "original");
  s.write("hf/original/tokenizer.model", small_ranks_text());
  CHECK(*find_bpe_tokenizer((s.path / "hf").string()) == (s.path / "hf/original/tokenizer.model").string());
  s.write("hf/tokenizer.json", read_text(kHfTokenizerDir + "/tokenizer.json"));
  CHECK(*find_bpe_tokenizer((s.path / "hf").string()) == (s.path / "hf/tokenizer.json").string());
  CHECK(!find_bpe_tokenizer((s.path / "none").string()));
}

// Axolotl's added_tokens_overrides: an added token renamed (its id kept) reads and saves under its
// new name, in tokenizer.json (and tokenizer_config.json's added_tokens_decoder) and in a
// tiktoken directory's special_tokens.json alike.
TEST_CASE("added_tokens_overrides: renamed added tokens encode to their ids, and are saved so") {
  const AddedTokensOverrides chatml = {{kRanks + 2, "<|im_start|>"}};
  TempDir scratch("llm_test_overrides");
  fs::create_directories(scratch.path / "tiktoken");
  write_file((scratch.path / "tiktoken/tokenizer.model").string(), small_ranks_text());
  for (const std::string& file : {kHfTokenizerDir + "/tokenizer.json", (scratch.path / "tiktoken/tokenizer.model").string()}) {
    CAPTURE(file);
    const std::unique_ptr<Tokenizer> renamed = make_tokenizer(file, chatml, "cfg.yaml");
    CHECK(renamed->encode_with_specials("<|im_start|>user").front() == kRanks + 2);
    CHECK(renamed->pad() == make_tokenizer(file)->pad());  // the PAD token keeps its part, renamed or not
    CHECK(renamed->special_name(kRanks + 2) == "<|im_start|>");
    CHECK(renamed->name() != make_tokenizer(file)->name());  // another token cache
    const fs::path out = scratch.path / fs::path(file).parent_path().filename();
    fs::create_directories(out / "saved");
    const std::vector<std::string> names = save_tokenizer_files({file, {}, "", chatml}, (out / "saved").string());
    BpeTokenizer saved((out / "saved" / names.front()).string());
    CHECK(saved.special_id("<|im_start|>") == kRanks + 2);
    CHECK(saved.vocab_size() == renamed->vocab_size());
  }
  const std::string json = kHfTokenizerDir + "/tokenizer.json";
  auto error_with = [&](const AddedTokensOverrides& o, const std::string& file) {
    return error_of([&] { make_tokenizer(file, o, "cfg.yaml"); }, "(no error)");
  };
  CHECK(error_with({{5, "<|x|>"}}, json) ==
        "cfg.yaml: added_tokens_overrides: expected the id of an added token of " + json + " (268..271), got 5");
  CHECK(error_with({{272, "<|x|>"}}, json).find("(268..271), got 272") != std::string::npos);
  CHECK(error_with({{kRanks + 2, "<|eot_id|>"}}, json) ==
        "cfg.yaml: added_tokens_overrides: expected a name no other token has, got <|eot_id|> (token 271)");
  // Two renamed to one name, or to an ordinary token's text: the export would lose a token.
  CHECK(error_with({{kRanks + 1, "<|x|>"}, {kRanks + 2, "<|x|>"}}, json).find("expected a name no other token has, got <|x|>") !=
        std::string::npos);
  CHECK(error_with({{kRanks + 2, "a"}}, json) ==
        "cfg.yaml: added_tokens_overrides: expected a name no other token has, got a (token 97, an ordinary one)");
  CHECK(error_with({{kRanks + 3, "<|x|>"}}, json) ==
        "cfg.yaml: added_tokens_overrides: expected a reserved token's id, got 271, the tokenizer's EOS <|eot_id|> "
        "(special_tokens chooses which token plays it)");
  CHECK(error_with({{kRanks + 2, "<|x|>"}}, "") ==
        "cfg.yaml: added_tokens_overrides: expected a tokenizer_config whose added tokens to rename, got the byte tokenizer");
  // Two tokens may trade names (neither plays BOS or EOS).
  const AddedTokensOverrides trade = {{kRanks + 2, "<|reserved_special_token_1|>"}, {kRanks + 3, "<|reserved_special_token_0|>"}};
  CHECK(make_tokenizer((scratch.path / "tiktoken/tokenizer.model").string(), trade)->special_id("<|reserved_special_token_1|>") ==
        kRanks + 2);
}

// Axolotl's tokens, as transformers' add_tokens: a whole token wherever its text appears (a row's
// text too); one the vocabulary has keeps its id; new ones from the vocabulary's size on, saved
// among tokenizer.json's added tokens.
TEST_CASE("tokens: added tokens split any text, keep existing ids, take new ones, and are saved") {
  const std::string json = kHfTokenizerDir + "/tokenizer.json";
  const std::vector<std::string> tokens = {"<tool>", "hello", "<|eot_id|>", "<tool_call>"};
  const std::unique_ptr<Tokenizer> t = with_added_tokens(make_tokenizer(json), tokens, "cfg.yaml");
  const int32_t base = make_tokenizer(json)->vocab_size();
  CHECK(t->vocab_size() == base + 2);
  CHECK(t->special_id("<tool>") == base);
  CHECK(t->special_id("<tool_call>") == base + 1);  // longest match first: not <tool> then "_call>"
  CHECK(t->special_id("hello") == make_tokenizer(json)->encode("hello").at(0));
  // transformers' add_tokens on this tokenizer.json encodes the same text to these ids.
  const std::vector<int32_t> ids = t->encode("say<tool_call>x<tool>hello<|eot_id|>");
  CHECK(ids == std::vector<int32_t>{115, 97, 121, 273, 120, 272, 259, 271});  // <|eot_id|>: added, so in any text
  CHECK(t->decode(ids) == "say<tool_call>x<tool>hello");  // special tokens skipped, added ones not
  CHECK(t->name() != make_tokenizer(json)->name());
  CHECK(with_added_tokens(make_tokenizer(json), {"<tool>"}, "cfg.yaml")->name() != t->name());
  // The byte tokenizer grows the same way.
  CHECK(with_added_tokens(std::make_unique<ByteTokenizer>(), {"<x>"}, "cfg.yaml")->encode("a<x>") ==
        std::vector<int32_t>{'a', ByteTokenizer::kVocabSize});
  CHECK(error_of([&] { with_added_tokens(make_tokenizer(json), {"a", "a"}, "cfg.yaml"); }, "") ==
        "cfg.yaml: tokens: 'a' is listed twice");
  // Saved among the added tokens (not special), read back with the same ids.
  TempDir scratch("llm_test_tokens");
  const std::vector<std::string> names =
      save_tokenizer_files({json, {}, "", {}, new_token_ids(*t, tokens, base)}, scratch.path.string());
  const nlohmann::json saved = nlohmann::json::parse(read_text((scratch.path / "tokenizer.json").string()));
  CHECK(saved["added_tokens"].back()["content"] == "<tool_call>");
  CHECK(saved["added_tokens"].back()["id"] == base + 1);
  CHECK(saved["added_tokens"].back()["special"] == false);
  const nlohmann::json config = nlohmann::json::parse(read_text((scratch.path / "tokenizer_config.json").string()));
  CHECK(config["added_tokens_decoder"][std::to_string(base)]["content"] == "<tool>");
  CHECK(BpeTokenizer((scratch.path / "tokenizer.json").string()).vocab_size() == base + 2);
}

TEST_CASE("bad tokenizer.json: one line naming the file and what was expected") {
  TempDir s;
  const nlohmann::json good = nlohmann::json::parse(read_text(kHfTokenizerDir + "/tokenizer.json"));
  const std::string p = (s.path / "tokenizer.json").string(), config = (s.path / "tokenizer_config.json").string();
  auto with = [&](const nlohmann::json& doc) { return load_error(s.write("tokenizer.json", doc.dump())); };
  auto changed = [&](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json doc = good;
    change(doc);
    return with(doc);
  };
  CHECK(with(good) == "(no error)");
  CHECK(load_error(s.write("tokenizer.json", "{\"model\": ")) == p + ": expected a Hugging Face tokenizer.json, got invalid JSON (byte 11)");
  // nlohmann would stop at the NUL and read the document before it as the whole file.
  CHECK(load_error(s.write("tokenizer.json", good.dump() + std::string("\0junk", 5))) ==
        p + ": expected a Hugging Face tokenizer.json, got invalid JSON (a NUL byte at byte " +
            std::to_string(good.dump().size() + 1) + ")");
  CHECK(with(nlohmann::json::array()) == p + ": expected a Hugging Face tokenizer.json (an object with a \"model\"), got none");
  CHECK(changed([](auto& d) { d["model"]["type"] = "Unigram"; }) ==
        p + ": model.type: expected BPE (Llama 3's byte-level BPE), got Unigram");
  // A value of another JSON type where a string belongs: one line, not nlohmann's type_error.
  CHECK(changed([](auto& d) { d["model"]["type"] = 5; }) == p + ": model.type: expected BPE (Llama 3's byte-level BPE), got 5");
  CHECK(changed([](auto& d) { d["pre_tokenizer"]["type"] = nlohmann::json::array({"Sequence"}); }) ==
        p + ": pre_tokenizer: expected a Split on Llama 3's regex (this engine tokenizes Llama 3 only), got another");
  CHECK(changed([](auto& d) { d["added_tokens"] = nlohmann::json::object(); }) ==
        p + ": added_tokens: expected a list of {\"id\": N, \"content\": name}, got a JSON object");
  CHECK(changed([](auto& d) { d["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+"; }) ==
        p + ": pre_tokenizer: expected a Split on Llama 3's regex (this engine tokenizes Llama 3 only), got another");
  CHECK(changed([](auto& d) { d["model"]["vocab"]["hello"] = 900; }) ==
        p + ": model.vocab['hello']: expected an id below 268 (ids are 0..N-1), got 900");
  CHECK(changed([](auto& d) { d["model"]["vocab"]["hello"] = 0; }).find(": expected an id not used before, got 0 again") !=
        std::string::npos);
  CHECK(changed([](auto& d) {
          d["model"]["vocab"].erase("ld");
          d["model"]["vocab"]["h\u4e2d"] = 263;  // 中 is no byte-level character
        }) == p + ": model.vocab['h\u4e2d']: expected byte-level text (GPT-2's byte alphabet), got other characters");
  CHECK(changed([](auto& d) { std::swap(d["model"]["merges"][0], d["model"]["merges"][1]); }) ==
        p + ": model.merges[1]: expected merges in the order of their tokens' ids (a BPE converted from tiktoken ranks), "
            "got id 256 after 257");
  CHECK(changed([](auto& d) { d["model"]["merges"][0] = "x y"; }) ==
        p + ": model.merges[0]: expected a merge that makes a token of the vocab, got \"x y\"");
  CHECK(changed([](auto& d) { d["added_tokens"][1]["id"] = 300; }) ==
        p + ": added_tokens[1]: expected an id from 268 on, each once, without gaps, got 300");
  // UBSan: id - 268 overflowed for an id near -2^63 (found by llm_fuzz hf_tokenizer_json).
  CHECK(changed([](auto& d) { d["added_tokens"][1]["id"] = std::numeric_limits<int64_t>::min(); }) ==
        p + ": added_tokens[1]: expected an id from 268 on, each once, without gaps, got -9223372036854775808");
  CHECK(changed([](auto& d) { d["model"]["vocab"].erase("A"); d["model"]["vocab"]["AA"] = 65; }) ==
        p + ": expected a token for each of the 256 single bytes, got none for byte 0x41");
  s.write("tokenizer.json", good.dump());
  s.write("tokenizer_config.json", R"({"eos_token": 7})");
  CHECK(load_error(p) == config + ": eos_token: expected a token name, {\"content\": name} or null, got 7");
  s.write("tokenizer_config.json", R"({"eos_token": {"content": "<|im_end|>"}})");
  CHECK(load_error(p) == config + ": expected <|im_end|> among the special tokens, got none");
}

// Meta's Llama 3 ranks file: LLM_LLAMA3_TOKENIZER, else the project's shared copy. Expected ids
// come from tiktoken on the same file with the same regex and special tokens.
namespace {

// Without the file these cases report "skipped" (doctest's skip, decided when the suite starts).
const bool kNoLlama3 = llama3_path().empty();

const BpeTokenizer& llama3() {
  static const BpeTokenizer tok(llama3_path());
  return tok;
}

}  // namespace

TEST_CASE("Llama 3: loads Meta's ranks file" * doctest::skip(kNoLlama3)) {
  const std::string path = llama3_path();
  const auto start = std::chrono::steady_clock::now();
  BpeTokenizer tok(path);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("loaded " << path << " in " << seconds << " s");  // about 0.1 s; a benchmark, not a gate
  CHECK(tok.vocab_size() == 128256);
}

TEST_CASE("Llama 3: the known vector, and vectors from tiktoken" * doctest::skip(kNoLlama3)) {
  const BpeTokenizer* tok = &llama3();
  CHECK(tok->bos() == 128000);
  CHECK(tok->eos() == 128001);
  CHECK(tok->pad() == 128004);
  Ids ids = {tok->bos()};
  for (int32_t t : tok->encode("This is a test sentence.")) ids.push_back(t);
  ids.push_back(tok->eos());
  CHECK(ids == Ids{128000, 2028, 374, 264, 1296, 11914, 13, 128001});
  CHECK(tok->encode(" hello") == Ids{24748});
  CHECK(tok->encode("I'm don't WE'LL they've") == Ids{40, 2846, 1541, 956, 20255, 6, 4178, 814, 3077});
  CHECK(tok->encode("你好，世界 🎉👍🏽") ==
        Ids{57668, 53901, 3922, 102616, 11410, 236, 231, 9468, 239, 235, 9468, 237, 121});
  CHECK(tok->encode("héllo wörld") == Ids{71, 19010, 385, 289, 9603, 509});
  CHECK(tok->encode("   leading and trailing   ") == Ids{256, 6522, 323, 28848, 262});
  CHECK(tok->encode("def f(x):\n    return x**2\n") == Ids{755, 282, 2120, 997, 262, 471, 865, 334, 17, 198});
  CHECK(tok->encode(kMixedText).size() == 98);
}

TEST_CASE("Llama 3: the chat format's special tokens, and round trips of mixed text" *
          doctest::skip(kNoLlama3)) {
  const BpeTokenizer* tok = &llama3();
  const std::string chat = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>";
  CHECK(tok->encode_with_specials(chat) == Ids{128000, 128006, 882, 128007, 271, 13347, 0, 128009});
  CHECK(tok->encode(chat).size() == 29);  // the names as text
  CHECK(tok->decode(tok->encode_with_specials(chat)) == "user\n\nHi!");
  std::string long_text;
  for (int i = 0; i < 200; i++) long_text += kMixedText;
  const Ids ids = tok->encode(long_text);
  CHECK(ids.size() == 200 * 98);  // the text repeats on a newline boundary
  CHECK(tok->decode(ids) == long_text);
}
