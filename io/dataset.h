// Training data: documents packed into one token stream, cut into windows of sequence_len + 1
// tokens (stride sequence_len: inputs w[0, L), targets w[1, L + 1)), split into train and
// validation windows from the seed, and served as micro-batches in a per-epoch shuffled order
// that a checkpoint can restore exactly and that distributed ranks share without overlap.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/tensor.h"
#include "io/data_config.h"
#include "io/documents.h"
#include "io/tokenizer.h"

namespace llm {

// kIgnoreIndex (engine/ops.h): a label that takes no loss, as HF's -100.

struct PackedDataset {
  int64_t sequence_len = 0;     // L
  std::vector<int32_t> tokens;  // every document as [BOS] prompt text [EOS], end to end
  std::vector<int32_t> labels;  // tokens[i], or kIgnoreIndex on prompts and padding
  // Window w covers tokens[w L, w L + L + 1); a tail shorter than that is dropped.
  int64_t num_windows() const;
};

// Packs `docs` in order. The BOS of a document with a prompt is masked with its prompt. A stream
// shorter than one window is padded to one with PAD (labels kIgnoreIndex).
PackedDataset pack_documents(const std::vector<Document>& docs, const Tokenizer& tokenizer,
                             int64_t sequence_len);

struct WindowSplit {
  std::vector<int64_t> train, val;  // window indices, each list ascending
};

// val_set_size < 1: that fraction of the windows (rounded up, at least 1 when > 0); >= 1: that
// many. The windows are shuffled with std::mt19937_64(seed) and the first ones go to validation.
// Throws UserError ("val_set_size: ...") when no training window would be left.
WindowSplit split_windows(int64_t num_windows, double val_set_size, uint64_t seed);

// Where a DataLoader stands: the next micro-batch it yields. Saved in checkpoints.
struct DataCursor {
  int64_t epoch = 0;
  int64_t batch = 0;  // this rank's micro-batch index within the epoch
  bool operator==(const DataCursor& o) const { return epoch == o.epoch && batch == o.batch; }
};

struct Batch {
  Tensor inputs;     // i32 (B, S)
  Tensor targets;    // i32 (B*S): the next token, or kIgnoreIndex where no loss is taken
  Tensor positions;  // i32 (B, S): 0..S-1 in every row
  Tensor doc_ids;    // i32 (B, S) with sample_packing (see restart_per_document), else undefined
  int64_t num_targets = 0;       // targets that are not kIgnoreIndex
  int64_t epoch = 0, index = 0;  // the cursor that produced it
};

// Micro-batches of training windows. Each epoch is an order of all windows shuffled from
// (seed, epoch) alone, so a batch never depends on how many were drawn before it. Global batch
// g of an epoch holds windows order[g B, g B + B); rank r of `world_size` takes g % world_size
// == r, and every rank gets the same count (leftover windows and batches are dropped).
class DataLoader {
 public:
  DataLoader(std::shared_ptr<const PackedDataset> data, std::vector<int64_t> windows,
             int64_t micro_batch_size, uint64_t seed, int rank = 0, int world_size = 1);

  int64_t num_batches_per_epoch() const { return batches_per_epoch_; }  // on this rank
  Batch next();  // the batch at the cursor; the cursor moves on (into the next epoch at the end)
  Batch batch_at(int64_t epoch, int64_t index);  // any batch of this rank, cursor untouched
  DataCursor cursor() const { return cursor_; }
  void set_cursor(const DataCursor& cursor);  // UserError when it is outside this data

 private:
  const std::vector<int64_t>& epoch_order(int64_t epoch);

  std::shared_ptr<const PackedDataset> data_;
  std::vector<int64_t> windows_;
  int64_t micro_batch_size_;
  uint64_t seed_;
  int rank_, world_size_;
  int64_t batches_per_epoch_;
  DataCursor cursor_;
  int64_t order_epoch_ = -1;  // the epoch order_ holds
  std::vector<int64_t> order_;
};

// sample_packing: a window holds several documents (each starts with BOS). Gives every token its
// document's index within the row (doc_ids, for a block-diagonal attention mask) and restarts
// positions at 0 at each document, so no token attends across documents or sees a position it
// would not have had alone.
void restart_per_document(Batch& batch, int32_t bos);

// Validation batches: `windows` in order, micro_batch_size each (the last one may be smaller);
// rank r of `world_size` takes batches g % world_size == r.
std::vector<Batch> eval_batches(const PackedDataset& data, const std::vector<int64_t>& windows,
                                int64_t micro_batch_size, int rank = 0, int world_size = 1);

// Unigram entropy (nats per token) of the targets of `windows`: the loss of the best model that
// ignores context, which a trained model must beat.
double unigram_entropy(const PackedDataset& data, const std::vector<int64_t>& windows);

using LogFn = std::function<void(const std::string&)>;
void log_to_stderr(const std::string& line);

struct TrainingData {
  std::shared_ptr<const PackedDataset> packed;
  WindowSplit split;
  std::string cache_path;     // the token cache file read or written
  bool cache_reused = false;  // true: no source was tokenized
};

// The front door: the packed tokens of config.datasets from the token cache in
// dataset_prepared_path (built when missing, stale or corrupt), split by val_set_size and `seed`.
// Throws UserError on bad data or settings.
TrainingData load_training_data(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer,
                                const LogFn& log = log_to_stderr);

}  // namespace llm
