// io/multipack (Axolotl's sample packing) against Axolotl's own pack_parallel and
// allocate_sequentially (test/data/multipack_reference, tools/make_multipack_reference.py), and
// the DataLoader packing each epoch's order afresh.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "io/dataset.h"
#include "io/multipack.h"
#include "io/python_shuffles.h"
#include "test/data_fixture.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;
using nlohmann::json;

namespace {

std::shared_ptr<ExampleSet> examples_of_lengths(const std::vector<int64_t>& lengths) {
  auto data = std::make_shared<ExampleSet>();
  for (int64_t n : lengths) data->add({std::vector<int32_t>(n, 1), std::vector<int32_t>(n, 1)});
  return data;
}

}  // namespace

TEST_CASE("multipack: first fit in the order given, bin_size and group_size as Axolotl's pack_parallel") {
  auto data = examples_of_lengths({3, 5, 2, 4, 6});
  // First fit keeps no sort: [3 5] [2 4] [6] (the 6 finds no room left in the first two bins).
  CHECK(multipack(*data, {0, 1, 2, 3, 4}, {8}) == std::vector<Row>{{0, 1}, {2, 3}, {4}});
  // Later examples go back to earlier bins with room: 2 joins [5] ahead of the newer [6].
  CHECK(multipack(*data, {1, 4, 2}, {8}) == std::vector<Row>{{1, 2}, {4}});
  // bin_size 1: one example a bin, however much room is left.
  CHECK(multipack(*data, {2, 0}, {8, 1}) == std::vector<Row>{{2}, {0}});
  // group_size 2: [3 5] and [2 4] packed apart, then [6]; bins never mix groups.
  CHECK(multipack(*data, {2, 0, 3, 1, 4}, {16, 200, 2}) == std::vector<Row>{{2, 0}, {3, 1}, {4}});
  // Next fit: each into the newest bin while it fits.
  CHECK(multipack(*data, {1, 2, 0, 3}, {8, 200, 100000, true}) == std::vector<Row>{{1, 2}, {0, 3}});
  CHECK(packing_efficiency(*data, {{1, 0}, {2, 3}}, 8) == doctest::Approx(14.0 / 16));
  CHECK_THROWS_AS(multipack(*data, {4}, {5}), std::invalid_argument);
}

TEST_CASE("multipack: Axolotl 0.19's own bins on 40 random cases (first fit and next fit)") {
  const std::string path = std::string(LLM_MULTIPACK_REFERENCE_DIR) + "/cases.json";
  const json fixture = json::parse(read_file(path));
  REQUIRE(fixture.at("cases").size() == 40);
  for (const json& c : fixture.at("cases")) {
    const std::vector<int64_t> lengths = c.at("lengths");
    auto data = examples_of_lengths(lengths);
    const std::vector<int64_t> order = iota_windows(static_cast<int64_t>(lengths.size()));
    MultipackOptions options{c.at("capacity"), c.at("bin_size"), c.at("group_size")};
    CAPTURE(c.at("capacity"));
    CHECK(json(multipack(*data, order, options)) == c.at("first_fit"));
    options.sequential = true;
    CHECK(json(multipack(*data, order, options)) == c.at("next_fit"));
  }
}

TEST_CASE("packed DataLoader: each epoch's random order packed afresh, a bin a micro-batch") {
  std::vector<int64_t> lengths;
  for (int64_t e = 0; e < 60; e++) lengths.push_back(3 + (e * 7) % 13);
  std::shared_ptr<const ExampleSet> data = examples_of_lengths(lengths);
  const MultipackOptions bins{32};
  LoaderOptions options{0, 1, RowOrder::shuffled_per_epoch, 1, true, bins};
  DataLoader loader(data, one_example_per_row(iota_windows(60)), {32, false, true, 0}, 1, 5, options);
  // Epoch e's bins are the first fit of torch_randperm(60, seed + e) (accelerate's seedable
  // sampler inside Axolotl's); the count per epoch its sampler's len: after torch.manual_seed(5),
  // one list(RandomSampler(range(60))), then the least bins of 4 more: [18, 18, 18, 17] with
  // Axolotl 0.19's pack_parallel on these lengths.
  for (int64_t e = 0; e < 4; e++) CHECK(loader.epoch_rows(e) == multipack(*data, torch_randperm(60, 5 + e), bins));
  const size_t count = 17;
  CHECK(loader.num_batches_per_epoch() == static_cast<int64_t>(count));
  TorchGenerator global(5);
  global.random_int64();
  std::vector<size_t> draws;
  for (int d = 0; d < 4; d++) draws.push_back(multipack(*data, global.random_sampler_order(60), bins).size());
  CHECK(draws == std::vector<size_t>{18, 18, 18, 17});
  const std::vector<Row> epoch0 = loader.epoch_rows(0);  // a copy: the loader keeps one epoch's
  CHECK(epoch0 != loader.epoch_rows(1));
  // A batch is one bin, a row of at most 32 tokens whose examples attend only within themselves.
  const Batch b = loader.batch_at(1, 2);
  CHECK(b.inputs.shape()[0] == 1);
  CHECK(b.rows == std::vector<Row>{loader.epoch_rows(1)[2]});
  CHECK(b.doc_ids.defined());
  // Every epoch serves each example at most once; one packed into no more bins than the count,
  // every example.
  for (int64_t e = 0; e < 4; e++) {
    std::multiset<int64_t> seen;
    for (int64_t i = 0; i < loader.num_batches_per_epoch(); i++)
      for (const Row& row : loader.batch_at(e, i).rows) seen.insert(row.begin(), row.end());
    CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == seen.size());
    if (loader.epoch_rows(e).size() == count) CHECK(seen.size() == 60);
  }
  // curriculum_sampling: the order as given, so the same bins every epoch.
  options.order = RowOrder::as_given;
  DataLoader fixed(data, one_example_per_row(iota_windows(60)), {32, false, true, 0}, 1, 5, options);
  CHECK(fixed.epoch_rows(0) == multipack(*data, iota_windows(60), bins));
  const std::vector<Row> fixed0 = fixed.epoch_rows(0);
  CHECK(fixed.epoch_rows(3) == fixed0);
}
