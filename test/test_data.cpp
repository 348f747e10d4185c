// The data pipeline up to examples: byte tokenizer, document loading, HF's split slices, examples
// (masks, chunks, drops) and bad-input messages. The token cache and the merged data's splits:
// test_data_cache; rows, batches and their order: test_data_loader.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>

#include "io/dataset.h"
#include "io/python_text.h"
#include "io/dataset_split.h"
#include "engine/user_error.h"
#include "test/data_fixture.h"
#include "test/compress_fixture.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;

// The text of a document's pieces with this loss (completion: all trained; alpaca: prompt first).
std::string text_of(const Document& d, Loss loss) {
  std::string out;
  for (const Piece& p : d.pieces)
    if (p.loss == loss) out += p.text;
  return out;
}

TEST_CASE("byte tokenizer round trip") {
  ByteTokenizer tok;
  CHECK(tok.vocab_size() == 259);
  std::string text = "h\xc3\xa9llo\n";
  text += '\0';
  text += "\xff";
  std::vector<int32_t> t = tok.encode(text);
  CHECK(t.size() == text.size());
  CHECK(t[1] == 0xc3);
  CHECK(t.back() == 255);
  CHECK(tok.decode(t) == text);
  CHECK(tok.decode({tok.bos(), 'h', 'i', tok.eos(), tok.pad()}) == "hi");
}

// Decoded bytes shown to a user (samples, the loss mask) are text as Python's
// bytes.decode("utf-8", "replace") makes it: each expectation is what Python 3.11 printed.
TEST_CASE("decoded bytes for display: ill-formed UTF-8 replaced as Python replaces it") {
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  CHECK(decode_utf8_replacing("h\xc3\xa9llo \xf0\x9f\x98\x80!") == "h\xc3\xa9llo \xf0\x9f\x98\x80!");
  CHECK(decode_utf8_replacing("ok\xe2\x82") == "ok" + r);                      // cut inside a character
  CHECK(decode_utf8_replacing("\xe2\x82x\xe2\x82\xac") == r + "x\xe2\x82\xac");  // one U+FFFD per cut prefix
  CHECK(decode_utf8_replacing("\xf0\x9f\x98") == r);
  CHECK(decode_utf8_replacing("\xc0\x80" "a") == r + r + "a");                    // overlong: no lead byte
  CHECK(decode_utf8_replacing("\xe0\x80\xaf") == r + r + r);
  CHECK(decode_utf8_replacing("\xed\xa0\x80") == r + r + r);                  // a surrogate
  CHECK(decode_utf8_replacing("\xf4\x90\x80\x80") == r + r + r + r);          // past U+10FFFF
  CHECK(decode_utf8_replacing("\xf0\x80\x80\x80") == r + r + r + r);
  CHECK(decode_utf8_replacing(std::string("\xff\0", 2)) == r + std::string(1, '\0'));
}

TEST_CASE("fortune files split on % lines; a directory skips .dat, .u8 and symlinks") {
  TempDir dir;
  fs::create_directories(dir.path / "f");
  dir.write("f/b_quotes", "first\nline two\n%\nsecond\n%\n%\nthird");
  dir.write("f/a_plain", "one whole document\n");
  dir.write("f/b_quotes.dat", std::string("\x00\x00\x00\x02", 4));
  dir.write("f/.hidden", "skipped");
  fs::create_symlink("b_quotes", dir.path / "f" / "b_quotes.u8");
  fs::create_symlink("a_plain", dir.path / "f" / "link");
  DatasetSpec spec{(dir.path / "f").string(), "completion"};
  std::vector<std::string> files = dataset_source_files(spec);
  REQUIRE(files.size() == 2);
  CHECK(fs::path(files[0]).filename() == "a_plain");
  std::vector<Document> docs = load_documents(spec, ByteTokenizer());
  REQUIRE(docs.size() == 4);
  CHECK(text_of(docs[0], Loss::trained) == "one whole document\n");
  CHECK(text_of(docs[1], Loss::trained) == "first\nline two\n");
  CHECK(text_of(docs[2], Loss::trained) == "second\n");
  CHECK(text_of(docs[3], Loss::trained) == "third");
  for (const Document& d : docs) CHECK(text_of(d, Loss::prompt).empty());
}

TEST_CASE("completion refuses tables, compressed and binary files instead of training on their bytes") {
  TempDir dir;
  const std::string fake = dir.write("d.parquet", "PAR1");  // read as Parquet (test_parquet), never as text
  CHECK_THROWS_WITH_AS(load_documents(DatasetSpec{fake, "completion"}, ByteTokenizer()),
                       (fake + ": not a Parquet file (expected PAR1 at its start and end)").c_str(), UserError);
  const std::string arrow = dir.write("d.arrow", "PAR1");  // as Arrow (test_arrow)
  CHECK_THROWS_WITH_AS(load_documents(DatasetSpec{arrow, "completion"}, ByteTokenizer()),
                       doctest::Contains((arrow + ": not an Arrow IPC file").c_str()), UserError);
  for (const char* name : {"d.tsv", "d.jsonl.bz2", "d.txt.xz", "d.zip"}) {
    const std::string path = dir.write(name, "PAR1");
    CHECK_THROWS_WITH_AS(load_documents(DatasetSpec{path, "completion"}, ByteTokenizer()),
                         doctest::Contains((path + ": a ").c_str()), UserError);
  }
  const std::string binary = dir.write("blob", std::string("text\0more", 9));
  CHECK_THROWS_WITH_AS(load_documents(DatasetSpec{binary, "completion"}, ByteTokenizer()),
                       (binary + ": expected text, got binary data (a NUL byte at offset 4)").c_str(), UserError);
}

// HF's text loader decodes a file strictly as UTF-8, so Axolotl stops on a Latin-1 file; here
// too, in one line, rather than training its bytes (a .txt file's rows and a fortune file alike).
TEST_CASE("completion refuses text files that are no UTF-8, naming the line") {
  TempDir dir;
  const std::string why = ": expected UTF-8 text, as HF's loaders decode the file, got the byte 0xE9, which no "
                          "UTF-8 character holds there (convert the file, e.g. iconv -f latin1 -t utf-8)";
  for (const char* name : {"latin1.txt", "latin1"}) {
    const std::string path = dir.write(name, "caf\xc3\xa9\nun caf\xe9\n");
    CHECK_THROWS_WITH_AS(load_documents(DatasetSpec{path, "completion"}, ByteTokenizer()), (path + ":2" + why).c_str(),
                         UserError);
  }
  const std::string cut = dir.write("cut.txt", "ok\n\n\xe2\x82");  // a character cut off at the end
  CHECK_THROWS_WITH_AS(load_documents(DatasetSpec{cut, "completion"}, ByteTokenizer()),
                       doctest::Contains((cut + ":3: expected UTF-8 text").c_str()), UserError);
}

TEST_CASE("gzip and zstd dataset files read as their plain twins, as HF's loaders extract them") {
  TempDir dir;
  const std::string rows = "{\"instruction\": \"hi\", \"input\": \"\", \"output\": \"there\"}\n"
                           "{\"instruction\": \"a\", \"input\": \"b\", \"output\": \"c\"}\n";
  const std::string lines = "first line\r\nsecond\n\nfourth";
  auto texts = [](const std::string& path, const char* type) {
    std::vector<std::string> out;
    for (const Document& d : load_documents(DatasetSpec{path, type}, ByteTokenizer()))
      out.push_back(text_of(d, Loss::prompt) + "|" + text_of(d, Loss::trained));
    return out;
  };
  const std::vector<std::string> alpaca = texts(dir.write("a.jsonl", rows), "alpaca");
  REQUIRE(alpaca.size() == 2);
  CHECK(texts(dir.write("a.jsonl.gz", gzip(rows)), "alpaca") == alpaca);
  CHECK(texts(dir.write("a.jsonl.zst", zstd(rows)), "alpaca") == alpaca);
  CHECK(texts(dir.write("b.json", gzip(rows)), "alpaca") == alpaca);  // by its bytes, whatever its name
  const std::vector<std::string> text_lines = texts(dir.write("t.txt", lines), "completion");
  CHECK(text_lines.size() == 4);
  CHECK(texts(dir.write("t.txt.gz", gzip(lines)), "completion") == text_lines);  // rows by the name less .gz
  const std::string fake = dir.write("f.jsonl.gz", rows);
  CHECK(error_of([&] { texts(fake, "alpaca"); }) == fake + ": expected gzip data, as its name says, got other bytes");
  const std::string cut = dir.write("cut.jsonl.zst", zstd(rows).substr(0, 20));
  CHECK(error_of([&] { texts(cut, "alpaca"); }) ==
        cut + ": damaged Zstandard data: it ends inside a frame (a truncated file?)");
}

TEST_CASE("jsonl completion reads the text field") {
  TempDir dir;
  std::string path =
      dir.write("c.jsonl", "{\"text\": \"alpha\"}\n\n{\"text\": \"b\\n\", \"id\": 3}\n");
  std::vector<Document> docs = load_documents({path, "completion"}, ByteTokenizer());
  REQUIRE(docs.size() == 2);
  CHECK(text_of(docs[0], Loss::trained) == "alpha");
  CHECK(text_of(docs[1], Loss::trained) == "b\n");
  // Axolotl's `field` names another column; a row without it is one line naming the field.
  DatasetSpec by_field{path, "completion"};
  by_field.field = "body";
  std::string other = dir.write("d.jsonl", "{\"body\": \"gamma\", \"text\": \"no\"}\n");
  by_field.path = other;
  CHECK(text_of(load_documents(by_field, ByteTokenizer())[0], Loss::trained) == "gamma");
  by_field.path = path;
  CHECK_THROWS_WITH(load_documents(by_field, ByteTokenizer()), doctest::Contains("with a \"body\" string"));
}

TEST_CASE("JSON files read as HF's json loader reads them, whatever their name; ds_type chooses the loader") {
  TempDir dir;
  auto texts = [](const DatasetSpec& spec) {
    std::vector<std::string> out;
    for (const Document& d : load_documents(spec, ByteTokenizer())) out.push_back(text_of(d, Loss::trained));
    return out;
  };
  const std::vector<std::string> ab = {"a", "b"};
  // JSON Lines in a .json file (common on the hub), with a UTF-8 BOM; one object is one row.
  CHECK(texts({dir.write("lines.json", "\xEF\xBB\xBF{\"text\": \"a\"}\n{\"text\": \"b\"}\n"), "completion"}) == ab);
  CHECK(texts({dir.write("one.json", "{\"text\": \"a\"}"), "completion"}) == std::vector<std::string>{"a"});
  // An array in a .jsonl file, or after blank lines (the loader's pandas fallback); an array of
  // texts is rows {"text": x}.
  CHECK(texts({dir.write("array.jsonl", "[{\"text\": \"a\"}, {\"text\": \"b\"}]"), "completion"}) == ab);
  CHECK(texts({dir.write("late.json", "\n\n  [\n {\"text\": \"a\"},\n {\"text\": \"b\"}\n]\n"), "completion"}) == ab);
  CHECK(texts({dir.write("strings.json", "[\"a\", \"b\"]"), "completion"}) == ab);
  const std::string late_bad = dir.write("late_bad.json", "\n[\n {\"text\": \"a\"},\n {\"text\": }\n]\n");
  CHECK(error_of([&] { texts({late_bad, "completion"}); }).find(late_bad + ":4: invalid JSON: ") == 0);
  // Another name is JSON to every type but completion (Axolotl's get_dataset_type), which reads
  // it as text documents unless ds_type says json.
  const std::string rows = dir.write("rows.data", "{\"instruction\": \"i\", \"output\": \"a\"}\n");
  CHECK(load_documents({rows, "alpaca"}, ByteTokenizer()).size() == 1);
  const std::string lines = dir.write("lines.data", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n");
  DatasetSpec spec{lines, "completion"};
  CHECK(texts(spec) == std::vector<std::string>{"{\"text\": \"a\"}\n{\"text\": \"b\"}\n"});
  spec.ds_type = "json";
  CHECK(texts(spec) == ab);
  // ds_type text: HF's text loader, a row per line, whatever the name; only completion reads it.
  spec = {dir.write("raw.jsonl", "{\"text\": \"a\"}\nsecond\n"), "completion"};
  spec.ds_type = "text";
  CHECK(texts(spec) == std::vector<std::string>{"{\"text\": \"a\"}", "second"});
  spec.type = "alpaca";
  CHECK(error_of([&] { load_documents(spec, ByteTokenizer()); }) ==
        spec.path + ": ds_type text holds rows of plain text; an alpaca dataset needs JSON rows (.json, .jsonl, or "
                    "ds_type: json)");
}

TEST_CASE("split: HF's slices of a dataset's rows, percentages rounded half to even") {
  auto rows = [](const std::string& split, size_t n) { return slice_rows(*parse_split(split), n); };
  using Range = std::pair<size_t, size_t>;
  CHECK(rows("train", 10) == Range{0, 10});
  CHECK(rows("train[:20%]", 10) == Range{0, 2});
  CHECK(rows("train[:25%]", 10) == Range{0, 2});  // 2.5 rounds to 2, as Python's round
  CHECK(rows("train[:35%]", 10) == Range{0, 4});  // 3.5 to 4
  CHECK(rows("train[-10%:]", 10) == Range{9, 10});
  CHECK(rows("train[3:]", 10) == Range{3, 10});
  CHECK(rows("train[-3:-1]", 10) == Range{7, 9});
  CHECK(rows("train[5:2]", 10) == Range{5, 5});
  CHECK(rows("train[:500]", 10) == Range{0, 10});
  CHECK(rows("test[2:4]", 10) == Range{2, 4});
  CHECK(parse_split("validation[:10%]")->split == "validation");
  CHECK(parse_split("train.clean")->split == "train.clean");
  CHECK(parse_split("donn\xc3\xa9" "es[:1]")->split == "donn\xc3\xa9" "es");  // Unicode word characters, as Python's \w
  for (const char* bad : {"train[", "train[1:2%]", "train[:101%]", "train[a:]", "train+test", "train[:20%](pct1_dropremainder)",
                          "test/../x", ".train", "train..a", ""})
    CHECK_MESSAGE(!parse_split(bad), bad);
  TempDir dir;
  std::string text;
  for (int i = 0; i < 10; i++) text += "{\"text\": \"row " + std::to_string(i) + "\"}\n";
  const std::string path = dir.write("c.jsonl", text);
  DatasetSpec spec{path, "completion"};
  spec.split = "train[20%:40%]";
  std::vector<Document> docs = load_documents(spec, ByteTokenizer());
  REQUIRE(docs.size() == 2);
  CHECK(text_of(docs[0], Loss::trained) == "row 2");
  CHECK(text_of(docs[1], Loss::trained) == "row 3");
  spec.split = "train[10:]";
  CHECK_THROWS_WITH_AS(load_documents(spec, ByteTokenizer()), (path + ": the completion dataset holds no documents in split train[10:]").c_str(),
                       UserError);
}

TEST_CASE("alpaca: loss only on the output and EOS, shifted by one") {
  TempDir dir;
  std::string path = dir.write(
      "a.json",
      "[\n  {\"instruction\": \"Add\", \"input\": \"1 2\", \"output\": \"3\"},\n"
      "  {\"instruction\": \"Greet\", \"input\": \"\", \"output\": \"hi\"}\n]\n");
  std::vector<Document> docs = load_documents({path, "alpaca"}, ByteTokenizer());
  REQUIRE(docs.size() == 2);
  CHECK(text_of(docs[0], Loss::prompt) == alpaca_prompt("Add", "1 2"));
  CHECK(text_of(docs[0], Loss::prompt).find("paired with an input") != std::string::npos);
  CHECK(text_of(docs[0], Loss::prompt).find("### Input:\n1 2\n\n### Response:\n") != std::string::npos);
  CHECK(text_of(docs[1], Loss::prompt).find("### Input:") == std::string::npos);
  CHECK(text_of(docs[1], Loss::trained) == "hi");

}

TEST_CASE("examples: alpaca trains the response and EOS; train_on_inputs the prompt too") {
  ByteTokenizer tok;
  Document doc = prompt_response_document("Q:", "A");
  Example ex = tokenize_document(doc, tok, false, "test");
  CHECK(ex.tokens == std::vector<int32_t>{tok.bos(), 'Q', ':', 'A', tok.eos()});
  CHECK(ex.labels == std::vector<int32_t>{kIgnoreIndex, kIgnoreIndex, kIgnoreIndex, 'A', tok.eos()});
  Example all = tokenize_document(doc, tok, true, "test");
  // BOS labelled as the text it starts (Axolotl copies the ids): a packed row's previous example
  // predicts it.
  CHECK(all.labels == std::vector<int32_t>{tok.bos(), 'Q', ':', 'A', tok.eos()});
  // A special piece the tokenizer lacks is one line naming it.
  Document chat;
  chat.pieces.push_back({Piece::Kind::special, "<|eot_id|>", {}, Loss::none});
  CHECK(error_of([&] { tokenize_document(chat, tok, false, "chat.jsonl"); })
            .find("chat.jsonl: the chat template needs the special token <|eot_id|>") == 0);
}

TEST_CASE("examples: completion text is chunked, others dropped or truncated past sequence_len") {
  ByteTokenizer tok;
  DataConfig config;
  config.sequence_len = 4;
  std::vector<Example> out;
  ExampleStats stats;
  // [BOS] a b c d e f [EOS]: 8 tokens, chunks of 4; "xy" fits whole.
  append_examples({"c.txt", "completion"}, {text_document("abcdef"), text_document("xy")}, tok,
                  config, out, stats);
  REQUIRE(out.size() == 3);
  CHECK(out[0].tokens == std::vector<int32_t>{tok.bos(), 'a', 'b', 'c'});
  CHECK(out[1].tokens == std::vector<int32_t>{'d', 'e', 'f', tok.eos()});
  CHECK(out[2].tokens == std::vector<int32_t>{tok.bos(), 'x', 'y', tok.eos()});
  CHECK(out[2].labels == out[2].tokens);  // Axolotl's completion labels: a copy of the ids, BOS too
  CHECK(stats.chunked == 1);
  CHECK(stats.documents == 2);

  out.clear();
  config.sequence_len = 5;
  const std::vector<Document> sft = {prompt_response_document("p", "long answer"),
                                     prompt_response_document("p", "ok")};
  append_examples({"a.json", "alpaca"}, sft, tok, config, out, stats);
  REQUIRE(out.size() == 1);  // the long one is dropped whole, never split
  CHECK(out[0].tokens == std::vector<int32_t>{tok.bos(), 'p', 'o', 'k', tok.eos()});
  CHECK(stats.dropped == 1);
  config.excess_length_strategy = "truncate";
  out.clear();
  append_examples({"a.json", "alpaca"}, sft, tok, config, out, stats);
  REQUIRE(out.size() == 2);
  CHECK(out[0].tokens == std::vector<int32_t>{tok.bos(), 'p', 'l', 'o', 'n'});
  CHECK(stats.truncated == 1);
  // min_sample_len: shorter examples are dropped with the long ones.
  config.excess_length_strategy = "drop";
  config.min_sample_len = 5;
  out.clear();
  ExampleStats short_stats;
  append_examples({"a.json", "alpaca"}, sft, tok, config, out, short_stats);
  CHECK(out.size() == 1);  // <bos>pok<eos>: 5 tokens, at the bound; the long one is out
  CHECK(short_stats.dropped == 1);
  config.min_sample_len = 6;
  out.clear();
  append_examples({"a.json", "alpaca"}, sft, tok, config, out, short_stats);
  CHECK(out.empty());
  CHECK(short_stats.dropped == 3);
  config.min_sample_len = -1;
  // Axolotl's raise: the first long example stops the run, named with its length as Axolotl's two
  // tokenizer calls leave it (the prompt and the response each cut at sequence_len).
  config.excess_length_strategy = "raise";
  ExampleStats fresh;
  CHECK(error_of([&] { append_examples({"a.json", "alpaca"}, sft, tok, config, out, fresh); }, "(none)") ==
        "a.json: document 1 is 6 tokens, longer than sequence_len 5 (excess_length_strategy: raise; drop or truncate "
        "would train without it)");
}


// Axolotl's eval_sequence_len: its strategies tokenize test_datasets at sequence_len (completion
// chunks), then its length filter keeps them to eval_sequence_len instead.
TEST_CASE("eval_sequence_len: test_datasets' examples kept to it; completion chunks still cut at sequence_len") {
  ByteTokenizer tok;
  DataConfig config;
  config.sequence_len = 5;
  config.eval_sequence_len = 8;
  config.keeps_eval_length = true;
  std::vector<Example> out;
  ExampleStats stats;
  // <bos>pans<eos> 6 tokens: past sequence_len, within eval_sequence_len. "answers" is cut as
  // Axolotl's second tokenizer call cuts it, <bos>answers to sequence_len 5, less its BOS, and no
  // EOS (that call reached 5): <bos>panswe... as <bos>p + answ, 6 tokens, kept (before 2026-12-06
  // the whole 10 were held to eval_sequence_len and dropped). A prompt is cut at 5 too: dropped.
  append_examples({"a.json", "alpaca"},
                  {prompt_response_document("p", "ans"), prompt_response_document("p", "answers"),
                   prompt_response_document("prompt", "answers")},
                  tok, config, out, stats);
  REQUIRE(out.size() == 2);
  CHECK(out[0].tokens == std::vector<int32_t>{tok.bos(), 'p', 'a', 'n', 's', tok.eos()});
  CHECK(out[1].tokens == std::vector<int32_t>{tok.bos(), 'p', 'a', 'n', 's', 'w'});
  CHECK(out[1].labels == std::vector<int32_t>{kIgnoreIndex, kIgnoreIndex, 'a', 'n', 's', 'w'});
  CHECK(stats.dropped == 1);  // <bos>prom + answ: 9
  out.clear();
  append_examples({"c.txt", "completion"}, {text_document("abcdefgh")}, tok, config, out, stats);
  REQUIRE(out.size() == 2);  // 10 tokens in chunks of sequence_len 5
  CHECK(out[1].tokens == std::vector<int32_t>{'e', 'f', 'g', 'h', tok.eos()});
  // Below sequence_len, the chunks are held to it too: truncated here.
  config.eval_sequence_len = 3;
  config.excess_length_strategy = "truncate";
  out.clear();
  append_examples({"c.txt", "completion"}, {text_document("abcdefgh")}, tok, config, out, stats);
  REQUIRE(out.size() == 2);
  CHECK(out[0].tokens == std::vector<int32_t>{tok.bos(), 'a', 'b'});
  config.excess_length_strategy = "raise";
  CHECK(error_of([&] { append_examples({"c.txt", "completion"}, {text_document("abcdefgh")}, tok, config, out, stats); },
                 "(none)")
            .find("longer than eval_sequence_len 3") != std::string::npos);
  // Through load_training_data: the training examples keep sequence_len, test_datasets' reach 8,
  // and their unpacked rows are that long.
  TempDir dir;
  DataConfig data = config_for(dir, dir.write("train.txt", "ab\n"));
  data.sequence_len = 6;
  data.eval_sequence_len = 12;
  data.test_datasets = {
      {dir.write("test.jsonl", "{\"segments\": [{\"text\": \"abcdefghi\", \"label\": true}]}\n"), "input_output"}};
  const TrainingData loaded = load_training_data(data, 42, tok, [](const std::string&) {});
  REQUIRE(loaded.split.val.size() == 1);
  CHECK(loaded.examples->length(loaded.split.val[0]) == 9);
  CHECK(loaded.val_layout.sequence_len == 12);
  CHECK(loaded.train_layout.sequence_len == 6);
}

TEST_CASE("bad input: one line naming the file, the line and what was expected") {
  TempDir dir;
  auto completion = [](const std::string& path) {
    return [=] { load_documents({path, "completion"}, ByteTokenizer()); };
  };
  auto alpaca = [](const std::string& path) { return [=] { load_documents({path, "alpaca"}, ByteTokenizer()); }; };

  std::string p = dir.write("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n");
  std::string e = error_of(completion(p));
  CHECK(e.find(p + ":2: invalid JSON: ") == 0);
  CHECK(e.find('\n') == std::string::npos);

  // A number past a double's range is nlohmann's out_of_range, not a parse_error (found by
  // llm_fuzz documents_*): still bad JSON.
  p = dir.write("overflow.jsonl", "{\"text\": \"ok\"}\n{\"text\": 1e999}\n");
  CHECK(error_of(completion(p)) == p + ":2: invalid JSON: number overflow parsing '1e999'");
  p = dir.write("overflow.json", "[{\"instruction\": \"a\", \"output\": -1e999}]");
  CHECK(error_of(alpaca(p)) == p + ": invalid JSON: number overflow parsing '-1e999'");

  // A NUL byte ends nlohmann's input: without our check, line 2 would be "unexpected end of
  // input" and line 3 would be read as {"text": "ok"}, the bytes after its NUL dropped.
  p = dir.write("nul.jsonl", std::string("{\"text\": \"ok\"}\n\0\n", 17));
  CHECK(error_of(completion(p)) ==
        p + ":2: invalid JSON: a NUL byte at column 1 (JSON holds none; in a string it is written \\u0000)");
  p = dir.write("nul_tail.jsonl", std::string("{\"text\": \"a\"}\n\n{\"text\": \"ok\"}\0junk\n", 35));
  CHECK(error_of(completion(p)).find(p + ":3: invalid JSON: a NUL byte at column 15 ") == 0);
  p = dir.write("nul.json", std::string("[\n  {\"text\": \"a\0\"}\n]", 20));
  CHECK(error_of(completion(p)).find(p + ":2: invalid JSON: a NUL byte at column 14 ") == 0);
  // A 10 MB line that fails: nlohmann quotes all of it; the message keeps its head and tail.
  p = dir.write("long.jsonl", "{\"text\": \"" + std::string(10'000'000, 'x') + "\n");
  e = error_of(completion(p));
  CHECK(e.find(p + ":1: invalid JSON: ") == 0);
  CHECK(e.size() < 1100);
  CHECK(e.find("bytes left out ...] xxx") != std::string::npos);
  // Bytes that are not UTF-8 are written as \xNN, so the message line is UTF-8 text.
  p = dir.write("latin1.jsonl", "{\"text\": \"caf\xe9\"}\n");
  CHECK(error_of(completion(p)).find("last read: '\"caf\\xe9\"'") != std::string::npos);  // \xe9" is no character

  p = dir.write("bad.json",
                "[\n  {\"instruction\": \"a\", \"output\": \"b\"},\n  {\"instruction\": }\n]");
  CHECK(error_of(alpaca(p)).find(p + ":3: invalid JSON: ") == 0);

  p = dir.write("missing.json", "[\n  {\"instruction\": \"a\", \"input\": \"\"},\n  {\"instruction\": \"c\"}\n]");
  CHECK(error_of(alpaca(p)) == p + ":2: missing field \"output\"; expected a JSON object with "
                                   "\"instruction\", \"input\" and \"output\" strings");
  // Missing from one row while another has it: None there, as HF's loader fills the column.
  p = dir.write("some.json", "[\n  {\"instruction\": \"a\", \"output\": \"b\"},\n  {\"instruction\": \"c\"}\n]");
  CHECK(text_of(load_documents({p, "alpaca"}, ByteTokenizer()).at(1), Loss::trained).empty());

  p = dir.write("type.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": 5}\n");
  CHECK(error_of(completion(p)) == p + ":3: field \"text\" is a number, expected a string");

  p = dir.write("array.jsonl", "{\"text\": \"ok\"}\n[1, 2]\n");
  CHECK(error_of(completion(p)).find(p + ":2: expected a JSON object with a \"text\" string, got "
                                         "a JSON array") == 0);
  p = dir.write("numbers.json", "[1, 2]");  // HF's list of texts: rows {"text": 1}, {"text": 2}
  CHECK(error_of(completion(p)) == p + ":1: field \"text\" is a number, expected a string");

  p = dir.write("notes.txt", "x");
  CHECK(error_of(alpaca(p)) == p + ": a .txt file holds rows of plain text; an alpaca dataset needs JSON rows "
                                   "(.json, .jsonl, or ds_type: json)");

  p = dir.write("empty.jsonl", "\n\n");
  CHECK(error_of(completion(p)) == p + ": the completion dataset holds no documents");
  fs::create_directories(dir.path / "empty_dir");
  p = (dir.path / "empty_dir").string();
  CHECK(error_of(completion(p)) == p + ": the completion dataset holds no documents");

  p = (dir.path / "nowhere").string();
  CHECK(error_of(completion(p)).find(p + ": dataset path is neither a file nor a directory") == 0);

  DataConfig config = config_for(dir, dir.write("one.txt", "tiny"));
  config.val_set_size = 2;
  ByteTokenizer tok;
  CHECK(error_of([&] { load_training_data(config, 42, tok, [](const std::string&) {}); })
            .find("test.yaml: val_set_size: 2 takes 2 of the 1 examples") == 0);
  auto data = counting_data(3, 8);
  LoaderOptions dropping;
  dropping.drop_last = true;
  CHECK(error_of([&] { DataLoader(data, rows(3), layout(8), 4, 1, dropping); })
            .find("3 training rows of at most sequence_len 8 tokens, fewer than micro_batch_size 4 x 1 ranks, "
                  "and dataloader_drop_last drops them all") != std::string::npos);
  CHECK(DataLoader(data, rows(3), layout(8), 4, 1).num_batches_per_epoch() == 1);
  // Nothing fits: every example longer than sequence_len is dropped, and the message says so.
  config.val_set_size = 0;
  config.datasets = {{dir.write("a.jsonl", "{\"instruction\": \"long\", \"output\": \"x\"}\n"), "alpaca"}};
  CHECK(error_of([&] { load_training_data(config, 42, tok, [](const std::string&) {}); })
            == "test.yaml: datasets: no example fits sequence_len 8 and min_sample_len 2 (1 longer than sequence_len 8, "
               "which excess_length_strategy: truncate keeps cut)");
  // Rows under min_sample_len are told apart from the long ones.
  config.min_sample_len = 100;
  config.datasets = {{dir.write("b.jsonl", "{\"instruction\": \"a\", \"output\": \"b\"}\n"), "alpaca"}};
  config.sequence_len = 600;  // the alpaca prompt (bytes here) is longer than 8 tokens
  config.min_sample_len = 700;
  CHECK(error_of([&] { load_training_data(config, 42, tok, [](const std::string&) {}); }) ==
        "test.yaml: datasets: no example fits sequence_len 600 and min_sample_len 700 (1 shorter than min_sample_len 700)");
  // A completion text is cut into chunks of sequence_len, none too long: below min_sample_len every one is short.
  config.sequence_len = 1;
  config.min_sample_len = -1;
  config.datasets = {{dir.write("c.txt", "hello world\n"), "completion"}};
  CHECK(error_of([&] { load_training_data(config, 42, tok, [](const std::string&) {}); }) ==
        "test.yaml: datasets: no example fits sequence_len 1 and min_sample_len 2 (no length is both, as sequence_len "
        "is below min_sample_len)");
  config.sequence_len = 8;
  // They fit, but none has a token that trains: said so, not as a length problem.
  config.datasets = {{dir.write("io.jsonl", "{\"segments\": [{\"text\": \"hi\", \"label\": false}]}\n"), "input_output"}};
  CHECK(error_of([&] { load_training_data(config, 42, tok, [](const std::string&) {}); })
            .find("test.yaml: datasets: no example has a token that trains (1 without one") == 0);
  // Truncation cut off every target: the message names sequence_len among the causes.
  config.excess_length_strategy = "truncate";
  config.datasets = {{dir.path.string() + "/a.jsonl", "alpaca"}};
  CHECK(error_of([&] { load_training_data(config, 42, tok, [](const std::string&) {}); }) ==
        "test.yaml: datasets: no example has a token that trains (1 without one, 1 of them truncated to sequence_len 8, "
        "which can cut off the targets: check train_on_inputs, roles_to_train, sequence_len and the datasets' field "
        "names)");
}

// Debian's fortunes package (make deps installs it); without it the case reports "skipped".
const char* const kFortunes = "/usr/share/games/fortunes";

TEST_CASE("the fortunes corpus: many documents, byte entropy between 3 and 5 nats" *
          doctest::skip(!fs::is_directory(kFortunes))) {
  const std::string dir = kFortunes;
  std::vector<Document> docs = load_documents({dir, "completion"}, ByteTokenizer());
  ByteTokenizer tok;
  DataConfig config;
  std::vector<Example> examples;
  ExampleStats stats;
  append_examples({dir, "completion"}, docs, tok, config, examples, stats);
  ExampleSet set;
  for (const Example& ex : examples) set.add(ex);
  double entropy = unigram_entropy(set, iota_windows(set.size()));
  MESSAGE(docs.size() << " documents, " << set.tokens.size() << " tokens, " << set.size()
                      << " examples of at most 256; byte unigram entropy " << entropy << " nats");
  CHECK(docs.size() > 1000);
  CHECK(entropy > 3.0);
  CHECK(entropy < 5.0);
}

