// PoSE (io/pose.h, Axolotl's use_pose): the position ids against Axolotl's add_pose_position_ids
// worked by hand (its draws replaced by given ones), the draws, and the positions the data
// pipeline hands every training (and validation) example. The trajectory against the Trainer fed
// the same position ids is test_hf_trajectory's.
#include <doctest/doctest.h>

#include <numeric>

#include "io/dataset.h"
#include "io/pose.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;

namespace {

// Draws that return `values` in turn and record what each was asked for.
struct ScriptedDraws {
  std::vector<int64_t> values, asked;
  std::function<int64_t(int64_t)> fn() {
    return [this](int64_t most) {
      asked.push_back(most);
      return values.at(asked.size() - 1);
    };
  }
};

std::vector<int32_t> iota_tokens(int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), 10);
  return t;
}

// A completion dataset of `text` (an extension-less file, fortune-style: documents split by %
// lines) with PoSE in a context of 1000.
DataConfig pose_config(const TempDir& dir, const std::string& text, int64_t sequence_len) {
  const std::string path = (dir.path / "docs").string();
  write_file(path, text);
  DataConfig config;
  config.source = "test.yaml";
  config.datasets = {{path, "completion"}};
  config.dataset_prepared_path = (dir.path / "prepared").string();
  config.sequence_len = sequence_len;
  config.use_pose = true;
  config.pose.max_context_len = 1000;
  return config;
}

}  // namespace

TEST_CASE("pose_positions: Axolotl's split points, skips and their budget") {
  PoseConfig c;
  c.max_context_len = 30;
  // 10 tokens in 2 chunks: [0, 5) in place, [5, 10) after a skip drawn from [0, 30 - 10].
  ScriptedDraws d{{7}};
  std::vector<int32_t> t = iota_tokens(10);
  CHECK(pose_positions(t.data(), 10, c, d.fn()) == std::vector<int32_t>{0, 1, 2, 3, 4, 12, 13, 14, 15, 16});
  CHECK(d.asked == std::vector<int64_t>{20});
  // 3 chunks of 9 tokens in a context of 20: the second skip draws from what the first left.
  c.max_context_len = 20;
  c.chunks = 3;
  ScriptedDraws three{{4, 7}};
  t = iota_tokens(9);
  CHECK(pose_positions(t.data(), 9, c, three.fn()) == std::vector<int32_t>{0, 1, 2, 7, 8, 9, 17, 18, 19});
  CHECK(three.asked == std::vector<int64_t>{11, 7});
  // Split before the tokens given; a first split point below 2 is dropped (token 99 at index 1).
  c.chunks = 2;
  c.split_on_token_ids = {99};
  ScriptedDraws split{{13}};
  t = {1, 99, 2, 3, 99, 4, 5};
  CHECK(pose_positions(t.data(), 7, c, split.fn()) == std::vector<int32_t>{0, 1, 2, 3, 17, 18, 19});
  CHECK(split.asked == std::vector<int64_t>{13});
  // No room left (an example as long as the context): no draw at all, positions as they are.
  ScriptedDraws none{{}};
  t = iota_tokens(20);
  c.split_on_token_ids.clear();
  const std::vector<int32_t> p = pose_positions(t.data(), 20, c, none.fn());
  CHECK(p.back() == 19);
  CHECK(none.asked.empty());
}

TEST_CASE("PoseDraws: a function of (seed, example, draw) alone, uniform over [0, m]") {
  PoseDraws a(11, 3), b(11, 3), other(11, 4);
  std::vector<int64_t> xa, xb, xo;
  double sum = 0;
  for (int k = 0; k < 2000; k++) {
    xa.push_back(a(100));
    xb.push_back(b(100));
    xo.push_back(other(100));
    CHECK((xa.back() >= 0 && xa.back() <= 100));
    sum += static_cast<double>(xa.back());
  }
  CHECK(xa == xb);
  CHECK(xa != xo);
  CHECK(sum / 2000 == doctest::Approx(50).epsilon(0.05));
  CHECK(*std::max_element(xa.begin(), xa.end()) == 100);
  CHECK(*std::min_element(xa.begin(), xa.end()) == 0);
}

TEST_CASE("use_pose: every training example's positions, and the validation ones unless eval_sample_packing is false") {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 12; i++) text += "document number " + std::to_string(i) + " of the set\n%\n";
  DataConfig config = pose_config(dir, text, 64);
  config.val_set_size = 3;
  ByteTokenizer tok;
  const auto quiet = [](const std::string&) {};
  for (bool eval_pose : {true, false}) {
    CAPTURE(eval_pose);
    config.eval_sample_packing = eval_pose;
    const TrainingData data = load_training_data(config, 7, tok, quiet);
    const ExampleSet& set = *data.examples;
    REQUIRE(set.positions.size() == set.tokens.size());
    const auto positions_of = [&](int64_t e) {
      return std::vector<int32_t>(set.positions.begin() + set.offsets[e], set.positions.begin() + set.offsets[e + 1]);
    };
    int64_t skipped = 0;
    for (int64_t e : data.split.train) {
      const std::vector<int32_t> p = positions_of(e);
      std::vector<int32_t> expected = pose_positions(set.tokens.data() + set.offsets[e], set.length(e), config.pose,
                                                     PoseDraws(7, e));
      CHECK(p == expected);
      CHECK(p.front() == 0);
      CHECK(p.back() < 1000);
      skipped += p.back() + 1 - set.length(e);
    }
    CHECK(skipped > 0);
    for (int64_t e : data.split.val) {
      const std::vector<int32_t> p = positions_of(e);
      CHECK((p.back() + 1 == set.length(e)) == !eval_pose);
    }
    // A batch carries them.
    const Batch b = make_batch(set, data.train_rows, std::vector<int64_t>{0}.data(), 1, data.train_layout);
    const std::vector<int32_t> got = b.positions.to_ints();
    const std::vector<int32_t> want = positions_of(data.train_rows[0][0]);
    CHECK(std::vector<int32_t>(got.begin(), got.begin() + static_cast<int64_t>(want.size())) == want);
  }
}

// With sample_packing, as Axolotl's multipack rows carry the PoSE column: each packed row holds
// its examples' own position ids one after another, documents apart; packed sequentially under
// curriculum_sampling, the examples fill rows in the order of their last position id.
TEST_CASE("use_pose with sample_packing: packed rows carry each example's PoSE positions") {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 16; i++) text += "document number " + std::to_string(i) + std::string(i % 5, '!') + "\n%\n";
  DataConfig config = pose_config(dir, text, 96);
  config.val_set_size = 0;
  config.sample_packing = true;
  ByteTokenizer tok;
  const auto quiet = [](const std::string&) {};
  for (bool sequential : {false, true}) {
    CAPTURE(sequential);
    config.sample_packing_sequentially = sequential;
    config.curriculum_sampling = sequential;
    const TrainingData data = load_training_data(config, 7, tok, quiet);
    const ExampleSet& set = *data.examples;
    REQUIRE(data.train_layout.packed);
    int32_t last = -1;
    for (size_t r = 0; r < data.train_rows.size(); r++) {
      const Row& row = data.train_rows[r];
      const int64_t which = static_cast<int64_t>(r);
      const Batch b = make_batch(set, data.train_rows, &which, 1, data.train_layout);
      const std::vector<int32_t> got = b.positions.to_ints(), docs = b.doc_ids.to_ints();
      int64_t at = 0;
      for (size_t d = 0; d < row.size(); d++) {
        const int64_t e = row[d];
        const std::vector<int32_t> want =
            pose_positions(set.tokens.data() + set.offsets[e], set.length(e), config.pose, PoseDraws(7, e));
        CHECK(std::vector<int32_t>(got.begin() + at, got.begin() + at + set.length(e)) == want);
        for (int64_t i = 0; i < set.length(e); i++) CHECK(docs[at + i] == static_cast<int32_t>(d));
        at += set.length(e);
        if (sequential) {  // rows filled in order of the examples' last position id
          CHECK(want.back() >= last);
          last = want.back();
        }
      }
    }
  }
}
