// The data pipeline: byte tokenizer, document loading, packing and the LM shift, train/val split,
// per-epoch order, cursor restore, sharding, the token cache and bad-input messages.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "io/dataset.h"
#include "io/token_cache.h"
#include "engine/user_error.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;

namespace {

std::vector<int32_t> ids(const Tensor& t) { return t.to_ints(); }

// A packed dataset whose token i is i % 200, so windows are easy to recognise.
std::shared_ptr<const PackedDataset> counting_data(int64_t num_tokens, int64_t sequence_len) {
  auto data = std::make_shared<PackedDataset>();
  data->sequence_len = sequence_len;
  for (int64_t i = 0; i < num_tokens; i++) {
    data->tokens.push_back(static_cast<int32_t>(i % 200));
    data->labels.push_back(static_cast<int32_t>(i % 200));
  }
  return data;
}

std::vector<int64_t> iota_windows(int64_t n) {
  std::vector<int64_t> w(n);
  for (int64_t i = 0; i < n; i++) w[i] = i;
  return w;
}

// The window index a batch row came from, read back from its first input token.
std::vector<int64_t> rows_of(const Batch& b, int64_t sequence_len) {
  std::vector<int32_t> in = ids(b.inputs);
  std::vector<int64_t> rows;
  for (size_t r = 0; r < in.size(); r += sequence_len) rows.push_back(in[r] / sequence_len);
  return rows;
}

DataConfig config_for(const TempDir& dir, const std::string& data_path) {
  DataConfig c;
  c.source = "test.yaml";
  c.datasets = {{data_path, "completion"}};
  c.dataset_prepared_path = (dir.path / "prepared").string();
  c.sequence_len = 8;
  return c;
}

}  // namespace

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
  std::vector<Document> docs = load_documents(spec);
  REQUIRE(docs.size() == 4);
  CHECK(text_of(docs[0], Loss::trained) == "one whole document\n");
  CHECK(text_of(docs[1], Loss::trained) == "first\nline two\n");
  CHECK(text_of(docs[2], Loss::trained) == "second\n");
  CHECK(text_of(docs[3], Loss::trained) == "third");
  for (const Document& d : docs) CHECK(text_of(d, Loss::prompt).empty());
}

TEST_CASE("jsonl completion reads the text field") {
  TempDir dir;
  std::string path =
      dir.write("c.jsonl", "{\"text\": \"alpha\"}\n\n{\"text\": \"b\\n\", \"id\": 3}\n");
  std::vector<Document> docs = load_documents({path, "completion"});
  REQUIRE(docs.size() == 2);
  CHECK(text_of(docs[0], Loss::trained) == "alpha");
  CHECK(text_of(docs[1], Loss::trained) == "b\n");
}

TEST_CASE("alpaca: loss only on the output and EOS, shifted by one") {
  TempDir dir;
  std::string path = dir.write(
      "a.json",
      "[\n  {\"instruction\": \"Add\", \"input\": \"1 2\", \"output\": \"3\"},\n"
      "  {\"instruction\": \"Greet\", \"input\": \"\", \"output\": \"hi\"}\n]\n");
  std::vector<Document> docs = load_documents({path, "alpaca"});
  REQUIRE(docs.size() == 2);
  CHECK(text_of(docs[0], Loss::prompt) == alpaca_prompt("Add", "1 2"));
  CHECK(text_of(docs[0], Loss::prompt).find("paired with an input") != std::string::npos);
  CHECK(text_of(docs[0], Loss::prompt).find("### Input:\n1 2\n\n### Response:\n") != std::string::npos);
  CHECK(text_of(docs[1], Loss::prompt).find("### Input:") == std::string::npos);
  CHECK(text_of(docs[1], Loss::trained) == "hi");

  ByteTokenizer tok;
  const int64_t L = static_cast<int64_t>(text_of(docs[0], Loss::prompt).size()) + 2;  // window 0 holds output
  PackedDataset p = pack_documents(docs, tok, L);
  const size_t p0 = text_of(docs[0], Loss::prompt).size(), p1 = text_of(docs[1], Loss::prompt).size();
  REQUIRE(p.tokens.size() == (1 + p0 + 1 + 1) + (1 + p1 + 2 + 1));
  for (size_t i = 0; i < p.tokens.size(); i++) {
    const bool doc0_prompt = i <= p0;                                   // BOS + prompt
    const bool doc1_prompt = i >= p0 + 3 && i <= p0 + 3 + p1;           // its BOS + prompt
    CHECK((p.labels[i] == kIgnoreIndex) == (doc0_prompt || doc1_prompt));
    if (p.labels[i] != kIgnoreIndex) CHECK(p.labels[i] == p.tokens[i]);
  }
  CHECK(p.tokens[p0 + 1] == '3');
  CHECK(p.tokens[p0 + 2] == tok.eos());

  // The target at position i is label[i + 1]: the prompt's last token predicts the output.
  auto data = std::make_shared<const PackedDataset>(p);
  Batch b = DataLoader(data, {0}, 1, 0).next();
  std::vector<int32_t> targets = ids(b.targets);
  for (int64_t i = 0; i < L; i++) CHECK(targets[i] == p.labels[i + 1]);
  CHECK(targets[p0] == '3');
  CHECK(targets[p0 - 1] == kIgnoreIndex);
  CHECK(targets[p0 + 1] == tok.eos());
  CHECK(b.num_targets == 2);
}

TEST_CASE("windows of sequence_len + 1 with stride sequence_len; the tail is dropped") {
  ByteTokenizer tok;
  PackedDataset p = pack_documents({{"", "abcdefghij"}, {"", "xyz"}}, tok, 4);
  // [BOS] a..j [EOS] [BOS] x y z [EOS] = 17 tokens: windows start at 0, 4, 8, 12.
  REQUIRE(p.tokens.size() == 17);
  CHECK(p.num_windows() == 4);
  auto data = std::make_shared<const PackedDataset>(p);
  std::vector<Batch> batches = eval_batches(*data, {1, 3}, 2);
  REQUIRE(batches.size() == 1);
  CHECK(batches[0].inputs.shape() == Shape{2, 4});
  CHECK(batches[0].targets.shape() == Shape{8});
  CHECK(ids(batches[0].inputs) == std::vector<int32_t>{'d', 'e', 'f', 'g', 256, 'x', 'y', 'z'});
  CHECK(ids(batches[0].targets) == std::vector<int32_t>{'e', 'f', 'g', 'h', 'x', 'y', 'z', 257});
  CHECK(ids(batches[0].positions) == std::vector<int32_t>{0, 1, 2, 3, 0, 1, 2, 3});
  CHECK(batches[0].num_targets == 8);

  // 18 tokens still make 4 windows; 16 make 3.
  CHECK(pack_documents({{"", "abcdefghijklmnop"}}, tok, 4).num_windows() == 4);
  CHECK(pack_documents({{"", "abcdefghijklmn"}}, tok, 4).num_windows() == 3);

  // A stream shorter than one window is padded into exactly one.
  PackedDataset small = pack_documents({{"", "ab"}}, tok, 8);
  REQUIRE(small.tokens.size() == 9);
  CHECK(small.num_windows() == 1);
  CHECK(small.tokens[8] == tok.pad());
  CHECK(small.labels[3] == tok.eos());
  CHECK(small.labels[4] == kIgnoreIndex);
  Batch b = eval_batches(small, {0}, 1)[0];
  CHECK(b.num_targets == 3);
}

TEST_CASE("validation split: sizes, determinism, disjoint") {
  CHECK(split_windows(100, 0.0, 1).val.empty());
  CHECK(split_windows(100, 0.0, 1).train.size() == 100);
  CHECK(split_windows(100, 0.05, 1).val.size() == 5);
  CHECK(split_windows(100, 0.001, 1).val.size() == 1);
  CHECK(split_windows(100, 7, 1).val.size() == 7);
  WindowSplit a = split_windows(1000, 0.1, 42), b = split_windows(1000, 0.1, 42);
  CHECK(a.val == b.val);
  CHECK(a.train == b.train);
  CHECK(split_windows(1000, 0.1, 43).val != a.val);
  std::set<int64_t> all(a.train.begin(), a.train.end());
  all.insert(a.val.begin(), a.val.end());
  CHECK(all.size() == 1000);
  CHECK(std::is_sorted(a.val.begin(), a.val.end()));
  CHECK(a.val.back() > 900);  // spread over the data, not its head
  CHECK(split_windows(2, 0.5, 1).train.size() == 1);
  std::string e = error_of([] { split_windows(3, 3, 1); });
  CHECK(e.find("val_set_size: 3 takes 3 of the 3 windows") != std::string::npos);
  CHECK(error_of([] { split_windows(1, 0.5, 1); }).find("leaving none to train on") !=
        std::string::npos);
}

TEST_CASE("epoch order: deterministic from (seed, epoch), different across epochs") {
  const int64_t L = 4, n = 40;
  auto data = counting_data(n * L + 1, L);
  DataLoader a(data, iota_windows(n), 4, 7), b(data, iota_windows(n), 4, 7);
  CHECK(a.num_batches_per_epoch() == 10);
  std::vector<int64_t> epoch0, epoch1;
  for (int i = 0; i < 10; i++) {
    Batch batch = a.next();
    CHECK(batch.epoch == 0);
    for (int64_t w : rows_of(batch, L)) epoch0.push_back(w);
  }
  CHECK(a.cursor() == DataCursor{1, 0});
  for (int i = 0; i < 10; i++)
    for (int64_t w : rows_of(a.next(), L)) epoch1.push_back(w);
  std::vector<int64_t> sorted0 = epoch0;
  std::sort(sorted0.begin(), sorted0.end());
  CHECK(sorted0 == iota_windows(n));
  CHECK(epoch0 != iota_windows(n));
  CHECK(epoch0 != epoch1);
  // Random access, out of order, gives the same batches.
  CHECK(rows_of(b.batch_at(1, 3), L) ==
        std::vector<int64_t>(epoch1.begin() + 12, epoch1.begin() + 16));
  CHECK(rows_of(b.batch_at(0, 0), L) ==
        std::vector<int64_t>(epoch0.begin(), epoch0.begin() + 4));
  DataLoader other_seed(data, iota_windows(n), 4, 8);
  CHECK(rows_of(other_seed.batch_at(0, 0), L) != rows_of(b.batch_at(0, 0), L));
  // 42 windows in batches of 4: 10 batches, 2 windows dropped each epoch.
  CHECK(DataLoader(counting_data(42 * L + 1, L), iota_windows(42), 4, 7).num_batches_per_epoch() ==
        10);
}

TEST_CASE("cursor save and restore continue identically") {
  const int64_t L = 4, n = 30;
  auto data = counting_data(n * L + 1, L);
  DataLoader straight(data, iota_windows(n), 3, 5);
  std::vector<std::vector<int32_t>> expected;
  for (int i = 0; i < 25; i++) expected.push_back(ids(straight.next().inputs));

  DataLoader first(data, iota_windows(n), 3, 5);
  for (int i = 0; i < 13; i++) first.next();
  DataCursor saved = first.cursor();
  CHECK(saved == DataCursor{1, 3});
  DataLoader resumed(data, iota_windows(n), 3, 5);
  resumed.set_cursor(saved);
  for (int i = 13; i < 25; i++) CHECK(ids(resumed.next().inputs) == expected[i]);
  CHECK(error_of([&] { resumed.set_cursor({0, 10}); }).find("outside the 10 batches") !=
        std::string::npos);
}

TEST_CASE("sharding: world 2 covers the batches of world 1 without overlap") {
  const int64_t L = 4, n = 48;
  auto data = counting_data(n * L + 1, L);
  DataLoader single(data, iota_windows(n), 3, 11);
  DataLoader rank0(data, iota_windows(n), 3, 11, 0, 2), rank1(data, iota_windows(n), 3, 11, 1, 2);
  CHECK(single.num_batches_per_epoch() == 16);
  CHECK(rank0.num_batches_per_epoch() == 8);
  for (int64_t epoch = 0; epoch < 2; epoch++) {
    std::set<int64_t> seen;
    for (int64_t k = 0; k < 8; k++) {
      std::vector<int64_t> w0 = rows_of(rank0.next(), L), w1 = rows_of(rank1.next(), L);
      CHECK(w0 == rows_of(single.batch_at(epoch, 2 * k), L));
      CHECK(w1 == rows_of(single.batch_at(epoch, 2 * k + 1), L));
      seen.insert(w0.begin(), w0.end());
      seen.insert(w1.begin(), w1.end());
    }
    CHECK(seen.size() == static_cast<size_t>(n));
  }
  // Ranks always draw the same number of batches: 17 global batches give 5 each.
  CHECK(DataLoader(data, iota_windows(34), 2, 11, 1, 3).num_batches_per_epoch() == 5);
  std::vector<Batch> e0 = eval_batches(*data, iota_windows(7), 2, 0, 2);
  std::vector<Batch> e1 = eval_batches(*data, iota_windows(7), 2, 1, 2);
  REQUIRE(e0.size() == 2);
  REQUIRE(e1.size() == 2);
  CHECK(rows_of(e0[1], L) == std::vector<int64_t>{4, 5});
  CHECK(rows_of(e1[1], L) == std::vector<int64_t>{6});
}

TEST_CASE("token cache: reused when unchanged, rebuilt when a source changes") {
  TempDir dir;
  std::string src = dir.write("text.txt", "the quick brown fox\n%\njumps over the lazy dog\n");
  DataConfig config = config_for(dir, src);
  config.val_set_size = 0.25;
  std::vector<std::string> log;
  auto logger = [&](const std::string& line) { log.push_back(line); };
  ByteTokenizer tok;

  TrainingData first = load_training_data(config, 42, tok, logger);
  CHECK_FALSE(first.cache_reused);
  CHECK(fs::exists(first.cache_path));
  CHECK(log.back() == "wrote token cache " + first.cache_path + " (48 tokens)");
  CHECK(first.packed->num_windows() == 5);
  CHECK(first.split.val.size() == 2);  // ceil(0.25 * 5)
  CHECK(first.split.train.size() == 3);

  TrainingData second = load_training_data(config, 42, tok, logger);
  CHECK(second.cache_reused);
  CHECK(log.back() == "reusing token cache " + second.cache_path);
  CHECK(second.packed->tokens == first.packed->tokens);
  CHECK(second.packed->labels == first.packed->labels);
  CHECK(second.split.val == first.split.val);

  dir.write("text.txt", "the quick brown fox\n%\njumps over the lazy cat\n");
  TrainingData changed = load_training_data(config, 42, tok, logger);
  CHECK_FALSE(changed.cache_reused);
  CHECK(changed.packed->tokens != first.packed->tokens);
  CHECK(load_training_data(config, 42, tok, logger).cache_reused);

  config.sequence_len = 16;  // a setting that changes the windows invalidates it too
  CHECK_FALSE(load_training_data(config, 42, tok, logger).cache_reused);
  int other_files = 0;  // no temporary file is left behind
  for (const auto& e : fs::directory_iterator(dir.path / "prepared"))
    other_files += e.path().filename() != "tokens.bin";
  CHECK(other_files == 0);
}

TEST_CASE("token cache: a corrupt or truncated file is rebuilt with a warning") {
  TempDir dir;
  std::string src = dir.write("text.txt", "some text to cache\n");
  DataConfig config = config_for(dir, src);
  std::vector<std::string> log;
  auto logger = [&](const std::string& line) { log.push_back(line); };
  ByteTokenizer tok;
  TrainingData good = load_training_data(config, 42, tok, logger);

  auto rebuilt_after = [&](const std::function<void(std::fstream&)>& damage, const char* why) {
    {
      std::fstream f(good.cache_path, std::ios::in | std::ios::out | std::ios::binary);
      damage(f);
    }
    log.clear();
    TrainingData again = load_training_data(config, 42, tok, logger);
    CHECK_FALSE(again.cache_reused);
    CHECK(again.packed->tokens == good.packed->tokens);
    REQUIRE(log.size() == 2);
    CHECK(log[0].find("warning: token cache " + good.cache_path + " is corrupt") == 0);
    CHECK(log[0].find(why) != std::string::npos);
    CHECK(load_training_data(config, 42, tok, logger).cache_reused);
  };
  rebuilt_after([](std::fstream& f) { f.seekp(45), f.put('\x7f'); }, "payload checksum");
  rebuilt_after([](std::fstream& f) { f.seekp(0), f.put('X'); }, "bad magic");
  fs::resize_file(good.cache_path, fs::file_size(good.cache_path) - 4);
  rebuilt_after([](std::fstream&) {}, "header says");
  fs::resize_file(good.cache_path, 10);
  rebuilt_after([](std::fstream&) {}, "shorter than its 40-byte header");
}

TEST_CASE("bad input: one line naming the file, the line and what was expected") {
  TempDir dir;
  auto completion = [](const std::string& path) {
    return [=] { load_documents({path, "completion"}); };
  };
  auto alpaca = [](const std::string& path) { return [=] { load_documents({path, "alpaca"}); }; };

  std::string p = dir.write("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n");
  std::string e = error_of(completion(p));
  CHECK(e.find(p + ":2: invalid JSON: ") == 0);
  CHECK(e.find('\n') == std::string::npos);

  p = dir.write("bad.json",
                "[\n  {\"instruction\": \"a\", \"output\": \"b\"},\n  {\"instruction\": }\n]");
  CHECK(error_of(alpaca(p)).find(p + ":3: invalid JSON: ") == 0);

  p = dir.write("missing.json",
                "[\n  {\"instruction\": \"a\", \"input\": \"\", \"output\": \"b\"},\n"
                "  {\"instruction\": \"c\",\n   \"input\": \"\"}\n]");
  CHECK(error_of(alpaca(p)) == p + ":3: missing field \"output\"; expected a JSON object with "
                                   "\"instruction\", \"input\" and \"output\" strings");

  p = dir.write("type.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": 5}\n");
  CHECK(error_of(completion(p)) == p + ":3: field \"text\" is a number, expected a string");

  p = dir.write("array.jsonl", "[1, 2]\n");
  CHECK(error_of(completion(p)).find(p + ":1: expected a JSON object with a \"text\" string, got "
                                         "a JSON array") == 0);

  p = dir.write("object.json", "{\"text\": \"x\"}");
  CHECK(error_of(completion(p)).find(p + ":1: expected a JSON array of records") == 0);

  p = dir.write("notes.txt", "x");
  CHECK(error_of(alpaca(p)) == p + ": an alpaca dataset file must be .json or .jsonl");

  p = dir.write("empty.jsonl", "\n\n");
  CHECK(error_of(completion(p)) == p + ": the completion dataset holds no documents");
  fs::create_directories(dir.path / "empty_dir");
  p = (dir.path / "empty_dir").string();
  CHECK(error_of(completion(p)) == p + ": the completion dataset holds no documents");

  p = (dir.path / "nowhere").string();
  CHECK(error_of(completion(p)).find(p + ": dataset path is neither a file nor a directory") == 0);

  DataConfig config = config_for(dir, dir.write("one.txt", "tiny"));
  config.val_set_size = 1;
  ByteTokenizer tok;
  CHECK(error_of([&] { load_training_data(config, 42, tok, [](const std::string&) {}); })
            .find("test.yaml: val_set_size: 1 takes 1 of the 1 windows") == 0);
  auto data = counting_data(3 * 8 + 1, 8);
  CHECK(error_of([&] { DataLoader(data, iota_windows(3), 4, 1); })
            .find("3 training windows of sequence_len 8, fewer than micro_batch_size 4") !=
        std::string::npos);
}

// Debian's fortunes package (make deps installs it); without it the case reports "skipped".
const char* const kFortunes = "/usr/share/games/fortunes";

TEST_CASE("the fortunes corpus: many documents, byte entropy between 3 and 5 nats" *
          doctest::skip(!fs::is_directory(kFortunes))) {
  const std::string dir = kFortunes;
  std::vector<Document> docs = load_documents({dir, "completion"});
  ByteTokenizer tok;
  PackedDataset p = pack_documents(docs, tok, 256);
  double entropy = unigram_entropy(p, iota_windows(p.num_windows()));
  MESSAGE(docs.size() << " documents, " << p.tokens.size() << " tokens, " << p.num_windows()
                      << " windows of 256; byte unigram entropy " << entropy << " nats");
  CHECK(docs.size() > 1000);
  CHECK(entropy > 3.0);
  CHECK(entropy < 5.0);
}

TEST_CASE("restart_per_document: document ids and positions restart at each BOS") {
  Batch b;
  b.inputs = Tensor::from_ints({256, 1, 2, 256, 3, 7, 8, 256}, {2, 4});
  restart_per_document(b, 256);
  CHECK(b.doc_ids.to_ints() == std::vector<int32_t>{0, 0, 0, 1, 0, 0, 0, 1});
  CHECK(b.positions.to_ints() == std::vector<int32_t>{0, 1, 2, 0, 0, 1, 2, 0});
}
