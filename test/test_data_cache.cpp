// The token cache (reused, rebuilt when a source changes, a corrupt file rebuilt with a warning)
// and what happens to the merged data before training: val_set_size's split, exact deduplication,
// dataset shards, shuffling before merging.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "io/dataset.h"
#include "io/python_shuffles.h"
#include "io/token_cache.h"
#include "test/data_fixture.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;

TEST_CASE("token cache: reused when unchanged, rebuilt when a source changes") {
  TempDir dir;
  std::string src = dir.write("text", "the quick brown fox\n%\njumps over the lazy dog\n");
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

  dir.write("text", "the quick brown fox\n%\njumps over the lazy cat\n");
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

TEST_CASE("val_set_size: the last examples validate where Axolotl leaves the data unshuffled") {
  TempDir dir;
  const std::string src = dir.write("text", "the quick brown fox\n%\njumps over the lazy dog\n");
  DataConfig config = config_for(dir, src);
  config.val_set_size = 2;
  ByteTokenizer tok;
  auto split = [&] { return load_training_data(config, 42, tok, [](const std::string&) {}).split; };
  const std::vector<int64_t> last = {5, 6}, first_five = {0, 1, 2, 3, 4};
  CHECK(split().val != last);  // shuffled once (shuffle_merged_datasets), the seed's picks
  config.shuffle_merged_datasets = false;  // train_test_split(shuffle=False): the tail
  CHECK(split().val == last);
  CHECK(split().train == first_five);
  config.shuffle_merged_datasets = true;  // one dataset under curriculum_sampling: not shuffled
  config.curriculum_sampling = true;
  CHECK(split().val == last);
  config.datasets.push_back(config.datasets[0]);  // two: merged, then shuffled
  CHECK(split().val != std::vector<int64_t>{12, 13});
}

TEST_CASE("dataset_exact_deduplication runs before val_set_size splits, as Axolotl's") {
  TempDir dir;
  DataConfig config = config_for(dir, dir.write("d", "aa\n%\nbb\n%\naa\n%\ncc\n%\nbb\n%\ndd\n"));
  config.exact_deduplication = true;
  config.shuffle_merged_datasets = false;  // the split takes the tail of the unique examples
  config.val_set_size = 2;
  ByteTokenizer tok;
  std::vector<std::string> log;
  const TrainingData d = load_training_data(config, 3, tok, [&](const std::string& l) { log.push_back(l); });
  CHECK(d.split.train == std::vector<int64_t>{0, 1});  // aa, bb
  CHECK(d.split.val == std::vector<int64_t>{3, 5});    // cc, dd: 2 of the 4 unique ones
  CHECK(std::find(log.begin(), log.end(), "dataset_exact_deduplication: 4 of 6 examples kept") != log.end());
}

TEST_CASE("dataset_shard_num: one contiguous shard of the merged data, as HF's Dataset.shard") {
  TempDir dir;
  DataConfig config = config_for(dir, dir.write("d", "a\n%\nb\n%\nc\n%\nd\n%\ne\n%\nf\n%\ng\n"));
  ByteTokenizer tok;
  auto split = [&] { return load_training_data(config, 5, tok, [](const std::string&) {}).split; };
  config.shuffle_merged_datasets = false;  // in file order: shards [0, 3), [3, 5), [5, 7)
  config.shard_num = 3;
  config.shard_idx = 1;
  CHECK(split().train == std::vector<int64_t>{3, 4});
  config.shard_idx = 0;
  config.val_set_size = 0.2;  // then the split, of the shard: its last example validates
  CHECK(split().train == std::vector<int64_t>{0, 1});
  CHECK(split().val == std::vector<int64_t>{2});
  config.val_set_size = 0;
  config.shuffle_merged_datasets = true;  // a contiguous part of HF's Dataset.shuffle(seed=5)
  const std::vector<int64_t> merged = numpy_permutation(7, 5);
  std::vector<int64_t> all;
  for (int64_t idx = 0; idx < 3; idx++) {
    config.shard_idx = idx;
    const std::vector<int64_t> part = split().train;
    const int64_t begin = idx == 0 ? 0 : 1 + 2 * idx;
    CHECK(part == std::vector<int64_t>(merged.begin() + begin, merged.begin() + begin + (idx == 0 ? 3 : 2)));
    all.insert(all.end(), part.begin(), part.end());
  }
  std::sort(all.begin(), all.end());
  CHECK(all == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6});
  config.shard_num = 8;
  config.shard_idx = 7;
  CHECK(error_of([&] { split(); }) ==
        "test.yaml: dataset_shard_idx: shard 7 of 8 holds none of the 7 examples; expected fewer shards or more data");
}

// Axolotl shuffles the merged rows, then filters them: a dropped row takes its place in the
// permutation, so the kept rows' order (and the validation tail) is the permutation of all seven
// with the dropped one left out, not a permutation of the six kept.
TEST_CASE("the merged shuffle is drawn over the rows before the length filters drop any") {
  TempDir dir;
  DataConfig config = config_for(dir, dir.write("d", "x\n%\nrow 1\n%\nrow 2\n%\nrow 3\n%\nrow 4\n%\nrow 5\n%\nrow 6\n"));
  config.min_sample_len = 5;  // "x" and its newline are 4 tokens with BOS and EOS: dropped
  config.val_set_size = 0.1;
  ByteTokenizer tok;
  const TrainingData data = load_training_data(config, 5, tok, [](const std::string&) {});
  std::vector<int64_t> kept;
  for (int64_t e : numpy_permutation(7, 5))
    if (e != 0) kept.push_back(e);
  CHECK(data.split.val == std::vector<int64_t>{kept.back()});
  CHECK(data.split.train == std::vector<int64_t>(kept.begin(), kept.end() - 1));
}

// Axolotl deduplicates the merged examples, then takes dataset_shard_num's shard of what is left.
TEST_CASE("dataset_exact_deduplication before dataset_shard_num: the shard is of the kept examples") {
  TempDir dir;
  DataConfig config = config_for(dir, dir.write("d", "a\n%\na\n%\nb\n%\nc\n"));
  config.shuffle_merged_datasets = false;
  config.exact_deduplication = true;
  config.shard_num = 2;
  config.shard_idx = 1;
  ByteTokenizer tok;
  // a a b c -> a b c -> shards [a, b] and [c] (sharding first kept [b, c]).
  CHECK(load_training_data(config, 5, tok, [](const std::string&) {}).split.train == std::vector<int64_t>{3});
}

// Rows of given ids (input_ids, attention_mask and labels: Axolotl takes them whatever the type)
// are kept whole: one longer than sequence_len is dropped, or refused under raise, as Axolotl's
// length filter treats it; completion's chunking is for text.
TEST_CASE("rows of given ids longer than sequence_len are dropped, never cut into completion chunks") {
  TempDir dir;
  const std::string row6 = "{\"input_ids\": [1, 2, 3, 4, 5, 6], \"attention_mask\": [1, 1, 1, 1, 1, 1], "
                           "\"labels\": [1, 2, 3, 4, 5, 6]}\n";
  const std::string row3 = "{\"input_ids\": [7, 8, 9], \"attention_mask\": [1, 1, 1], \"labels\": [7, 8, 9]}\n";
  DataConfig config = config_for(dir, dir.write("rows.jsonl", row6 + row3));
  config.sequence_len = 4;
  ByteTokenizer tok;
  const TrainingData data = load_training_data(config, 5, tok, [](const std::string&) {});
  REQUIRE(data.examples->kept() == 1);
  CHECK(data.split.train.size() == 1);
  CHECK(data.examples->length(data.split.train[0]) == 3);
  config.excess_length_strategy = "raise";
  CHECK(contains(error_of([&] { load_training_data(config, 5, tok, [](const std::string&) {}); }),
                 "excess_length_strategy: raise"));
}

TEST_CASE("shuffle_before_merging_datasets: each dataset shuffled from the seed, then merged") {
  TempDir dir;
  // Two completion datasets of 8 one-window examples each ("a0" .. "a7", "b0" .. "b7").
  std::string a, b;
  for (int i = 0; i < 8; i++) a += "a" + std::to_string(i) + "\n%\n", b += "b" + std::to_string(i) + "\n%\n";
  DataConfig config = config_for(dir, dir.write("a", a));
  config.datasets.push_back({dir.write("b", b), "completion"});
  config.shuffle_merged_datasets = false;
  config.curriculum_sampling = true;
  config.val_set_size = 3;
  ByteTokenizer tok;
  std::vector<std::string> log;
  auto load = [&](uint64_t seed) {
    return load_training_data(config, seed, tok, [&](const std::string& line) { log.push_back(line); });
  };
  auto first_bytes = [](const TrainingData& d) {  // each example's first text byte, in order
    std::string out;
    for (int64_t e = 0; e < d.examples->size(); e++) out += char(d.examples->tokens[d.examples->offsets[e] + 1]);
    return out;
  };
  const TrainingData plain = load(1);
  CHECK(first_bytes(plain) == "aaaaaaaabbbbbbbb");
  config.shuffle_before_merging_datasets = true;
  const TrainingData shuffled = load(1);
  CHECK(first_bytes(shuffled) == "aaaaaaaabbbbbbbb");  // each dataset's examples stay in its part
  CHECK(shuffled.examples->tokens != plain.examples->tokens);  // but in another order
  std::multiset<int32_t> before(plain.examples->tokens.begin(), plain.examples->tokens.end()),
      after(shuffled.examples->tokens.begin(), shuffled.examples->tokens.end());
  CHECK(before == after);
  CHECK(shuffled.split.val == std::vector<int64_t>{13, 14, 15});  // the tail: b's last three
  CHECK(load(1).cache_reused);
  const TrainingData other_seed = load(2);  // the seed decides the order: the cache is rebuilt
  CHECK_FALSE(other_seed.cache_reused);
  CHECK(other_seed.examples->tokens != shuffled.examples->tokens);
}

// A build killed while writing leaves its temporary, named for its host and process: the next
// build removes this host's whose process is gone, and leaves a live one's and another host's.
TEST_CASE("token cache: a killed build's temporary is removed by the next build") {
  TempDir dir;
  DataConfig config = config_for(dir, dir.write("text.txt", "some text to cache\n"));
  ByteTokenizer tok;
  auto quiet = [](const std::string&) {};
  const std::string cache = load_training_data(config, 42, tok, quiet).cache_path;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  const std::string stale = cache + ".tmp." + host + "." + std::to_string(dead),
                    live = cache + ".tmp." + host + "." + std::to_string(getppid()),  // a live process
                    other_host = cache + ".tmp.another-host." + std::to_string(dead);
  for (const std::string& path : {stale, live, other_host}) write_file(path, "half a cache");
  fs::remove(cache);  // the next run builds (and writes) it again
  CHECK_FALSE(load_training_data(config, 42, tok, quiet).cache_reused);
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(live));
  CHECK(fs::exists(other_host));
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
  // A directory where the cache goes: the run goes on without it, and says it wrote none.
  fs::remove(good.cache_path);
  fs::create_directories(good.cache_path + "/inside");
  log.clear();
  CHECK_FALSE(load_training_data(config, 42, tok, logger).cache_reused);
  CHECK(log.back().find("warning: could not write token cache " + good.cache_path + ": ") == 0);
  CHECK(fs::is_directory(good.cache_path + "/inside"));
}
