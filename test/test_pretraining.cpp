// pretraining_dataset (io/pretraining.h) held to Axolotl 0.19's own stream
// (test/data/pretraining_reference/cases.json, written by tools/make_pretraining_reference.py with
// Axolotl's functions over HF datasets 4.8's streaming loader): each epoch's rows, in order, for
// rows of BOS + text cut at sequence_len - 2 (a shuffle buffer smaller than the stream, one that
// holds it all, skip without shuffling, two files whose order the shuffle permutes too) and packed
// bins (pretrain's overlapping windows; completion's chunks; one causal sequence a bin with
// pretrain_multipack_attn false), in the main process and in a
// dataloader worker (Axolotl's default on a GPU node), then llm_train runs: training, the
// refusals, an exact resume across an epoch of a packed stream, and test_datasets as its eval set.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/dataset.h"
#include "io/pretraining.h"
#include "io/tokenizer.h"
#include "test/test_files.h"
#include "test/train_fixture.h"
#include "train/config.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const fs::path kData = fs::path(__FILE__).parent_path() / "data";

const json& fixture() {
  static const json cases = json::parse(read_file((kData / "pretraining_reference" / "cases.json").string()));
  return cases;
}

// A case's files in a scratch directory, its config read as llm_train reads it.
struct LoadedCase {
  TempDir work;
  TrainConfig config;
  std::unique_ptr<Tokenizer> tokenizer;

  explicit LoadedCase(const json& c) {
    fs::create_directories(work.path / "data");
    for (const json& f : c["files"]) write_file((work.path / "data" / f["file"].get<std::string>()).string(), f["content"]);
    std::string yaml = kSmallModel + "tokenizer_config: " + (kData / "axolotl_rows").string() + "\n" +
                       "output_dir: " + (work.path / "out").string() + "\nmax_steps: 10\nseed: 42\nsequence_len: 16\n" +
                       "flash_attention: true\npretraining_dataset:\n  - path: " + (work.path / "data").string() + "\n";
    for (const auto& [key, value] : c["entry"].items()) yaml += "    " + key + ": " + value.dump() + "\n";
    for (const auto& [key, value] : c["config"].items()) yaml += key + ": " + value.dump() + "\n";
    config = parse_config(yaml, "cases.yaml");
    config.data.micro_batch_size = config.micro_batch_size;  // as the trainer hands these on (no GPU here)
    config.data.stream_in_worker = config.dataloader_workers(0) > 0;
    tokenizer = make_tokenizer(config.tokenizer_config);
  }
};

std::vector<int32_t> ids_of(const json& row, const char* key) { return row[key].get<std::vector<int32_t>>(); }

}  // namespace

TEST_CASE("pretraining_dataset: each epoch's rows are Axolotl's stream, row for row and token for token") {
  REQUIRE(fixture()["cases"].size() == 10);
  for (const json& c : fixture()["cases"]) {
    const std::string name = c["name"];
    CAPTURE(name);
    const LoadedCase loaded(c);
    const TrainingData data = load_training_data(loaded.config.data, 42, *loaded.tokenizer, [](const std::string&) {});
    const ExampleSet& examples = *data.examples;
    const bool packed = loaded.config.data.sample_packing;
    for (int64_t epoch = 0; epoch < 2; epoch++) {
      CAPTURE(epoch);
      const json& want = c["epochs"][static_cast<size_t>(epoch)];
      const std::vector<Row> rows = data.stream_rows(epoch, 0);
      REQUIRE(rows.size() == want.size());
      for (size_t r = 0; r < rows.size(); r++) {
        CAPTURE(r);
        std::vector<int32_t> tokens, positions;
        for (int64_t e : rows[r]) {
          for (int64_t i = examples.offsets[e]; i < examples.offsets[e + 1]; i++) {
            tokens.push_back(examples.tokens[i]);
            positions.push_back(static_cast<int32_t>(i - examples.offsets[e]));
          }
        }
        std::vector<int32_t> expected = ids_of(want[r], "input_ids");
        if (!packed) {
          CHECK(tokens == expected);
          continue;
        }
        // A bin comes padded to a multiple of sequence_len (its pad is EOS); its windows' position
        // ids restart at each window.
        REQUIRE(expected.size() >= tokens.size());
        CHECK(expected.size() == (tokens.size() + 15) / 16 * 16);
        CHECK(std::vector<int32_t>(expected.begin(), expected.begin() + static_cast<int64_t>(tokens.size())) == tokens);
        if (!want[r].contains("position_ids")) {  // pretrain_multipack_attn false: one causal sequence
          CHECK(data.train_layout.positions_continue);
          CHECK_FALSE(data.train_layout.packed);
          continue;
        }
        const std::vector<int32_t> want_positions = ids_of(want[r], "position_ids");
        CHECK(std::vector<int32_t>(want_positions.begin(), want_positions.begin() + static_cast<int64_t>(positions.size())) ==
              positions);
      }
    }
  }
}

TEST_CASE("pretraining_windows: the tokenizer's overflowing windows with a stride, each BOS + window + EOS") {
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  // sequence_len 8: windows of 6 ids, stride min(256, 7 / 2) = 3, so each starts 3 after the last.
  const auto windows = pretraining_windows(ids, 8, 100, 101);
  REQUIRE(windows.size() == 3);
  CHECK(windows[0] == std::vector<int32_t>{100, 1, 2, 3, 4, 5, 6, 101});
  CHECK(windows[1] == std::vector<int32_t>{100, 4, 5, 6, 7, 8, 9, 101});
  CHECK(windows[2] == std::vector<int32_t>{100, 7, 8, 9, 10, 101});
  CHECK(pretraining_windows({}, 8, 100, 101) == std::vector<std::vector<int32_t>>{{100, 101}});
  CHECK(pretraining_windows({1, 2, 3, 4, 5, 6}, 8, 100, 101).size() == 1);
}

namespace {

// A config training on the workspace's corpus (a .txt file: a text per line) as a
// pretraining_dataset with `entry` keys, and `extra` keys; CORPUS in either is the corpus' path.
std::string stream_config(const Workspace& ws, const std::string& entry, const std::string& extra) {
  const std::string corpus = (ws.dir / "corpus.txt").string(), path = (ws.dir / "stream.yaml").string();
  std::string yaml = kSmallModel + "pretraining_dataset:\n  - path: CORPUS\n" + entry + extra +
                     "streaming: true\noutput_dir: " + ws.out() + "\nsequence_len: 32\ngradient_accumulation_steps: 2\n"
                     "learning_rate: 0.003\nlr_scheduler: constant\nlogging_steps: 1\nseed: 7\nsave_total_limit: 10\n"
                     "overwrite_output_dir: true\n";
  for (size_t at = yaml.find("CORPUS"); at != std::string::npos; at = yaml.find("CORPUS", at)) yaml.replace(at, 6, corpus);
  write_file(path, yaml);
  return path;
}

// 3 steps, a resume for 3 more: the same losses and weights as 6 straight.
void check_stream_resume(const std::string& name, const std::string& entry, const std::string& extra) {
  Workspace straight(name + "_straight"), resumed(name + "_resumed");
  const std::string steps = "max_steps: 6\nsave_steps: 3\n";
  Run a = run_train(stream_config(straight, entry, extra + steps));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b1 = run_train(stream_config(resumed, entry, extra + steps) + " --max_steps 3");
  REQUIRE_MESSAGE(b1.exit_code == 0, b1.output);
  Run b2 = run_train("--resume " + resumed.out(checkpoint_dir_name(3)) + " --max_steps 6");
  REQUIRE_MESSAGE(b2.exit_code == 0, b2.output);
  CHECK(train_records(straight.out("metrics.jsonl")) == train_records(resumed.out("metrics.jsonl")));
  check_same_model(straight.out(checkpoint_dir_name(6)), resumed.out(checkpoint_dir_name(6)));
  if (extra.find("test_datasets") != std::string::npos)
    CHECK_MESSAGE(read_file(straight.out("metrics.jsonl")).find("\"eval_loss\"") != std::string::npos, a.output);
}

}  // namespace

// 10 texts in rows of 2, 2 micro-batches a step: each epoch ends inside a step (a short one) and
// the next shuffles the stream afresh; the corpus' own lines as test_datasets, the eval set.
TEST_CASE("pretraining_dataset: llm_train trains on the stream across epochs, evaluates test_datasets, resumes exactly") {
  check_stream_resume("stream_rows", "    skip: 390\n",
                      "micro_batch_size: 2\ntest_datasets:\n  - path: CORPUS\n    type: completion\neval_steps: 3\n");
}

// 3 texts in windows, a bin of 32 tokens each micro-batch: an epoch of a few steps, packed afresh
// the next.
TEST_CASE("pretraining_dataset with sample_packing: windows packed per map batch, exact across a resume") {
  const std::string packed = "micro_batch_size: 1\nsample_packing: true\nflash_attention: true\nstreaming_multipack_buffer_size: 2\n";
  check_stream_resume("stream_packed", "    skip: 397\n", packed);
  // pretrain_multipack_attn false: each bin one causal sequence, positions running on across its
  // windows.
  check_stream_resume("stream_one_sequence", "    skip: 397\n", packed + "pretrain_multipack_attn: false\n");
  TempDir dir;
  write_file((dir.path / "texts.txt").string(), "the quick brown fox jumps\nover the lazy dog\n");
  DataConfig config;
  config.source = "t.yaml";
  config.sequence_len = 8;
  config.micro_batch_size = 2;
  config.sample_packing = true;
  config.pretraining = PretrainingSource{{(dir.path / "texts.txt").string(), "completion"}};
  config.pretraining->multipack_attn = false;
  ByteTokenizer tok;
  const TrainingData data = load_training_data(config, 7, tok, [](const std::string&) {});
  const std::vector<Row> rows = data.stream_rows(0, 0);
  const int64_t first = 0;
  const Batch batch = make_batch(*data.examples, rows, &first, 1, data.train_layout);
  CHECK_FALSE(batch.doc_ids.defined());
  const std::vector<int32_t> positions = batch.positions.to_ints();
  REQUIRE(rows[0].size() > 1);  // windows of at most 8 tokens in a bin of 16
  for (int64_t i = 0; i < row_length(*data.examples, rows[0]); i++) CHECK(positions[static_cast<size_t>(i)] == i);
}

TEST_CASE("pretraining_dataset: what Axolotl refuses, or what is not built, stops in one line") {
  Workspace ws("stream_refused");
  const std::tuple<std::string, std::string, std::string> cases[] = {
      {"", "", "pretraining_dataset: expected max_steps with it"},
      {"", "max_steps: 2\nval_set_size: 0.1\n", "val_set_size: expected 0 with pretraining_dataset"},
      {"", "max_steps: 2\npretraining_sample_concatenation: true\n",
       "pretraining_sample_concatenation: expected false or unset without sample_packing"},
      {"", "max_steps: 2\nrl: dpo\n", "rl: expected no rl with pretraining_dataset"},
      {"    skip: 400\n", "max_steps: 2\n", "holds 400 texts, none after skip 400"},
      {"    type: alpaca\n", "max_steps: 2\nsample_packing: true\nflash_attention: true\n",
       "pretraining_dataset: expected type pretrain or completion with sample_packing"},
      {"    split: train[:10%]\n", "max_steps: 2\n", "pretraining_dataset[0].split: expected train (a stream has no slices)"},
  };
  for (const auto& [entry, extra, message] : cases) {
    CAPTURE(entry + extra);
    Run r = run_train(stream_config(ws, entry, extra));
    CHECK(r.exit_code != 0);
    CHECK_MESSAGE(r.output.find(message) != std::string::npos, r.output);
  }
  // streaming without a pretraining_dataset: `datasets` are read whole, not streamed.
  Run r = run_train(ws.config("max_steps: 1\nstreaming: true\n"));
  CHECK(r.exit_code != 0);
  CHECK_MESSAGE(r.output.find("streaming: expected pretraining_dataset with it") != std::string::npos, r.output);
  // Empty texts unpacked: rows of BOS alone, nothing to predict (it trained a loss of 0).
  const std::string empty = (ws.dir / "empty.jsonl").string();
  write_file(empty, "{\"text\": \"\"}\n{\"text\": \"\"}\n");
  const std::string config = (ws.dir / "empty.yaml").string();
  write_file(config, kSmallModel + "pretraining_dataset:\n  - path: " + empty + "\nstreaming: true\nmax_steps: 1\noutput_dir: " +
                         ws.out() + "\n");
  r = run_train(config);
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.output.find("empty.jsonl gives no rows with a token to predict; expected longer texts") != std::string::npos,
                r.output);
}
