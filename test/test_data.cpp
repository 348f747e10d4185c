// The data pipeline: byte tokenizer, document loading, examples (masks, chunks, drops), rows (one
// example each, or multipacked) and the LM shift, train/val split, per-epoch order, cursor
// restore, sharding, the token cache and bad-input messages.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "io/dataset.h"
#include "io/dataset_split.h"
#include "io/token_cache.h"
#include "engine/user_error.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;

namespace {

std::vector<int32_t> ids(const Tensor& t) { return t.to_ints(); }

// n examples of `length` tokens; every token of example e is e, so rows are easy to recognise.
std::shared_ptr<const ExampleSet> counting_data(int64_t n, int64_t length) {
  auto data = std::make_shared<ExampleSet>();
  for (int64_t e = 0; e < n; e++) {
    const std::vector<int32_t> t(length, static_cast<int32_t>(e));
    data->add({t, t});
  }
  return data;
}

std::vector<int64_t> iota_windows(int64_t n) {
  std::vector<int64_t> w(n);
  for (int64_t i = 0; i < n; i++) w[i] = i;
  return w;
}

std::vector<Row> rows(int64_t n) { return one_example_per_row(iota_windows(n)); }
RowLayout layout(int64_t L) { return {L, false, false, 258}; }

// An example from text pieces: "x" untrained, "Y" trained (one byte token each).
Example example_of(const std::string& mask) {
  Example ex;
  for (char c : mask) {
    ex.tokens.push_back(c);
    ex.labels.push_back(std::isupper(static_cast<unsigned char>(c)) ? c : kIgnoreIndex);
  }
  return ex;
}

// The window index a batch row came from, read back from its first input token.
std::vector<int64_t> rows_of(const Batch& b, int64_t sequence_len) {
  std::vector<int32_t> in = ids(b.inputs);
  std::vector<int64_t> rows;
  for (size_t r = 0; r < in.size(); r += sequence_len) rows.push_back(in[r]);
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
  std::vector<Document> docs = load_documents(spec, ByteTokenizer());
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
  for (const char* bad : {"test", "train[", "train[1:2%]", "train[:101%]", "train[a:]", "train+test", "train[:20%](pct1_dropremainder)"})
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
  CHECK(all.labels == std::vector<int32_t>{kIgnoreIndex, 'Q', ':', 'A', tok.eos()});
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
  // Axolotl's raise: the first long example stops the run, named.
  config.excess_length_strategy = "raise";
  ExampleStats fresh;
  CHECK(error_of([&] { append_examples({"a.json", "alpaca"}, sft, tok, config, out, fresh); }, "(none)") ==
        "a.json: document 1 is 14 tokens, longer than sequence_len 5 (excess_length_strategy: raise; drop or truncate "
        "would train without it)");
}

TEST_CASE("rows: the LM shift stays inside each example; padding takes no loss") {
  auto data = std::make_shared<ExampleSet>();
  data->add(example_of("xAB"));   // x untrained: targets A, B
  data->add(example_of("yzCDE"));
  data->add(example_of("wF"));
  const std::vector<Row> one_each = one_example_per_row({0, 1, 2});
  const int64_t which[] = {0, 1, 2};
  // sequence_len 5: the longest row, so no padding to a multiple of kRowLengthMultiple.
  Batch b = make_batch(*data, one_each, which, 3, {5, false, false, 0});
  CHECK(b.inputs.shape() == Shape{3, 5});  // padded to the longest row
  const int32_t I = kIgnoreIndex;
  CHECK(ids(b.targets) == std::vector<int32_t>{'A', 'B', I, I, I,  //
                                               I, 'C', 'D', 'E', I,  //
                                               'F', I, I, I, I});
  CHECK(ids(b.inputs)[3] == 0);  // the pad id
  CHECK(ids(b.positions) == std::vector<int32_t>{0, 1, 2, 0, 0, 0, 1, 2, 3, 4, 0, 1, 0, 0, 0});
  CHECK(b.num_targets == 6);
  CHECK(b.num_tokens == 10);
  CHECK_FALSE(b.doc_ids.defined());
  CHECK(make_batch(*data, one_each, which, 1, {8, true, false, 0}).inputs.shape() == Shape{1, 8});
  // A longer sequence_len: lengths round up to the multiple, so a GPU meets few shapes.
  Batch wide = make_batch(*data, one_each, which, 3, {200, false, false, 0});
  CHECK(wide.inputs.shape() == Shape{3, kRowLengthMultiple});
  CHECK(wide.num_targets == 6);
  CHECK(wide.num_tokens == 10);

  // A packed row: examples side by side, each its own document, positions restarting.
  const std::vector<Row> packed = {{1, 0}};
  Batch p = make_batch(*data, packed, which, 1, {8, false, true, 0});
  CHECK(p.inputs.shape() == Shape{1, 8});
  CHECK(ids(p.targets) == std::vector<int32_t>{I, 'C', 'D', 'E', I, 'A', 'B', I});
  CHECK(ids(p.positions) == std::vector<int32_t>{0, 1, 2, 3, 4, 0, 1, 2});
  CHECK(ids(p.doc_ids) == std::vector<int32_t>{0, 0, 0, 0, 0, 1, 1, 1});
}

TEST_CASE("multipack: whole examples, first-fit decreasing, no row over capacity, none lost") {
  auto data = std::make_shared<ExampleSet>();
  const std::vector<int64_t> lengths = {5, 3, 8, 2, 7, 1, 4, 6, 2, 2};
  for (int64_t n : lengths) data->add(example_of(std::string(n, 'A')));
  const std::vector<Row> rows8 = pack_rows(*data, iota_windows(10), 8);
  std::multiset<int64_t> seen;
  for (const Row& row : rows8) {
    int64_t used = 0;
    for (int64_t e : row) used += data->length(e), seen.insert(e);
    CHECK(used <= 8);
  }
  CHECK(seen == std::multiset<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  // 40 tokens in rows of 8: FFD needs exactly 5 here.
  CHECK(rows8.size() == 5);
  CHECK(rows8[0] == Row{2});  // the longest first
  CHECK(packing_efficiency(*data, rows8, 8) == doctest::Approx(1.0));
  CHECK_THROWS(pack_rows(*data, {2}, 7));
}

TEST_CASE("validation split: sizes, determinism, disjoint") {
  CHECK(split_examples(100, 0.0, 1).val.empty());
  CHECK(split_examples(100, 0.0, 1).train.size() == 100);
  CHECK(split_examples(100, 0.05, 1).val.size() == 5);
  CHECK(split_examples(100, 0.001, 1).val.size() == 1);
  CHECK(split_examples(100, 7, 1).val.size() == 7);
  ExampleSplit a = split_examples(1000, 0.1, 42), b = split_examples(1000, 0.1, 42);
  CHECK(a.val == b.val);
  CHECK(a.train == b.train);
  CHECK(split_examples(1000, 0.1, 43).val != a.val);
  std::set<int64_t> all(a.train.begin(), a.train.end());
  all.insert(a.val.begin(), a.val.end());
  CHECK(all.size() == 1000);
  CHECK(std::is_sorted(a.val.begin(), a.val.end()));
  CHECK(a.val.back() > 900);  // spread over the data, not its head
  CHECK(split_examples(2, 0.5, 1).train.size() == 1);
  std::string e = error_of([] { split_examples(3, 3, 1); });
  CHECK(e.find("val_set_size: 3 takes 3 of the 3 examples") != std::string::npos);
  CHECK(error_of([] { split_examples(1, 0.5, 1); }).find("leaving none to train on") !=
        std::string::npos);
}

TEST_CASE("epoch order: deterministic from (seed, epoch), different across epochs") {
  const int64_t L = 4, n = 40;
  auto data = counting_data(n, L);
  DataLoader a(data, rows(n), layout(L), 4, 7), b(data, rows(n), layout(L), 4, 7);
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
  DataLoader other_seed(data, rows(n), layout(L), 4, 8);
  CHECK(rows_of(other_seed.batch_at(0, 0), L) != rows_of(b.batch_at(0, 0), L));
}

TEST_CASE("an epoch's last rows: a smaller last batch (torch's), or dropped with dataloader_drop_last") {
  const int64_t L = 4, n = 42;
  auto data = counting_data(n, L);
  DataLoader kept(data, rows(n), layout(L), 4, 7);
  LoaderOptions dropping;
  dropping.drop_last = true;
  DataLoader dropped(data, rows(n), layout(L), 4, 7, dropping);
  CHECK(kept.num_batches_per_epoch() == 11);  // 10 of 4 rows and 1 of 2
  CHECK(dropped.num_batches_per_epoch() == 10);
  for (int64_t epoch = 0; epoch < 2; epoch++) {
    std::vector<int64_t> seen;
    for (int64_t b = 0; b < 11; b++) {
      const Batch batch = kept.next();
      CHECK(batch.inputs.shape()[0] == (b < 10 ? 4 : 2));
      for (int64_t w : rows_of(batch, L)) seen.push_back(w);
      if (b < 10) CHECK(rows_of(batch, L) == rows_of(dropped.batch_at(epoch, b), L));
    }
    std::sort(seen.begin(), seen.end());
    CHECK(seen == iota_windows(n));  // every row once an epoch
  }
  CHECK(kept.cursor() == DataCursor{2, 0});
  CHECK(loader_options(DataConfig(), 0, 1, 1).drop_last == false);
  DataConfig packed;
  packed.sample_packing = true;  // Axolotl's multipack sampler drops them whatever the key says
  CHECK(loader_options(packed, 0, 1, 1).drop_last == true);
}

TEST_CASE("curriculum_sampling: one fixed order every epoch, the datasets' own or one shuffle") {
  const int64_t L = 4, n = 12;
  auto data = counting_data(n, L);
  DataConfig config;
  CHECK(row_order(config) == RowOrder::shuffled_per_epoch);
  config.curriculum_sampling = true;
  CHECK(row_order(config) == RowOrder::fixed_shuffle);
  config.shuffle_merged_datasets = false;
  CHECK(row_order(config) == RowOrder::as_given);
  auto epoch_rows = [&](DataLoader& loader, int64_t epoch) {
    std::vector<int64_t> out;
    for (int64_t b = 0; b < loader.num_batches_per_epoch(); b++)
      for (int64_t w : rows_of(loader.batch_at(epoch, b), L)) out.push_back(w);
    return out;
  };
  DataLoader as_given(data, rows(n), layout(L), 3, 7, {0, 1, RowOrder::as_given});
  CHECK(epoch_rows(as_given, 0) == iota_windows(n));
  CHECK(epoch_rows(as_given, 3) == iota_windows(n));
  // fixed_shuffle: the per-epoch shuffle's first epoch, then the same again.
  DataLoader fixed(data, rows(n), layout(L), 3, 7, {0, 1, RowOrder::fixed_shuffle});
  DataLoader shuffled(data, rows(n), layout(L), 3, 7);
  CHECK(epoch_rows(fixed, 0) == epoch_rows(shuffled, 0));
  CHECK(epoch_rows(fixed, 1) == epoch_rows(shuffled, 0));
  CHECK(epoch_rows(shuffled, 1) != epoch_rows(shuffled, 0));
  CHECK(epoch_rows(fixed, 0) != iota_windows(n));
}

TEST_CASE("cursor save and restore continue identically") {
  const int64_t L = 4, n = 30;
  auto data = counting_data(n, L);
  DataLoader straight(data, rows(n), layout(L), 3, 5);
  std::vector<std::vector<int32_t>> expected;
  for (int i = 0; i < 25; i++) expected.push_back(ids(straight.next().inputs));

  DataLoader first(data, rows(n), layout(L), 3, 5);
  for (int i = 0; i < 13; i++) first.next();
  DataCursor saved = first.cursor();
  CHECK(saved == DataCursor{1, 3});
  DataLoader resumed(data, rows(n), layout(L), 3, 5);
  resumed.set_cursor(saved);
  for (int i = 13; i < 25; i++) CHECK(ids(resumed.next().inputs) == expected[i]);
  CHECK(error_of([&] { resumed.set_cursor({0, 10}); }).find("outside the 10 batches") !=
        std::string::npos);
}

TEST_CASE("sharding: world 2 covers the batches of world 1 without overlap") {
  const int64_t L = 4, n = 48;
  auto data = counting_data(n, L);
  DataLoader single(data, rows(n), layout(L), 3, 11);
  DataLoader rank0(data, rows(n), layout(L), 3, 11, {0, 2}), rank1(data, rows(n), layout(L), 3, 11, {1, 2});
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
  // Ranks always draw as many batches, each whole: with dataloader_drop_last 17 global batches
  // give 5 each; without, accelerate's even batches give 6 each, the epoch's order going on with
  // its first 3 x 2 rows.
  CHECK(DataLoader(data, rows(34), layout(L), 2, 11, {1, 3, RowOrder::shuffled_per_epoch, 1, true})
            .num_batches_per_epoch() == 5);
  std::vector<DataLoader> ranks;
  for (int r = 0; r < 3; r++) ranks.emplace_back(data, rows(34), layout(L), 2, 11, LoaderOptions{r, 3});
  DataLoader one(data, rows(34), layout(L), 6, 11);  // one rank's batch g: the three ranks' batch g
  for (int64_t b = 0; b < 6; b++) {
    std::vector<int64_t> global;
    for (DataLoader& rank : ranks) {
      REQUIRE(rank.num_batches_per_epoch() == 6);
      const std::vector<int64_t> w = rows_of(rank.batch_at(0, b), L);
      CHECK(w.size() == 2);
      global.insert(global.end(), w.begin(), w.end());
    }
    const std::vector<int64_t> expected = rows_of(one.batch_at(0, b), L);
    if (b < 5) CHECK(global == expected);
    else {  // rows 30..33 of the order, then its rows 0 and 1 again
      CHECK(std::vector<int64_t>(global.begin(), global.begin() + 4) == expected);
      const std::vector<int64_t> first = rows_of(one.batch_at(0, 0), L);
      CHECK(std::vector<int64_t>(global.begin() + 4, global.end()) == std::vector<int64_t>(first.begin(), first.begin() + 2));
    }
  }
  // Fewer rows than the ranks' first batches: they are cycled to fill every rank's.
  std::vector<int64_t> served;
  for (int r = 0; r < 3; r++) {
    DataLoader rank(data, rows(4), layout(L), 2, 11, LoaderOptions{r, 3});
    REQUIRE(rank.num_batches_per_epoch() == 1);
    for (int64_t w : rows_of(rank.batch_at(0, 0), L)) served.push_back(w);
  }
  CHECK(std::vector<int64_t>(served.begin() + 4, served.end()) == std::vector<int64_t>(served.begin(), served.begin() + 2));
  std::vector<Batch> e0 = eval_batches(*data, rows(7), layout(L), 2, 0, 2);
  std::vector<Batch> e1 = eval_batches(*data, rows(7), layout(L), 2, 1, 2);
  REQUIRE(e0.size() == 2);
  REQUIRE(e1.size() == 2);
  CHECK(rows_of(e0[1], L) == std::vector<int64_t>{4, 5});
  CHECK(rows_of(e1[1], L) == std::vector<int64_t>{6});
  // dataloader_drop_last: the Trainer's eval loader drops the last, smaller batch too.
  const std::vector<Batch> dropped = eval_batches(*data, rows(7), layout(L), 2, 0, 1, true);
  REQUIRE(dropped.size() == 3);
  CHECK(rows_of(dropped[2], L) == std::vector<int64_t>{4, 5});
  CHECK_THROWS_WITH_AS(eval_batches(*data, rows(1), layout(L), 2, 0, 1, true),
                       doctest::Contains("1 validation rows, fewer than an eval batch of 2"), UserError);
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
  CHECK(log.back() == "wrote token cache " + first.cache_path + " (7 examples, 48 tokens)");
  CHECK(first.examples->size() == 7);  // 22 and 26 tokens in chunks of 8
  CHECK(first.split.val.size() == 2);  // ceil(0.25 * 7)
  CHECK(first.split.train.size() == 5);

  TrainingData second = load_training_data(config, 42, tok, logger);
  CHECK(second.cache_reused);
  CHECK(log.back() == "reusing token cache " + second.cache_path);
  CHECK(second.examples->tokens == first.examples->tokens);
  CHECK(second.examples->labels == first.examples->labels);
  CHECK(second.split.val == first.split.val);

  dir.write("text.txt", "the quick brown fox\n%\njumps over the lazy cat\n");
  TrainingData changed = load_training_data(config, 42, tok, logger);
  CHECK_FALSE(changed.cache_reused);
  CHECK(changed.examples->tokens != first.examples->tokens);
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
    CHECK(again.examples->tokens == good.examples->tokens);
    REQUIRE(log.size() == 3);  // the warning, "tokenizing ...", "wrote token cache ..."
    CHECK(log[0].find("warning: token cache " + good.cache_path + " is corrupt") == 0);
    CHECK(log[0].find(why) != std::string::npos);
    CHECK(log[1].find("tokenizing 1 dataset(s) into token cache " + good.cache_path) == 0);
    CHECK(load_training_data(config, 42, tok, logger).cache_reused);
  };
  rebuilt_after([](std::fstream& f) { f.seekp(53), f.put('\x7f'); }, "payload checksum");
  rebuilt_after([](std::fstream& f) { f.seekp(0), f.put('X'); }, "bad magic");
  fs::resize_file(good.cache_path, fs::file_size(good.cache_path) - 4);
  rebuilt_after([](std::fstream&) {}, "header says");
  fs::resize_file(good.cache_path, 10);
  rebuilt_after([](std::fstream&) {}, "shorter than its 48-byte header");
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
            .find("test.yaml: val_set_size: 1 takes 1 of the 1 examples") == 0);
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
            .find("test.yaml: datasets: no example fits sequence_len 8 (1 dropped as longer") == 0);
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

