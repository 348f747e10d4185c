// defines: pack_documents, split_windows, DataLoader, eval_batches, unigram_entropy,
// log_to_stderr, load_training_data
#include "io/dataset.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

#include "io/examples.h"
#include "io/token_cache.h"
#include "engine/user_error.h"

namespace llm {
namespace {

// Fisher-Yates with our own index draw: std::shuffle's draws differ between standard libraries,
// and a seed must give the same order everywhere. The modulo bias is below 2^-40 for any
// realistic number of windows.
void shuffle_in_place(std::vector<int64_t>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; i--) std::swap(v[i - 1], v[rng() % i]);
}

Batch make_batch(const PackedDataset& data, const int64_t* windows, int64_t count, int64_t epoch,
                 int64_t index) {
  const int64_t S = data.sequence_len;
  std::vector<int32_t> inputs(count * S), targets(count * S), positions(count * S);
  Batch batch;
  for (int64_t b = 0; b < count; b++) {
    const int64_t start = windows[b] * S;
    for (int64_t i = 0; i < S; i++) {
      inputs[b * S + i] = data.tokens[start + i];
      targets[b * S + i] = data.labels[start + i + 1];  // the LM shift: predict the next token
      positions[b * S + i] = static_cast<int32_t>(i);
      batch.num_targets += targets[b * S + i] != kIgnoreIndex;
    }
  }
  batch.inputs = Tensor::from_ints(inputs, {count, S});
  batch.targets = Tensor::from_ints(targets, {count * S});
  batch.positions = Tensor::from_ints(positions, {count, S});
  batch.epoch = epoch;
  batch.index = index;
  return batch;
}

}  // namespace

void restart_per_document(Batch& batch, int32_t bos) {
  const int64_t B = batch.inputs.size(0), S = batch.inputs.size(1);
  std::vector<int32_t> ids = batch.inputs.to_ints(), doc(B * S), pos(B * S);
  for (int64_t b = 0; b < B; b++) {
    int32_t d = 0, p = 0;
    for (int64_t i = 0; i < S; i++) {
      if (i > 0 && ids[b * S + i] == bos) d++, p = 0;
      doc[b * S + i] = d;
      pos[b * S + i] = p++;
    }
  }
  batch.doc_ids = Tensor::from_ints(doc, {B, S});
  batch.positions = Tensor::from_ints(pos, {B, S});
}

int64_t PackedDataset::num_windows() const {
  return (static_cast<int64_t>(tokens.size()) - 1) / sequence_len;
}

PackedDataset pack_documents(const std::vector<Document>& docs, const Tokenizer& tokenizer,
                             int64_t sequence_len) {
  if (sequence_len <= 0) throw std::invalid_argument("pack_documents: sequence_len must be > 0");
  PackedDataset packed;
  packed.sequence_len = sequence_len;
  auto push = [&](int32_t token, int32_t label) {
    packed.tokens.push_back(token);
    packed.labels.push_back(label);
  };
  for (const Document& doc : docs) {
    Example ex = tokenize_document(doc, tokenizer, false, "");
    for (size_t i = 0; i < ex.tokens.size(); i++) push(ex.tokens[i], ex.labels[i]);
  }
  while (static_cast<int64_t>(packed.tokens.size()) < sequence_len + 1)
    push(tokenizer.pad(), kIgnoreIndex);
  return packed;
}

WindowSplit split_windows(int64_t num_windows, double val_set_size, uint64_t seed) {
  const std::string value = fmt::format("{}", val_set_size);
  if (!(val_set_size >= 0))
    throw UserError("val_set_size: " + value + ", expected a fraction in [0, 1) or a count >= 1");
  int64_t num_val = 0;
  if (val_set_size >= 1)
    num_val = static_cast<int64_t>(val_set_size);
  else if (val_set_size > 0)  // rounded up, as HF's train_test_split
    num_val = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(val_set_size * num_windows)));
  if (num_val >= num_windows)
    throw UserError("val_set_size: " + value + " takes " + std::to_string(num_val) + " of the " +
                    std::to_string(num_windows) +
                    " windows, leaving none to train on; expected a smaller value, a smaller "
                    "sequence_len or more data");
  std::vector<int64_t> order(num_windows);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  shuffle_in_place(order, rng);
  WindowSplit split;
  split.val.assign(order.begin(), order.begin() + num_val);
  split.train.assign(order.begin() + num_val, order.end());
  std::sort(split.val.begin(), split.val.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

DataLoader::DataLoader(std::shared_ptr<const PackedDataset> data, std::vector<int64_t> windows,
                       int64_t micro_batch_size, uint64_t seed, int rank, int world_size)
    : data_(std::move(data)),
      windows_(std::move(windows)),
      micro_batch_size_(micro_batch_size),
      seed_(seed),
      rank_(rank),
      world_size_(world_size) {
  if (!data_ || micro_batch_size <= 0 || rank < 0 || rank >= world_size)
    throw std::invalid_argument("DataLoader: needs data, micro_batch_size > 0, 0 <= rank < world");
  batches_per_epoch_ = static_cast<int64_t>(windows_.size()) / micro_batch_size_ / world_size_;
  if (batches_per_epoch_ == 0)
    throw UserError("the datasets pack into " + std::to_string(windows_.size()) +
                    " training windows of sequence_len " + std::to_string(data_->sequence_len) +
                    ", fewer than micro_batch_size " + std::to_string(micro_batch_size) + " x " +
                    std::to_string(world_size) +
                    " ranks; expected a smaller sequence_len or micro_batch_size, or more data");
}

const std::vector<int64_t>& DataLoader::epoch_order(int64_t epoch) {
  if (order_epoch_ != epoch) {
    std::seed_seq seq{static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32),
                      static_cast<uint32_t>(epoch), static_cast<uint32_t>(epoch >> 32)};
    std::mt19937_64 rng(seq);
    order_ = windows_;
    shuffle_in_place(order_, rng);
    order_epoch_ = epoch;
  }
  return order_;
}

Batch DataLoader::batch_at(int64_t epoch, int64_t index) {
  if (epoch < 0 || index < 0 || index >= batches_per_epoch_)
    throw std::out_of_range("DataLoader::batch_at: no such batch on this rank");
  const int64_t global = index * world_size_ + rank_;
  return make_batch(*data_, epoch_order(epoch).data() + global * micro_batch_size_,
                    micro_batch_size_, epoch, index);
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

std::vector<Batch> eval_batches(const PackedDataset& data, const std::vector<int64_t>& windows,
                                int64_t micro_batch_size, int rank, int world_size) {
  if (micro_batch_size <= 0 || rank < 0 || rank >= world_size)
    throw std::invalid_argument("eval_batches: needs micro_batch_size > 0, 0 <= rank < world");
  const int64_t n = static_cast<int64_t>(windows.size());
  std::vector<Batch> batches;
  for (int64_t g = rank; g * micro_batch_size < n; g += world_size) {
    const int64_t begin = g * micro_batch_size;
    batches.push_back(make_batch(data, windows.data() + begin,
                                 std::min(micro_batch_size, n - begin), 0,
                                 static_cast<int64_t>(batches.size())));
  }
  return batches;
}

double unigram_entropy(const PackedDataset& data, const std::vector<int64_t>& windows) {
  std::vector<int64_t> counts;
  int64_t total = 0;
  const int64_t S = data.sequence_len;
  for (int64_t w : windows) {
    for (int64_t i = w * S + 1; i <= w * S + S; i++) {
      const int32_t label = data.labels[i];
      if (label == kIgnoreIndex) continue;
      if (label >= static_cast<int32_t>(counts.size())) counts.resize(label + 1, 0);
      counts[label]++;
      total++;
    }
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
  if (config.datasets.empty())
    throw UserError(config.source + ": datasets: expected at least one {path, type} entry");
  CachedTokens cached = load_or_build_token_cache(config, tokenizer, log);
  TrainingData out;
  try {
    out.split = split_windows(cached.data.num_windows(), config.val_set_size, seed);
  } catch (const UserError& e) {
    throw UserError(config.source + ": " + e.what());
  }
  out.packed = std::make_shared<const PackedDataset>(std::move(cached.data));
  out.cache_path = cached.path;
  out.cache_reused = cached.reused;
  return out;
}

}  // namespace llm
