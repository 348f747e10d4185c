// defines: ExampleSet::add, load_examples, one_example_per_row, pair_rows, make_batch,
// DataLoader, eval_row_order, eval_batches, weigh_packed_eval_batches, unigram_entropy, log_to_stderr, load_training_data
#include "io/dataset.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "engine/user_error.h"
#include "io/bradley_terry.h"
#include "io/kto.h"
#include "io/preference.h"
#include "io/pretraining.h"
#include "io/stepwise_supervised.h"
#include "io/python_shuffles.h"
#include "io/token_cache.h"

namespace llm {
namespace {

// The items (runs of per_item examples: a preference pair, a KTO row) of examples[first..] in
// HF's Dataset.shuffle(seed) order, as Axolotl shuffles a dataset before merging it.
void shuffle_items(std::vector<Example>& examples, size_t first, uint64_t seed, int64_t per_item) {
  const std::vector<int64_t> order = numpy_permutation(static_cast<int64_t>((examples.size() - first) / per_item), seed);
  std::vector<Example> shuffled;
  shuffled.reserve(examples.size() - first);
  for (int64_t item : order)
    for (int64_t k = 0; k < per_item; k++)
      shuffled.push_back(std::move(examples[first + item * per_item + k]));
  std::move(shuffled.begin(), shuffled.end(), examples.begin() + static_cast<int64_t>(first));
}

}  // namespace

void ExampleSet::add(const Example& example) {
  tokens.insert(tokens.end(), example.tokens.begin(), example.tokens.end());
  labels.insert(labels.end(), example.labels.begin(), example.labels.end());
  offsets.push_back(static_cast<int64_t>(tokens.size()));
  desirable.push_back(example.desirable);
}

void ExampleSet::append(const ExampleSet& other) {
  const int64_t base = offsets.back();
  tokens.insert(tokens.end(), other.tokens.begin(), other.tokens.end());
  labels.insert(labels.end(), other.labels.begin(), other.labels.end());
  for (size_t e = 1; e < other.offsets.size(); e++) offsets.push_back(base + other.offsets[e]);
  desirable.insert(desirable.end(), other.desirable.begin(), other.desirable.end());
  stats.documents += other.stats.documents, stats.chunked += other.stats.chunked;
  stats.dropped += other.stats.dropped, stats.truncated += other.stats.truncated;
  stats.no_targets += other.stats.no_targets;
}

ExampleSet load_examples(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer) {
  ExampleSet set;
  std::vector<Example> examples;
  for (const DatasetSpec& spec : config.datasets) {
    const size_t first = examples.size();
    if (config.unpaired_preferences)
      append_kto_examples(spec, tokenizer, config.sequence_len, examples, set.stats, config.excess_length_strategy);
    else if (spec.type == kStepwiseSupervisedType)
      append_stepwise_examples(spec, tokenizer, config, examples, set.stats);
    else if (spec.type == kBradleyTerryType)
      append_bradley_terry_examples(spec, tokenizer, config, examples, set.stats);
    else if (config.preference_pairs)
      append_preference_examples(spec, tokenizer, config, examples, set.stats);
    else append_examples(spec, load_documents(spec, tokenizer), tokenizer, config, examples, set.stats, true);
    if (config.shuffles_before_merging()) shuffle_items(examples, first, seed, config.preference_pairs ? 2 : 1);
  }
  for (const Example& ex : examples) set.add(ex);
  return set;
}

std::vector<Row> one_example_per_row(const std::vector<int64_t>& examples) {
  std::vector<Row> rows;
  for (int64_t e : examples) rows.push_back({e});
  return rows;
}

std::vector<Row> pair_rows(const std::vector<int64_t>& pairs) {
  std::vector<Row> rows;
  for (int64_t p : pairs) rows.push_back({2 * p, 2 * p + 1});
  return rows;
}

Batch make_batch(const ExampleSet& data, const std::vector<Row>& rows, const int64_t* which,
                 int64_t count, const RowLayout& layout) {
  int64_t S = layout.pad_to_sequence_len ? layout.sequence_len : 1;
  for (int64_t b = 0; b < count; b++) S = std::max(S, row_length(data, rows[which[b]]));
  S = std::min(layout.sequence_len, (S + kRowLengthMultiple - 1) / kRowLengthMultiple * kRowLengthMultiple);
  std::vector<int32_t> inputs(count * S, layout.pad), targets(count * S, kIgnoreIndex);
  std::vector<int32_t> positions(count * S, 0), docs(count * S, 0), labels(count * S, kIgnoreIndex);
  Batch batch;
  for (int64_t b = 0; b < count; b++) {
    const Row& row = rows[which[b]];
    batch.rows.push_back(row);
    int64_t at = b * S;
    for (size_t d = 0; d < row.size(); d++) {
      const int64_t begin = data.offsets[row[d]], n = data.length(row[d]);
      const bool next_example = layout.targets_cross_examples && d + 1 < row.size();
      for (int64_t i = 0; i < n; i++, at++) {
        inputs[at] = data.tokens[begin + i];
        if (layout.token_labels) targets[at] = data.labels[begin + i];
        else if (i + 1 < n) targets[at] = data.labels[begin + i + 1];
        else if (next_example) targets[at] = data.labels[data.offsets[row[d + 1]]];
        positions[at] = layout.positions_continue ? static_cast<int32_t>(at - b * S)
                        : data.positions.empty()  ? static_cast<int32_t>(i)
                                                  : data.positions[begin + i];
        labels[at] = data.labels[begin + i];
        batch.num_labels += labels[at] != kIgnoreIndex;
        // Non-decreasing along the row, as attention needs; one causal sequence is one document.
        docs[at] = layout.positions_continue && !layout.packed ? 0 : static_cast<int32_t>(d);
        batch.num_targets += targets[at] != kIgnoreIndex;
      }
      batch.num_tokens += n;
    }
    for (; at < (b + 1) * S; at++) docs[at] = static_cast<int32_t>(row.size());  // padding: past every document
  }
  batch.inputs = Tensor::from_ints(inputs, {count, S});
  batch.targets = Tensor::from_ints(targets, {count * S});
  batch.positions = Tensor::from_ints(positions, {count, S});
  if (layout.packed || layout.bidirectional) batch.doc_ids = Tensor::from_ints(docs, {count, S});
  if (layout.bidirectional) batch.labels = Tensor::from_ints(labels, {count, S});
  return batch;
}

DataLoader::DataLoader(std::shared_ptr<const ExampleSet> data, std::vector<Row> rows,
                       RowLayout layout, int64_t micro_batch_size, uint64_t seed, LoaderOptions options)
    : data_(std::move(data)),
      rows_(std::move(rows)),
      layout_(layout),
      micro_batch_size_(micro_batch_size),
      seed_(seed),
      options_(options) {
  const int64_t world = options_.world_size;
  if (!data_ || micro_batch_size <= 0 || options_.rank < 0 || options_.rank >= world ||
      options_.length_group_batch <= 0)
    throw std::invalid_argument(
        "DataLoader: needs data, micro_batch_size > 0, 0 <= rank < world, length_group_batch > 0");
  if (rows_.empty()) throw UserError("the datasets give no training rows; expected at least one example");
  const int64_t B = micro_batch_size_;
  int64_t n = static_cast<int64_t>(rows_.size());
  if (options_.multipack.capacity > 0) n = axolotl_bin_count();
  rows_per_epoch_ = n;
  batches_per_epoch_ = options_.drop_last ? n / B / world
                       : world == 1       ? (n + B - 1) / B                     // the last one smaller
                                          : (n + B * world - 1) / (B * world);  // even batches
  if (batches_per_epoch_ == 0 && options_.multipack.capacity > 0)
    throw UserError("the datasets pack into " + std::to_string(n) + " bin(s) of " +
                    std::to_string(options_.multipack.capacity) + " tokens, and sample_packing drops an incomplete "
                    "micro-batch: expected at least " + std::to_string(B * world) + " (" + std::to_string(B) +
                    " a micro-batch x " + std::to_string(world) + " ranks), so more data or fewer ranks");
  if (batches_per_epoch_ == 0)
    throw UserError("the datasets give " + std::to_string(n) + " training rows of at most sequence_len " +
                    std::to_string(layout_.sequence_len) + " tokens, fewer than micro_batch_size " +
                    std::to_string(B) + " x " + std::to_string(world) +
                    " ranks, and dataloader_drop_last drops them all; expected a smaller micro_batch_size, "
                    "more data or no dataloader_drop_last");
}

// MultipackBatchSampler's len() as the Trainer takes it, building its loader right after
// set_seed(seed): one generate_batches, then the least bin count of 4 more (1 on 4 ranks or more,
// as its num_count_samples), each of a RandomSampler without a generator of its own, which seeds
// one from torch's global generator each time. Sequential (curriculum_sampling): one order.
int64_t DataLoader::axolotl_bin_count() const {
  std::vector<int64_t> order(rows_.size());
  std::iota(order.begin(), order.end(), 0);
  if (options_.order == RowOrder::as_given) return static_cast<int64_t>(packed_rows(order).size());
  TorchGenerator global(seed_);
  global.random_int64();  // the first generate_batches' draw, which sets no count
  int64_t least = std::numeric_limits<int64_t>::max();
  for (int64_t draw = 0; draw < (options_.world_size >= 4 ? 1 : 4); draw++) {
    order = global.random_sampler_order(static_cast<int64_t>(rows_.size()));
    least = std::min<int64_t>(least, static_cast<int64_t>(packed_rows(order).size()));
  }
  return least;
}

void group_by_length(std::vector<int64_t>& order, const std::vector<int64_t>& lengths, int64_t batch) {
  const int64_t n = static_cast<int64_t>(order.size());
  const int64_t megabatch = std::max<int64_t>(1, std::min<int64_t>(n / (batch * 4), 50)) * batch;
  const auto longer = [&lengths](int64_t a, int64_t b) { return lengths[a] > lengths[b]; };
  int64_t longest = 0;  // the megabatch whose first entry is the longest (the first such)
  for (int64_t begin = 0; begin < n; begin += megabatch) {
    std::stable_sort(order.begin() + begin, order.begin() + std::min(n, begin + megabatch), longer);
    if (lengths[order[begin]] > lengths[order[longest]]) longest = begin;
  }
  if (n > 0) std::swap(order[0], order[longest]);
}

RowOrder row_order(const DataConfig& config) {
  if (config.unpaired_preferences) return RowOrder::as_given;  // load_training_data ordered them
  // Axolotl's sampler: multipack when packing, else SequentialSampler for curriculum_sampling,
  // else the Trainer's (length grouped with group_by_length, which its rl builder does not pass on).
  // Preference pairs always take the Trainer's: TRL's DPO, ORPO and CPO trainers are not Axolotl's
  // own, whose sampler reads curriculum_sampling (the key still keeps one dataset's merged order).
  if (!config.curriculum_sampling || config.preference_pairs)
    return config.groups_by_length() ? RowOrder::length_grouped : RowOrder::shuffled_per_epoch;
  // The rows are in the merged datasets' order (load_training_data), PoSE's sorted.
  return RowOrder::as_given;
}

LoaderOptions loader_options(const DataConfig& config, int rank, int world_size, int64_t length_group_batch,
                             std::function<std::vector<Row>(int64_t, int64_t)> stream_rows) {
  if (stream_rows) {
    LoaderOptions stream{rank, world_size, RowOrder::as_given, 1, false, {}};
    stream.stream_rows = std::move(stream_rows);
    return stream;
  }
  const bool packed = config.sample_packing && !config.preference_pairs;
  return {rank, world_size, row_order(config), length_group_batch, config.drops_last_train_rows(),
          packed ? config.multipack_options() : MultipackOptions{}};
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(rows_.size());
  std::iota(order.begin(), order.end(), 0);
  const RowOrder kind = options_.order;
  const int64_t n = static_cast<int64_t>(rows_.size());
  if (kind == RowOrder::shuffled_per_epoch) order = torch_randperm(n, seed_ + static_cast<uint64_t>(epoch));
  if (kind == RowOrder::length_grouped) {
    const auto evaluations = [this](int64_t e) { return evaluations_before_epoch_ ? evaluations_before_epoch_(e) : 0; };
    TorchGenerator global(seed_);
    for (int64_t e = 0; e <= epoch; e++) {
      const int64_t iterations = 1 + evaluations(e) - (e > 0 ? evaluations(e - 1) : 0);
      for (int64_t i = 0; i < iterations; i++) global.random_int64();
      order = global.randperm(n);
    }
    std::vector<int64_t> lengths(rows_.size());
    for (size_t r = 0; r < rows_.size(); r++) lengths[r] = row_length(*data_, rows_[r]);
    group_by_length(order, lengths, options_.length_group_batch);
  }
  return order;
}

void DataLoader::set_evaluations_before_epoch(std::function<int64_t(int64_t epoch)> count) {
  evaluations_before_epoch_ = std::move(count);
  rows_epoch_ = -1;  // a length-grouped epoch's rows depend on it
}

std::vector<Row> eval_row_order(const ExampleSet& data, std::vector<Row> rows, const DataConfig& config,
                                bool packed, int64_t eval_batch, uint64_t seed) {
  if (!config.group_by_length || config.preference_pairs || packed) return rows;
  std::vector<int64_t> order = torch_randperm(static_cast<int64_t>(rows.size()), seed), lengths;
  for (const Row& row : rows) lengths.push_back(row_length(data, row));
  group_by_length(order, lengths, eval_batch);
  std::vector<Row> ordered;
  for (int64_t r : order) ordered.push_back(rows[static_cast<size_t>(r)]);
  return ordered;
}

std::vector<Row> DataLoader::packed_rows(const std::vector<int64_t>& order) const {
  std::vector<int64_t> examples;
  for (int64_t r : order) examples.insert(examples.end(), rows_[r].begin(), rows_[r].end());
  return multipack(*data_, examples, options_.multipack);
}

std::vector<Row> DataLoader::served_rows(int64_t epoch) const {
  if (options_.stream_rows) {
    std::vector<Row> rows = options_.stream_rows(epoch, evaluations_before_epoch_ ? evaluations_before_epoch_(epoch) : 0);
    const size_t count = rows_.size(), served = rows.size();
    for (size_t i = served; i < count && served > 0; i++) rows.push_back(rows[(i - served) % served]);
    rows.resize(count);
    return rows;
  }
  const std::vector<int64_t> order = epoch_order(epoch);
  if (options_.multipack.capacity > 0) return packed_rows(order);
  std::vector<Row> rows;
  rows.reserve(order.size());
  for (int64_t r : order) rows.push_back(rows_[r]);
  return rows;
}

const std::vector<Row>& DataLoader::epoch_rows(int64_t epoch) {
  if (rows_epoch_ != epoch) {
    epoch_rows_ = served_rows(epoch);
    // Even batches on several ranks, or a packed epoch of fewer bins than the count: the rows go
    // on with their first world x B, cycled.
    const int64_t n = static_cast<int64_t>(epoch_rows_.size()), world = options_.world_size;
    const int64_t served = batches_per_epoch_ * world * micro_batch_size_;
    if ((world > 1 || options_.multipack.capacity > 0) && served > n) {
      const int64_t first = std::min(n, world * micro_batch_size_);
      epoch_rows_.reserve(static_cast<size_t>(served));  // no reallocation under the copies below
      for (int64_t i = 0; n + i < served; i++) epoch_rows_.push_back(epoch_rows_[static_cast<size_t>(i % first)]);
    }
    rows_epoch_ = epoch;
  }
  return epoch_rows_;
}

Batch DataLoader::batch_at(int64_t epoch, int64_t index) {
  if (epoch < 0 || index < 0 || index >= batches_per_epoch_)
    throw std::out_of_range("DataLoader::batch_at: no such batch on this rank");
  const int64_t global = index * options_.world_size + options_.rank, begin = global * micro_batch_size_;
  const std::vector<Row>& rows = epoch_rows(epoch);
  std::vector<int64_t> which(static_cast<size_t>(std::min<int64_t>(micro_batch_size_, static_cast<int64_t>(rows.size()) - begin)));
  std::iota(which.begin(), which.end(), begin);
  Batch batch = make_batch(*data_, rows, which.data(), static_cast<int64_t>(which.size()), layout_);
  batch.epoch = epoch;
  batch.index = index;
  return batch;
}

Batch DataLoader::next() {
  Batch batch = batch_at(cursor_.epoch, cursor_.batch);
  if (++cursor_.batch == batches_per_epoch_) cursor_ = {cursor_.epoch + 1, 0};
  return batch;
}

void DataLoader::set_cursor(const DataCursor& cursor) {
  if (cursor.epoch < 0 || cursor.batch < 0 || cursor.batch >= batches_per_epoch_)
    throw UserError("data cursor (epoch " + std::to_string(cursor.epoch) + ", batch " +
                    std::to_string(cursor.batch) + ") is outside the " +
                    std::to_string(batches_per_epoch_) +
                    " batches per epoch of this data; expected the datasets, sequence_len, "
                    "micro_batch_size and world size the checkpoint was written with");
  cursor_ = cursor;
}

std::vector<Batch> eval_batches(const ExampleSet& data, const std::vector<Row>& rows,
                                const RowLayout& layout, int64_t micro_batch_size, int rank,
                                int world_size, bool drop_last, bool pad_last_round) {
  if (micro_batch_size <= 0 || rank < 0 || rank >= world_size)
    throw std::invalid_argument("eval_batches: needs micro_batch_size > 0, 0 <= rank < world");
  const int64_t n = static_cast<int64_t>(rows.size()), B = micro_batch_size;
  // With drop_last, accelerate serves whole rounds only (each rank one whole batch a round).
  const int64_t round = world_size > 1 ? world_size : 1;
  const int64_t served = drop_last ? n / B / round * round * B : n;
  if (n > 0 && served == 0 && layout.packed)  // Axolotl's eval multipack sampler drops it whatever the keys say
    throw UserError("the datasets give " + std::to_string(n) + " packed validation row(s), fewer than an eval batch of " +
                    std::to_string(B) + (round > 1 ? " on each of " + std::to_string(round) + " ranks" : "") +
                    ", and the packed eval loader drops a last, smaller batch; expected more validation examples, "
                    "fewer ranks or eval_sample_packing: false");
  if (n > 0 && served == 0)
    throw UserError("the datasets give " + std::to_string(n) + " validation rows, fewer than an eval batch of " +
                    std::to_string(B) + (round > 1 ? " on each of " + std::to_string(round) + " ranks" : "") +
                    ", and the eval loader drops a last, smaller batch (dataloader_drop_last, Axolotl's default with "
                    "sample_packing and eval_sample_packing false); expected a smaller eval_batch_size, more "
                    "validation rows or dataloader_drop_last: false");
  // Position t of the served sequence: row t, then (padding the last round) the first rows again.
  const bool pad = pad_last_round && world_size > 1 && !drop_last && n > 0;
  const int64_t first_rows = std::min(n, round * B);
  std::vector<int64_t> order;
  std::vector<Batch> batches;
  for (int64_t g = rank; g * B < served; g += world_size) {
    const int64_t begin = g * B, real = std::min(B, served - begin), count = pad ? B : real;
    order.clear();
    for (int64_t t = begin; t < begin + count; t++) order.push_back(t < n ? t : (t - n) % first_rows);
    batches.push_back(make_batch(data, rows, order.data(), count, layout));
    batches.back().index = static_cast<int64_t>(batches.size()) - 1;
    batches.back().rows_counted = real;
  }
  return batches;
}

void weigh_packed_eval_batches(std::vector<Batch>& batches, const std::vector<Row>& bins, int64_t sampler_batch,
                               int64_t eval_batch_size, int rank, int world_size) {
  for (Batch& b : batches) b.rows_counted = eval_batch_size;
  int64_t examples = 0;
  for (const Row& bin : bins) examples += static_cast<int64_t>(bin.size());
  const int64_t remainder = examples % (sampler_batch * world_size);
  if (remainder > 0 && !batches.empty())  // the last round's copies in rank order, cut after `remainder`
    batches.back().rows_counted = std::clamp<int64_t>(remainder - rank * eval_batch_size, 0, eval_batch_size);
}

double unigram_entropy(const ExampleSet& data, const std::vector<int64_t>& examples) {
  std::vector<int64_t> counts;
  int64_t total = 0;
  for (int64_t e : examples) {
    data.for_each_target(e, [&](int32_t label) {
      if (label >= static_cast<int32_t>(counts.size())) counts.resize(label + 1, 0);
      counts[label]++;
      total++;
    });
  }
  double entropy = 0.0;
  for (int64_t c : counts) {
    if (c == 0) continue;
    const double p = static_cast<double>(c) / static_cast<double>(total);
    entropy -= p * std::log(p);
  }
  return entropy;
}

void log_to_stderr(const std::string& line) { fmt::print(stderr, "{}\n", line); }

TrainingData load_training_data(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer,
                                const LogFn& log) {
  if (config.pretraining) return load_pretraining_data(config, seed, tokenizer, log);
  if (config.datasets.empty())
    throw UserError(config.source + ": datasets: expected at least one {path, type} entry");
  CachedExamples cached = load_or_build_token_cache(config, seed, tokenizer, log);
  // test_datasets: their examples follow the training ones and are the eval set, each list in a
  // token cache of its own (test_datasets/ under dataset_prepared_path).
  int64_t num_test = 0;
  if (!config.test_datasets.empty()) {
    const CachedExamples eval = load_test_examples(config, seed, tokenizer, log);
    cached.checksum = cached.checksum * 1099511628211ull ^ eval.checksum;
    num_test = eval.data.size();
    cached.data.append(eval.data);
  }
  TrainingData out;
  // Preference data splits by pairs (examples 2p and 2p + 1, chosen and rejected).
  const int64_t per_item = config.preference_pairs ? 2 : 1;
  try {
    out.split = split_items(cached.data, num_test, per_item, config, seed, log);
  } catch (const UserError& e) {
    throw UserError(config.source + ": " + e.what());
  }
  if (config.preference_pairs) {
    out.train_rows = pair_rows(out.split.train);
    if (config.unpaired_preferences) {  // KTO: train in one fixed order, whose blocks pair the KL sequences
      std::vector<int64_t> kl_source(static_cast<size_t>(cached.data.size() / 2));
      rotate_completions(out.split.train, config.kl_block, kl_source);
      rotate_completions(out.split.val, config.eval_kl_block, kl_source);
      cached.data = kto_sequences(cached.data, kl_source, config.sequence_len);
      out.train_rows = pair_rows(out.split.train);
    }
    out.examples = std::make_shared<const ExampleSet>(std::move(cached.data));
    out.val_rows = pair_rows(out.split.val);
    for (std::vector<int64_t>* pairs : {&out.split.train, &out.split.val}) {  // as examples: both of each pair
      std::vector<int64_t> examples;
      for (int64_t p : *pairs) examples.insert(examples.end(), {2 * p, 2 * p + 1});
      *pairs = std::move(examples);
    }
    // A pair's row holds both sequences unpadded, each attending to itself (a packed row).
    out.train_layout = {2 * config.sequence_len, false, true, tokenizer.pad()};
    out.val_layout = out.train_layout;
    out.cache_path = cached.path;
    out.fingerprint = cached.checksum;
    out.cache_reused = cached.reused;
    return out;
  }
  // Packed rows are bins (io/multipack.h): the training ones packed each epoch by the DataLoader
  // (loader_options), the validation ones once, in their order (Axolotl's eval sampler is
  // sequential), into bins of the same capacity.
  const MultipackOptions bins = config.multipack_options();
  out.train_layout = {config.sample_packing ? bins.capacity : config.sequence_len, config.pad_to_sequence_len,
                      config.sample_packing, tokenizer.pad(), config.sample_packing && !config.token_labels};
  out.train_layout.token_labels = config.token_labels;
  out.val_layout = out.train_layout;
  out.val_layout.packed = config.sample_packing && config.eval_sample_packing;
  out.val_layout.targets_cross_examples = out.val_layout.packed && !config.token_labels;
  if (!out.val_layout.packed) out.val_layout.sequence_len = config.eval_row_len();
  std::vector<int64_t> train_order = out.split.train;
  if (config.use_pose) {
    add_pose_positions(cached.data, out.split, config, seed);
    // Axolotl sorts PoSE's examples by their last position id before its sampler sees them: the
    // order curriculum_sampling's sequential sampler serves (or packs) them in.
    if (config.curriculum_sampling) train_order = sorted_by_last_position(cached.data, train_order);
  }
  out.train_rows = one_example_per_row(train_order);
  out.val_rows = out.val_layout.packed ? multipack(cached.data, out.split.val, bins) : one_example_per_row(out.split.val);
  out.examples = std::make_shared<const ExampleSet>(std::move(cached.data));
  out.cache_path = cached.path;
  out.fingerprint = cached.checksum;
  out.cache_reused = cached.reused;
  return out;
}

}  // namespace llm
