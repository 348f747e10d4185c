// The data loader: rows (one example each, or multipacked) and the LM shift, the train/val
// split, per-epoch order, an epoch's last rows, curriculum order, cursor restore, sharding and
// evaluation batches.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "engine/user_error.h"
#include "io/dataset.h"
#include "io/dataset_split.h"
#include "io/python_shuffles.h"
#include "test/data_fixture.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;

TEST_CASE("rows: the LM shift inside each example, or along an Axolotl packed row; padding takes no loss") {
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
  // Axolotl's packed row (transformers shifts its labels along the whole row): an example's last
  // token predicts the next example's first label, here trained (G), there a prompt's (x).
  data->add(example_of("GH"));
  const std::vector<Row> axolotl = {{2, 3, 0}};
  Batch a = make_batch(*data, axolotl, which, 1, {8, false, true, 0, true});
  CHECK(ids(a.targets) == std::vector<int32_t>{'F', 'G', 'H', I, 'A', 'B', I, I});
  CHECK(a.num_targets == 5);
  CHECK(ids(a.doc_ids) == std::vector<int32_t>{0, 0, 1, 1, 2, 2, 2, 3});
}

TEST_CASE("validation split: the last examples, as train_test_split(shuffle=False)") {
  CHECK(split_examples(100, 0.0).val.empty());
  CHECK(split_examples(100, 0.0).train.size() == 100);
  CHECK(split_examples(100, 0.05).val.size() == 5);
  CHECK(split_examples(100, 0.001).val.size() == 1);  // rounded up
  CHECK(split_examples(100, 7).val.size() == 7);
  CHECK(split_examples(2, 0.5).train.size() == 1);
  // Positions in the merged order: shuffled data was shuffled before (split_items).
  const ExampleSplit tail = split_examples(10, 0.25);
  CHECK(tail.val == std::vector<int64_t>{7, 8, 9});
  CHECK(tail.train == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6});
  CHECK(split_examples(10, 2).val == std::vector<int64_t>{8, 9});
  std::string e = error_of([] { split_examples(3, 3); });
  CHECK(e.find("val_set_size: 3 takes 3 of the 3 examples") != std::string::npos);
  CHECK(error_of([] { split_examples(1, 0.5); }).find("leaving none to train on") != std::string::npos);
  CHECK(error_of([] { split_examples(10, -0.5); }).find("val_set_size: -0.5, expected") != std::string::npos);
  CHECK(error_of([] { split_examples(10, 1); }).find("val_set_size: 1 is the fraction 1.0") != std::string::npos);
  CHECK(split_examples(10, 1.5).val.size() == 1);  // Axolotl's int(1.5)
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
  // HF's Trainer's order: epoch e is torch.randperm(n) seeded with seed + e.
  CHECK(epoch0 == torch_randperm(n, 7));
  CHECK(epoch1 == torch_randperm(n, 8));
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

TEST_CASE("curriculum_sampling: the rows as given, every epoch") {
  const int64_t L = 4, n = 12;
  auto data = counting_data(n, L);
  DataConfig config;
  CHECK(row_order(config) == RowOrder::shuffled_per_epoch);
  // A SequentialSampler over the merged datasets, shuffled or not: load_training_data put the
  // rows in that order.
  config.curriculum_sampling = true;
  for (size_t datasets : {1, 2}) {
    config.datasets.resize(datasets);
    CHECK(row_order(config) == RowOrder::as_given);
  }
  auto epoch_rows = [&](DataLoader& loader, int64_t epoch) {
    std::vector<int64_t> out;
    for (int64_t b = 0; b < loader.num_batches_per_epoch(); b++)
      for (int64_t w : rows_of(loader.batch_at(epoch, b), L)) out.push_back(w);
    return out;
  };
  DataLoader as_given(data, rows(n), layout(L), 3, 7, {0, 1, RowOrder::as_given});
  CHECK(epoch_rows(as_given, 0) == iota_windows(n));
  CHECK(epoch_rows(as_given, 3) == iota_windows(n));
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
  // accelerate's even_batches on 2 ranks: the last round's smaller batch filled with the first
  // rows, which count for nothing (gather_for_metrics drops them); with drop_last whole rounds only.
  const std::vector<Batch> padded = eval_batches(*data, rows(7), layout(L), 2, 1, 2, false, true);
  REQUIRE(padded.size() == 2);
  CHECK(rows_of(padded[1], L) == std::vector<int64_t>{6, 0});
  CHECK(padded[1].rows_counted == 1);
  CHECK(padded[0].rows_counted == 2);
  CHECK(eval_batches(*data, rows(7), layout(L), 2, 0, 2, false, true)[1].rows_counted == 2);
  const std::vector<Batch> rounds = eval_batches(*data, rows(7), layout(L), 2, 0, 2, true);
  REQUIRE(rounds.size() == 1);  // 3 whole batches: one whole round of 2, the third dropped
  CHECK(eval_batches(*data, rows(7), layout(L), 2, 1, 2, true).size() == 1);
  CHECK_THROWS_WITH_AS(eval_batches(*data, rows(3), layout(L), 2, 0, 2, true),
                       doctest::Contains("fewer than an eval batch of 2 on each of 2 ranks"), UserError);
}

TEST_CASE("packed eval batches: weighed as the Trainer's losses under accelerate's remainder of examples") {
  // 5 bins holding 9 examples, one bin a batch, eval_batch_size 2, on 2 ranks: rounds of bins 0|1
  // and 2|3 (bin 4 dropped); remainder 9 % 2 = 1, so the last round keeps one copy, rank 0's.
  std::vector<Row> bins = {{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8}};
  auto weights = [&](const std::vector<Row>& of, int64_t sampler_batch, int64_t eval_batch_size, int rank, int world) {
    std::vector<Batch> batches(of.size() / sampler_batch / world);  // the whole rounds' batches of this rank
    weigh_packed_eval_batches(batches, of, sampler_batch, eval_batch_size, rank, world);
    std::vector<int64_t> w;
    for (const Batch& b : batches) w.push_back(b.rows_counted);
    return w;
  };
  CHECK(weights(bins, 1, 2, 0, 2) == std::vector<int64_t>{2, 1});
  CHECK(weights(bins, 1, 2, 1, 2) == std::vector<int64_t>{2, 0});
  CHECK(weights(bins, 1, 2, 0, 1) == std::vector<int64_t>{2, 2, 2, 2, 2});  // 9 % 1: nothing cut
  // 4 bins of 8 examples on 3 ranks: one round; 8 % 3 = 2 copies, both rank 0's.
  bins.pop_back();
  CHECK(weights(bins, 1, 2, 0, 3) == std::vector<int64_t>{2});
  CHECK(weights(bins, 1, 2, 1, 3) == std::vector<int64_t>{0});
  CHECK(weights(bins, 1, 1, 1, 3) == std::vector<int64_t>{1});  // eval_batch_size 1: ranks 0 and 1
  CHECK(weights(bins, 1, 1, 2, 3) == std::vector<int64_t>{0});
  // multipack_real_batches: batches of 2 bins on one rank; 7 examples % 2 = 1 copy of the last.
  bins = {{0, 1}, {2, 3}, {4, 5}, {6}};
  CHECK(weights(bins, 2, 2, 0, 1) == std::vector<int64_t>{2, 1});
  // Too few bins for a round: the packed loader's own line, which no key but these mends.
  const int64_t L = 5;
  auto data = counting_data(1, L);
  RowLayout packed = layout(L);
  packed.packed = true;
  CHECK_THROWS_WITH_AS(eval_batches(*data, rows(1), packed, 1, 0, 2, true),
                       doctest::Contains("1 packed validation row(s), fewer than an eval batch of 1 on each of 2 ranks, "
                                         "and the packed eval loader drops a last, smaller batch; expected more validation "
                                         "examples, fewer ranks or eval_sample_packing: false"),
                       UserError);
}
