// Training data with Axolotl's semantics: every example whole (io/examples.h), in the merged
// datasets' order (Axolotl's shuffle, io/python_shuffles.h), split into train and validation
// examples (its tail), laid into rows (one example per row, padded; or, with sample_packing,
// Axolotl's multipack bins, io/multipack.h, whose examples attend only within themselves), and
// served as micro-batches in a per-epoch order that a checkpoint can restore exactly and that
// distributed ranks share without overlap.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/tensor.h"
#include "io/data_config.h"
#include "io/examples.h"
#include "io/multipack.h"
#include "io/tokenizer.h"
#include "io/validation_split.h"

namespace llm {

// Every example end to end: what the token cache holds.
struct ExampleSet {
  std::vector<int32_t> tokens;          // every example's tokens, end to end
  std::vector<int32_t> labels;          // their labels (Example::labels)
  std::vector<int64_t> offsets = {0};   // example e: [offsets[e], offsets[e + 1])
  std::vector<uint8_t> desirable;       // each example's Example::desirable
  std::vector<int32_t> positions;       // with PoSE, every token's position id (empty: each
                                        // example's 0, 1, ...)
  ExampleStats stats;

  int64_t size() const { return static_cast<int64_t>(offsets.size()) - 1; }  // placeholders included
  // The examples the filters kept: not the empty placeholders of dropped rows (io/examples.h).
  int64_t kept() const {
    int64_t n = 0;
    for (int64_t e = 0; e < size(); e++) n += length(e) > 0;
    return n;
  }
  int64_t length(int64_t e) const { return offsets[e + 1] - offsets[e]; }
  // f(label) for each target of example e (io/examples.h).
  template <typename F>
  void for_each_target(int64_t e, F&& f) const {
    llm::for_each_target(labels.data() + offsets[e], length(e), f);
  }
  void add(const Example& example);
  void append(const ExampleSet& other);  // its examples after these, its stats added
};

// Reads, tokenizes and fits every dataset of `config` (no cache).
// `seed`: shuffle_before_merging_datasets' shuffles (DataConfig::shuffles_before_merging).
ExampleSet load_examples(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer);

// Without sample_packing: each example its own row (Row: io/multipack.h).
std::vector<Row> one_example_per_row(const std::vector<int64_t>& examples);
// Preference pairs: pair p's chosen and rejected examples (2p, 2p + 1) in one row each.
std::vector<Row> pair_rows(const std::vector<int64_t>& pairs);

// Unpadded batches take lengths in steps of this many tokens: a GPU then meets a few shapes (its
// cuDNN plans and tuned GEMMs are per shape), not one per length; the extra padding is after
// every real token, so under the causal mask it changes no real token's result.
constexpr int64_t kRowLengthMultiple = 64;

// How rows become a batch's tensors.
struct RowLayout {
  int64_t sequence_len = 0;
  bool pad_to_sequence_len = false;  // else to the longest row of the micro-batch, rounded up
                                     // to a multiple of kRowLengthMultiple (at most sequence_len)
  bool packed = false;               // rows hold several examples: doc_ids for the attention mask
  int32_t pad = 0;                   // the tokenizer's pad id
  // Axolotl's packed rows: transformers shifts the labels along the whole row, so an example's
  // last token predicts the next example's first label (masked when it is a prompt's); else (one
  // example a row, a preference pair's two sequences) an example's last token predicts nothing.
  bool targets_cross_examples = false;
  // A row of several examples as one causal sequence, its positions 0, 1, ... across them and no
  // doc_ids (a stream's packed windows with pretrain_multipack_attn false).
  bool positions_continue = false;
  // Diffusion training's bidirectional rows: doc_ids on every row (its padding a document of its
  // own, which a query would otherwise see; a row that is one causal sequence one document) and
  // each token's own label kept (Batch::labels).
  bool bidirectional = false;
  // Token classification (a process reward model): each token's own label is its target, not the
  // next token's (transformers' ForTokenClassification loss does not shift).
  bool token_labels = false;
};

struct Batch {
  Tensor inputs;     // i32 (B, S)
  Tensor targets;    // i32 (B*S): the next token's label (see RowLayout; token_labels: its own), or kIgnoreIndex
  Tensor positions;  // i32 (B, S): restarting at 0 for every example
  Tensor doc_ids;    // i32 (B, S): each token's example within its row (packed or bidirectional rows)
  Tensor labels;     // i32 (B, S): each token's own label, unshifted (bidirectional rows only)
  int64_t num_targets = 0;       // targets that are not kIgnoreIndex
  int64_t num_tokens = 0;        // inputs that are not padding
  int64_t num_labels = 0;        // labels that are not kIgnoreIndex, unshifted (HF's labels != -100)
  int64_t epoch = 0, index = 0;  // the cursor that produced it
  std::vector<Row> rows;         // the examples of each row, in order
  int64_t rows_counted = 0;      // an eval batch's rows its loss counts for (eval_batches)
};

// Rows side by side, right-padded with `layout.pad` (no loss; causal attention keeps real tokens
// from seeing the padding after them; a packed row's padding is an example of its own).
Batch make_batch(const ExampleSet& data, const std::vector<Row>& rows, const int64_t* which,
                 int64_t count, const RowLayout& layout);

// Where a DataLoader stands: the next micro-batch it yields. Saved in checkpoints.
struct DataCursor {
  int64_t epoch = 0;
  int64_t batch = 0;  // this rank's micro-batch index within the epoch
  bool operator==(const DataCursor& o) const { return epoch == o.epoch && batch == o.batch; }
};

// The order training rows are served in each epoch: torch_randperm(rows, seed + epoch) (the
// default: HF's Trainer's RandomSampler, as accelerate's SeedableRandomSampler seeds it), a
// permutation grouped by length (HF's group_by_length, its LengthGroupedSampler, which draws from
// torch's global generator: see DataLoader; not with sample_packing, as Axolotl), or the rows as
// given for every epoch (Axolotl's curriculum_sampling, a SequentialSampler over the merged
// datasets' order).
enum class RowOrder { shuffled_per_epoch, length_grouped, as_given };
RowOrder row_order(const DataConfig& config);

// transformers' get_length_grouped_indices on an already shuffled `order`: megabatches of
// min(n / (4 batch), 50) (at least 1) x `batch` entries, each sorted longest first (stably), then
// the longest of all swapped to the front so the first batch shows the peak memory at once.
void group_by_length(std::vector<int64_t>& order, const std::vector<int64_t>& lengths, int64_t batch);

// Which of the rows a DataLoader serves, and in what order.
struct LoaderOptions {
  int rank = 0, world_size = 1;
  RowOrder order = RowOrder::shuffled_per_epoch;
  int64_t length_group_batch = 1;  // the batch HF groups lengths by (micro_batch_size x gradient
                                   // accumulation) for RowOrder::length_grouped
  bool drop_last = false;          // HF's dataloader_drop_last (see DataLoader)
  // With a capacity: the rows, one example each, packed afresh each epoch in the epoch's order.
  MultipackOptions multipack;
  // A stream's rows (io/pretraining.h): epoch e's rows as it serves them, given the evaluations
  // before it; the order above and packing then unused. Every epoch serves as many rows as the
  // first (a later one with more is cut there; one with fewer goes on with its first rows).
  std::function<std::vector<Row>(int64_t epoch, int64_t evaluations)> stream_rows;
};
// `config`'s training rows on rank `rank` of `world_size`: row_order's order, packed each epoch
// with sample_packing, and the last rows dropped with dataloader_drop_last or sample_packing
// (Axolotl's multipack sampler drops them). A pretraining stream: `stream_rows` (TrainingData's),
// none dropped (the Trainer's loader of an IterableDataset has no drop_last).
LoaderOptions loader_options(const DataConfig& config, int rank, int world_size, int64_t length_group_batch,
                             std::function<std::vector<Row>(int64_t, int64_t)> stream_rows = nullptr);

// Micro-batches of training rows. Each epoch's order comes from (seed, epoch) alone, so a batch
// never depends on how many were drawn before it. Length grouped, the epoch's permutation is the
// one HF's LengthGroupedSampler draws from torch's global generator (TorchGenerator), which
// set_seed(seed) seeds and every DataLoader iteration advances by a base seed: one for each
// evaluation the Trainer ran before it (set_evaluations_before_epoch) and one for each epoch's own
// iteration, whose permutation follows. Packed, the epoch's rows are the bins that
// order packs into, in the order they opened, as Axolotl's multipack sampler yields them; their
// count per epoch is its sampler's (the least of four draws of torch's global generator after
// set_seed, axolotl_bin_count; one on 4 ranks or more), and an epoch with fewer goes on with its
// first bins.
// Global batch g of an epoch holds rows [g B, g B + B); rank r of `world_size` takes
// g % world_size == r. An epoch's last rows that fill no whole batch on every rank are, with
// drop_last, dropped; else served as torch and accelerate serve them: one rank gets a last,
// smaller batch; several ranks get as many whole batches each, the epoch's rows continuing from
// its first world_size x B (cycled when fewer) to fill them, as accelerate's even_batches.
class DataLoader {
 public:
  DataLoader(std::shared_ptr<const ExampleSet> data, std::vector<Row> rows, RowLayout layout,
             int64_t micro_batch_size, uint64_t seed, LoaderOptions options = {});

  int64_t num_batches_per_epoch() const { return batches_per_epoch_; }  // on this rank
  int64_t num_rows_per_epoch() const { return rows_per_epoch_; }  // on every rank: rows, or the bin count
  Batch next();  // the batch at the cursor; the cursor moves on (into the next epoch at the end)
  Batch batch_at(int64_t epoch, int64_t index);  // any batch of this rank, cursor untouched
  DataCursor cursor() const { return cursor_; }
  void set_cursor(const DataCursor& cursor);  // UserError when it is outside this data
  const std::vector<Row>& epoch_rows(int64_t epoch);  // an epoch's rows as served, on every rank
  // How many evaluations the Trainer starts before epoch `epoch` (eval_on_start's included): they
  // advance the global generator a length-grouped order draws from. Unset: none.
  void set_evaluations_before_epoch(std::function<int64_t(int64_t epoch)> count);

 private:
  std::vector<int64_t> epoch_order(int64_t epoch) const;  // of rows_
  std::vector<Row> served_rows(int64_t epoch) const;       // before even batches extend them
  std::vector<Row> packed_rows(const std::vector<int64_t>& order) const;  // rows_ in order, packed
  int64_t axolotl_bin_count() const;                       // packed: the bins an epoch serves

  std::shared_ptr<const ExampleSet> data_;
  std::vector<Row> rows_;
  RowLayout layout_;
  int64_t micro_batch_size_;
  uint64_t seed_;
  LoaderOptions options_;
  int64_t batches_per_epoch_, rows_per_epoch_;
  DataCursor cursor_;
  std::function<int64_t(int64_t)> evaluations_before_epoch_;
  int64_t rows_epoch_ = -1;      // the epoch epoch_rows_ holds
  std::vector<Row> epoch_rows_;  // with even batches, continued past the rows (see DataLoader)
};

// The validation rows in the order the Trainer's eval sampler serves them: with group_by_length
// (unpacked), HF's LengthGroupedSampler of `eval_batch` rows, its own generator seeded with `seed`
// at each evaluation (so the same order every time); else as given.
std::vector<Row> eval_row_order(const ExampleSet& data, std::vector<Row> rows, const DataConfig& config,
                                bool packed, int64_t eval_batch, uint64_t seed);

// Validation batches as the Trainer's eval loader makes them (a SequentialSampler): `rows` in
// their order, micro_batch_size each, the last one smaller or, with `drop_last` (its
// dataloader_drop_last), dropped; rank r of `world_size` takes batches g % world_size == r. The
// order matters: the eval loss weighs each batch's mean token loss by its rows (Batch::rows_counted).
// On several ranks as accelerate shards the loader (even_batches): with drop_last only whole
// rounds of a batch a rank are served; without it, `pad_last_round` fills a smaller last batch
// with the first rows, as accelerate completes the last round (gather_for_metrics then drops the
// copies: they count for nothing, but their tokens are in that batch's mean).
std::vector<Batch> eval_batches(const ExampleSet& data, const std::vector<Row>& rows,
                                const RowLayout& layout, int64_t micro_batch_size, int rank = 0,
                                int world_size = 1, bool drop_last = false, bool pad_last_round = false);

// Packed eval batches (bins from eval_batches) weighed as Axolotl's eval under the Trainer weighs
// them: its multipack batch sampler of `sampler_batch` bins (1, or micro_batch_size with
// multipack_real_batches) serves whole rounds of the ranks; the Trainer repeats each batch's mean
// loss `eval_batch_size` times; at the loader's end accelerate's gather_for_metrics keeps only the
// first `remainder` copies of the last round, rank 0's first, where remainder = the examples of
// all the `bins` (accelerate takes len() of the dataset: examples, not bins) % (sampler_batch x
// ranks). Sets each batch's rows_counted to those copies.
void weigh_packed_eval_batches(std::vector<Batch>& batches, const std::vector<Row>& bins, int64_t sampler_batch,
                               int64_t eval_batch_size, int rank, int world_size);

// Unigram entropy (nats per token) of the targets of `examples`: the loss of the best model that
// ignores context, which a trained model must beat.
double unigram_entropy(const ExampleSet& data, const std::vector<int64_t>& examples);

void log_to_stderr(const std::string& line);  // a LogFn (io/validation_split.h)

// PoSE (io/pose.h) on the data: every token's position id, the training examples' drawn from
// (seed, example) and the validation ones' too unless eval_sample_packing is false; and Axolotl's
// order of PoSE's rows, sorted (stably) by their last position id. Defined in io/pose.cpp.
void add_pose_positions(ExampleSet& data, const ExampleSplit& split, const DataConfig& config, uint64_t seed);
std::vector<int64_t> sorted_by_last_position(const ExampleSet& data, std::vector<int64_t> examples);

struct TrainingData {
  std::shared_ptr<const ExampleSet> examples;
  ExampleSplit split;
  std::vector<Row> train_rows, val_rows;  // a stream's train_rows: its first epoch's
  RowLayout train_layout, val_layout;
  std::function<std::vector<Row>(int64_t epoch, int64_t evaluations)> stream_rows;  // pretraining_dataset's
  std::string cache_path;     // the token cache file read or written
  bool cache_reused = false;  // true: no source was tokenized
  // The token caches' checksums (training, then test_datasets'), mixed: another value means other
  // data, or the same read otherwise.
  uint64_t fingerprint = 0;
};

// The front door: the examples of config.datasets from the token cache in dataset_prepared_path
// (built when missing, stale or corrupt), split by val_set_size and `seed`, laid into rows.
// Throws UserError on bad data or settings.
TrainingData load_training_data(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer,
                                const LogFn& log = log_to_stderr);

}  // namespace llm
