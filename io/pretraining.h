// defines: PretrainingStream, load_pretraining_stream, pretraining_windows: Axolotl 0.19's
// pretraining_dataset, which streams one dataset's texts through HF datasets (4.8) into the
// Trainer. Here the texts are read and tokenized once at start-up (no token cache), and each
// epoch serves them as that stream would:
// - the stream: the texts in file order, the first `skip` left out (IterableDataset.skip), then,
//   with shuffle_merged_datasets, HF's shuffle buffer of buffer_size texts seeded with `seed` and
//   reseeded per epoch (io/python_shuffles.h's hf_stream_shuffle);
// - without sample_packing (Axolotl's encode_streaming, pretraining_sample_concatenation unset or
//   false): each text one row, BOS and its tokens cut at sequence_len - 2 in all, every token a
//   label, no EOS;
// - with sample_packing (its encode_packed_streaming): each map batch of buffer_size stream texts
//   tokenized by the dataset's type, pretrain (each text in windows of BOS + sequence_len - 2
//   tokens overlapping by min(256, (sequence_len - 1) / 2), as the tokenizer's overflow with a
//   stride cuts them, each window ending in EOS) or completion (Axolotl's completion strategy:
//   io/examples.h), then packed into bins of micro_batch_size x sequence_len (io/multipack.h's
//   first fit, whatever sample_packing_sequentially says) in the order of a RandomSampler that
//   seeds its generator from torch's global one, each bin one micro-batch whose windows attend
//   only within themselves (pretrain_multipack_attn).
// The global generator is modelled as the Trainer leaves it (io/dataset.h's DataLoader): set_seed
// (seed), then one draw per DataLoader iteration (each epoch's and each evaluation's before it);
// each map batch's sampler draws one seed from it. An evaluation between two map batches of an
// epoch (a corpus of more than buffer_size texts) would draw one more there: not modelled.
#pragma once
#include <cstdint>
#include <vector>

#include "io/data_config.h"
#include "io/dataset.h"
#include "io/tokenizer.h"

namespace llm {

// The tokenized texts and how each epoch lays them into rows.
struct PretrainingStream {
  ExampleSet data;              // every text's examples (a row's, or its windows), text after text
                                // (load_pretraining_data moves them into TrainingData::examples)
  std::vector<int64_t> first;   // text t's examples: [first[t], first[t + 1])
  std::vector<int64_t> file_texts;  // the texts of each file, in reading order (before skip)
  DataConfig config;
  uint64_t seed = 0;
  // Epoch `epoch`'s rows in the order the stream serves them, `evaluations` evaluations having
  // run before it (they advance the global generator packed rows are drawn with).
  // `examples` holds the stream's examples first, as `data` did.
  std::vector<Row> epoch_rows(const ExampleSet& examples, int64_t epoch, int64_t evaluations) const;
  // The texts in epoch `epoch`'s stream order: the files' order (several files, no skip: numpy's
  // shuffle of them seeded with `seed`, and from epoch 1 on that order shuffled again, seeded with
  // the epoch), then the buffer's.
  std::vector<int64_t> stream_order(int64_t epoch) const;
};

// config.pretraining's texts, tokenized. Throws UserError when the dataset holds none (after skip).
PretrainingStream load_pretraining_stream(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer,
                                          const LogFn& log);

// load_training_data for config.pretraining: the stream's examples, then test_datasets' (the eval
// set, from their token cache; val_set_size must be 0), its first epoch's rows and stream_rows.
TrainingData load_pretraining_data(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer,
                                   const LogFn& log);

// Axolotl's PretrainTokenizationStrategy on one text's ids (without BOS): windows of at most
// sequence_len - 2 ids, each next one starting `stride` ids before the previous one's end, until
// one reaches the end; each becomes BOS + window + EOS.
std::vector<std::vector<int32_t>> pretraining_windows(const std::vector<int32_t>& ids, int64_t sequence_len,
                                                      int32_t bos, int32_t eos);

}  // namespace llm
