// defines: split_examples, deduplicate_split, split_items (see the header)
#include "io/validation_split.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "engine/user_error.h"
#include "io/dataset.h"
#include "io/python_shuffles.h"
#include "io/token_cache.h"

namespace llm {

ExampleSplit split_examples(int64_t num_examples, double val_set_size) {
  const std::string value = fmt::format("{}", val_set_size);
  if (!(val_set_size >= 0))
    throw UserError("val_set_size: " + value + ", expected a fraction in [0, 1) or a count >= 2");
  // Axolotl passes a value of at most 1 on as a fraction: 1 would hold out everything (HF raises).
  if (val_set_size == 1)
    throw UserError("val_set_size: 1 is the fraction 1.0 (every example), as Axolotl reads it; expected a fraction "
                    "below 1 or a count >= 2");
  int64_t num_val = 0;
  if (val_set_size >= 1)
    num_val = static_cast<int64_t>(val_set_size);
  else if (val_set_size > 0)  // rounded up, as HF's train_test_split
    num_val = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(val_set_size * num_examples)));
  if (num_val >= num_examples)
    throw UserError("val_set_size: " + value + " takes " + std::to_string(num_val) + " of the " +
                    std::to_string(num_examples) +
                    " examples, leaving none to train on; expected a smaller value or more data");
  ExampleSplit split{std::vector<int64_t>(static_cast<size_t>(num_examples - num_val)),
                     std::vector<int64_t>(static_cast<size_t>(num_val))};
  std::iota(split.train.begin(), split.train.end(), 0);
  std::iota(split.val.begin(), split.val.end(), num_examples - num_val);
  return split;
}

void deduplicate_split(const ExampleSet& data, ExampleSplit& split, int64_t per_item) {
  // Hash first, then compare the spans of equal hashes: exact, as Axolotl's sha256 of the row.
  // An item is examples [per_item i, per_item (i + 1)): a preference pair, or KTO's prompt and
  // completion with its label.
  std::unordered_map<uint64_t, std::vector<int64_t>> seen;
  const auto span = [&data](const std::vector<int32_t>& v, int64_t e) { return v.data() + data.offsets[e]; };
  const auto item_hash = [&](int64_t item) {
    uint64_t hash = kFnvOffsetBasis;
    for (int64_t e = item * per_item; e < (item + 1) * per_item; e++) {
      const size_t bytes = static_cast<size_t>(data.length(e)) * sizeof(int32_t);
      hash = fnv1a64(span(data.labels, e), bytes, fnv1a64(span(data.tokens, e), bytes, hash));
      if (!data.desirable.empty()) hash = fnv1a64(&data.desirable[e], 1, hash);
    }
    return hash;
  };
  const auto same = [&](int64_t a, int64_t b) {
    for (int64_t k = 0; k < per_item; k++) {
      const int64_t x = a * per_item + k, y = b * per_item + k;
      if (data.length(x) != data.length(y) || !std::equal(span(data.tokens, x), span(data.tokens, x + 1), span(data.tokens, y)) ||
          !std::equal(span(data.labels, x), span(data.labels, x + 1), span(data.labels, y)) ||
          (!data.desirable.empty() && data.desirable[x] != data.desirable[y]))
        return false;
    }
    return true;
  };
  const auto keep_new = [&](std::vector<int64_t>& items) {
    std::vector<int64_t> kept;
    for (int64_t item : items) {
      std::vector<int64_t>& equal_hash = seen[item_hash(item)];
      if (std::none_of(equal_hash.begin(), equal_hash.end(), [&](int64_t k) { return same(k, item); })) {
        equal_hash.push_back(item);
        kept.push_back(item);
      }
    }
    items = std::move(kept);
  };
  keep_new(split.train);
  keep_new(split.val);
}

namespace {

// Items first, first + 1, ... in their merged order: HF's Dataset.shuffle(seed) where the merge
// shuffles them, else as loaded.
std::vector<int64_t> merged_order(int64_t count, int64_t first, bool shuffled, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  if (shuffled) order = numpy_permutation(count, seed);
  for (int64_t& item : order) item += first;
  return order;
}

// HF's Dataset.shard(shard_num, shard_idx), contiguous. Throws UserError when the shard is empty.
std::vector<int64_t> shard_of(const std::vector<int64_t>& items, const DataConfig& config) {
  const int64_t n = static_cast<int64_t>(items.size()), num = config.shard_num, idx = config.shard_idx;
  const int64_t start = n / num * idx + std::min(idx, n % num), end = start + n / num + (idx < n % num ? 1 : 0);
  if (n > 0 && start == end)
    throw UserError("dataset_shard_idx: shard " + std::to_string(idx) + " of " + std::to_string(num) +
                    " holds none of the " + std::to_string(n) + " examples; expected fewer shards or more data");
  return {items.begin() + start, items.begin() + end};
}

}  // namespace

ExampleSplit split_items(const ExampleSet& data, int64_t num_test, int64_t per_item,
                         const DataConfig& config, uint64_t seed, const LogFn& log) {
  const int64_t n = (data.size() - num_test) / per_item, n_test = num_test / per_item;
  std::vector<int64_t> items = merged_order(n, 0, config.merged_shuffled(), seed);
  std::vector<int64_t> test = merged_order(n_test, n, config.merge_of_shuffled(config.test_datasets.size()), seed);
  // The filters come after the shuffle in Axolotl: the rows they dropped (empty placeholders,
  // io/examples.h) leave the order now.
  if (per_item == 1)
    for (std::vector<int64_t>* order : {&items, &test})
      order->erase(std::remove_if(order->begin(), order->end(), [&](int64_t e) { return data.length(e) == 0; }),
                   order->end());
  if (config.exact_deduplication) {
    ExampleSplit whole{items, config.preference_pairs ? test : std::vector<int64_t>{}};
    deduplicate_split(data, whole, per_item);
    ExampleSplit tests{test, {}};
    if (!config.preference_pairs) deduplicate_split(data, tests, per_item);
    const std::vector<int64_t>& kept_test = config.preference_pairs ? whole.val : tests.train;
    const char* what = !config.preference_pairs ? "examples" : config.unpaired_preferences ? "rows" : "pairs";
    log(fmt::format("dataset_exact_deduplication: {} of {} {} kept{}", whole.train.size(), items.size(), what,
                    test.empty() ? "" : fmt::format(", {} of {} of test_datasets", kept_test.size(), test.size())));
    items = whole.train;
    test = kept_test;
  }
  // Axolotl shards after deduplicating (its dataset_shard_num on the deduplicated merge).
  if (config.shard_num > 0) {
    items = shard_of(items, config);
    test = shard_of(test, config);
  }
  const ExampleSplit at = split_examples(static_cast<int64_t>(items.size()), config.val_set_size);
  ExampleSplit split;
  for (int64_t i : at.train) split.train.push_back(items[i]);
  for (int64_t i : at.val) split.val.push_back(items[i]);
  split.val.insert(split.val.end(), test.begin(), test.end());
  return split;
}

}  // namespace llm
