// defines: load_pretraining_stream, PretrainingStream::epoch_rows and stream_order,
// load_pretraining_data, pretraining_windows
#include "io/pretraining.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <numeric>

#include "engine/user_error.h"
#include "io/documents.h"
#include "io/python_shuffles.h"
#include "io/token_cache.h"

namespace llm {

namespace {

bool packs(const DataConfig& config) { return config.sample_packing; }

// The texts of one dataset file, in file order (an empty text is "").
std::vector<std::string> read_file_texts(const DatasetSpec& spec, const std::string& file, const Tokenizer& tokenizer) {
  DatasetSpec one = spec;
  one.path = file;
  one.data_files.clear();
  std::vector<std::string> texts;
  for (const Document& doc : load_documents(one, tokenizer)) texts.push_back(doc.pieces.empty() ? "" : doc.pieces.front().text);
  return texts;
}

// Axolotl's encode_streaming without concatenation: the tokenizer's BOS and ids, cut at
// sequence_len - 2 tokens (its max_length), every token a label.
Example row_of_text(const std::string& text, const Tokenizer& tokenizer, int64_t sequence_len) {
  Example ex;
  ex.tokens.push_back(tokenizer.bos());
  for (int32_t t : tokenizer.encode(text)) ex.tokens.push_back(t);
  ex.tokens.resize(std::min<size_t>(ex.tokens.size(), static_cast<size_t>(std::max<int64_t>(1, sequence_len - 2))));
  ex.labels = ex.tokens;
  return ex;
}

}  // namespace

std::vector<std::vector<int32_t>> pretraining_windows(const std::vector<int32_t>& ids, int64_t sequence_len,
                                                      int32_t bos, int32_t eos) {
  // The tokenizer's truncation with a stride (max_length sequence_len - 1 less BOS): windows of
  // `width` ids starting every width - stride ids, the last one the first to reach the end.
  const size_t width = static_cast<size_t>(sequence_len - 2);
  const size_t stride = static_cast<size_t>(std::min<int64_t>(256, (sequence_len - 1) / 2));
  std::vector<std::vector<int32_t>> windows;
  for (size_t start = 0;; start += width - stride) {
    const size_t stop = std::min(ids.size(), start + width);
    std::vector<int32_t> window{bos};
    window.insert(window.end(), ids.begin() + static_cast<std::ptrdiff_t>(start), ids.begin() + static_cast<std::ptrdiff_t>(stop));
    window.push_back(eos);
    windows.push_back(std::move(window));
    if (stop == ids.size()) break;
  }
  return windows;
}

PretrainingStream load_pretraining_stream(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer,
                                          const LogFn& log) {
  const PretrainingSource& source = *config.pretraining;
  PretrainingStream stream;
  stream.config = config;
  stream.seed = seed;
  std::vector<std::string> texts;
  for (const std::string& file : dataset_source_files(source.spec)) {
    std::vector<std::string> more = read_file_texts(source.spec, file, tokenizer);
    stream.file_texts.push_back(static_cast<int64_t>(more.size()));
    texts.insert(texts.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  const int64_t read = static_cast<int64_t>(texts.size());
  texts.erase(texts.begin(), texts.begin() + static_cast<std::ptrdiff_t>(std::min(source.skip, read)));
  if (texts.empty())
    throw UserError(config.source + ": pretraining_dataset: " + source.spec.path + " holds " + std::to_string(read) +
                    " texts, none after skip " + std::to_string(source.skip) + "; expected texts to train on");
  DatasetSpec completion = source.spec;
  completion.type = "completion";
  // Axolotl's stream filters windows and chunks at 2 tokens whatever min_sample_len says.
  DataConfig fit = config;
  fit.min_sample_len = -1;
  stream.first.push_back(0);
  for (const std::string& text : texts) {
    if (!packs(config)) {
      stream.data.add(row_of_text(text, tokenizer, config.sequence_len));
    } else if (source.completion) {
      std::vector<Example> examples;
      append_examples(completion, {text_document(text)}, tokenizer, fit, examples, stream.data.stats);
      for (const Example& ex : examples) stream.data.add(ex);
    } else {
      for (std::vector<int32_t>& window : pretraining_windows(tokenizer.encode(text), config.sequence_len,
                                                              tokenizer.bos(), tokenizer.eos())) {
        Example ex;
        ex.labels = window;
        ex.tokens = std::move(window);
        stream.data.add(ex);
      }
    }
    stream.first.push_back(stream.data.size());
  }
  stream.data.stats.documents = static_cast<int64_t>(texts.size());
  log("pretraining_dataset: " + std::to_string(texts.size()) + " texts of " + source.spec.path +
      (source.skip > 0 ? " after skipping " + std::to_string(source.skip) : std::string()) + ", " +
      std::to_string(stream.data.size()) + (packs(config) ? " windows" : " rows") + ", " +
      std::to_string(stream.data.tokens.size()) + " tokens; served as a stream " +
      (config.shuffle_merged_datasets ? "through a shuffle buffer of " + std::to_string(source.buffer_size)
                                      : std::string("in file order")));
  // A row of BOS alone (an empty text unpacked) predicts nothing: a stream of only those would
  // train a loss of 0 on no token.
  bool any_target = false;
  for (int64_t e = 0; e < stream.data.size() && !any_target; e++) stream.data.for_each_target(e, [&](int32_t) { any_target = true; });
  if (!any_target)
    throw UserError(config.source + ": pretraining_dataset: " + source.spec.path +
                    " gives no rows with a token to predict; expected longer texts");
  return stream;
}

std::vector<int64_t> PretrainingStream::stream_order(int64_t epoch) const {
  const int64_t texts = static_cast<int64_t>(first.size()) - 1;
  std::vector<int64_t> stream(static_cast<size_t>(texts));
  std::iota(stream.begin(), stream.end(), 0);
  if (!config.shuffle_merged_datasets) return stream;
  // The files' order first (datasets shuffles its data sources, unless skip pinned them).
  if (file_texts.size() > 1 && config.pretraining->skip == 0) {
    std::vector<int64_t> file_first{0};
    for (int64_t count : file_texts) file_first.push_back(file_first.back() + count);
    const auto files = static_cast<int64_t>(file_texts.size());
    std::vector<int64_t> file_order = numpy_permutation(files, seed);
    if (epoch > 0) {  // the epoch's shuffle of the sources, on top of the first one
      const std::vector<int64_t> first_order = file_order;
      const std::vector<int64_t> again = numpy_permutation(files, static_cast<uint64_t>(epoch));
      for (int64_t k = 0; k < files; k++) file_order[static_cast<size_t>(k)] = first_order[static_cast<size_t>(again[static_cast<size_t>(k)])];
    }
    stream.clear();
    for (int64_t f : file_order)
      for (int64_t t = file_first[static_cast<size_t>(f)]; t < file_first[static_cast<size_t>(f) + 1]; t++) stream.push_back(t);
  }
  std::vector<int64_t> order;
  for (int64_t i : hf_stream_shuffle(texts, config.pretraining->buffer_size, seed, epoch, config.stream_in_worker))
    order.push_back(stream[static_cast<size_t>(i)]);
  return order;
}

std::vector<Row> PretrainingStream::epoch_rows(const ExampleSet& examples, int64_t epoch, int64_t evaluations) const {
  const int64_t texts = static_cast<int64_t>(first.size()) - 1, buffer = config.pretraining->buffer_size;
  const std::vector<int64_t> order = stream_order(epoch);
  // Text t's examples, in order.
  const auto examples_of = [this](int64_t t) {
    std::vector<int64_t> out(static_cast<size_t>(first[static_cast<size_t>(t) + 1] - first[static_cast<size_t>(t)]));
    std::iota(out.begin(), out.end(), first[static_cast<size_t>(t)]);
    return out;
  };
  std::vector<Row> rows;
  if (!packs(config)) {
    for (int64_t t : order) rows.push_back(examples_of(t));
    return rows;
  }
  // The global generator after set_seed: each earlier epoch's iteration and map batches, the
  // evaluations so far, this epoch's iteration; then a draw per map batch. In a worker, the map
  // batches draw from the worker's own generator, seeded with the iteration's base seed (its id 0
  // added), and the main one sees only the iterations' draws.
  const int64_t map_batches = (texts + buffer - 1) / buffer;
  TorchGenerator global(seed);
  const int64_t before = epoch * (config.stream_in_worker ? 1 : 1 + map_batches) + evaluations;
  for (int64_t draw = 0; draw < before + (config.stream_in_worker ? 0 : 1); draw++) global.random_int64();
  TorchGenerator sampler = config.stream_in_worker ? TorchGenerator(static_cast<uint64_t>(global.random_int64())) : global;
  // MultipackBatchSampler as encode_packed_streaming builds it: first fit with the bin size, its
  // default group size.
  MultipackOptions bins;
  bins.capacity = config.micro_batch_size * config.sequence_len;
  bins.bin_size = config.sample_packing_bin_size;
  for (int64_t begin = 0; begin < texts; begin += buffer) {
    std::vector<int64_t> windows;
    for (int64_t i = begin; i < std::min(texts, begin + buffer); i++)
      for (int64_t e : examples_of(order[static_cast<size_t>(i)])) windows.push_back(e);
    std::vector<int64_t> sampled;
    for (int64_t w : sampler.random_sampler_order(static_cast<int64_t>(windows.size())))
      sampled.push_back(windows[static_cast<size_t>(w)]);
    for (Row& bin : multipack(examples, sampled, bins)) rows.push_back(std::move(bin));
  }
  return rows;
}

TrainingData load_pretraining_data(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer,
                                   const LogFn& log) {
  auto stream = std::make_shared<PretrainingStream>(load_pretraining_stream(config, seed, tokenizer, log));
  ExampleSet examples = std::move(stream->data);
  stream->data = ExampleSet();
  TrainingData out;
  const int64_t trained = examples.size();
  out.split.train.resize(static_cast<size_t>(trained));
  std::iota(out.split.train.begin(), out.split.train.end(), 0);
  if (!config.test_datasets.empty()) {
    const CachedExamples eval = load_test_examples(config, seed, tokenizer, log);
    out.fingerprint = eval.checksum;
    examples.append(eval.data);
    for (int64_t e = trained; e < examples.size(); e++)
      if (examples.length(e) > 0) out.split.val.push_back(e);  // not a dropped row's placeholder
  }
  const bool packed = config.sample_packing;
  // Axolotl's eval multipack takes the Trainer's batch size, which encode_packed_streaming set to
  // 1: the eval bins hold sequence_len tokens, one a batch.
  MultipackOptions bins = config.multipack_options();
  bins.capacity = config.sequence_len;
  out.train_layout = {config.micro_batch_size * config.sequence_len, config.pad_to_sequence_len, packed, tokenizer.pad(),
                      packed};
  if (!packed) out.train_layout.sequence_len = config.sequence_len;
  // pretrain_multipack_attn false: a bin is one causal sequence (Axolotl keeps no position ids and
  // an attention mask of the padding only).
  if (packed && !config.pretraining->multipack_attn) out.train_layout.packed = false, out.train_layout.positions_continue = true;
  out.val_layout = out.train_layout;
  out.val_layout.positions_continue = false;
  out.val_layout.packed = out.val_layout.targets_cross_examples = packed && config.eval_sample_packing;
  out.val_layout.sequence_len = out.val_layout.packed ? config.sequence_len : config.eval_row_len();
  out.val_rows = out.val_layout.packed ? multipack(examples, out.split.val, bins) : one_example_per_row(out.split.val);
  // The data a checkpoint was trained on: every token and boundary, FNV-1a mixed with the test
  // datasets' checksum (another value on a resume means other data).
  const uint64_t tokens = fnv1a64(examples.tokens.data(), examples.tokens.size() * sizeof(int32_t));
  out.fingerprint ^= fnv1a64(examples.offsets.data(), examples.offsets.size() * sizeof(int64_t), tokens);
  auto shared = std::make_shared<const ExampleSet>(std::move(examples));
  out.examples = shared;
  out.train_rows = stream->epoch_rows(*shared, 0, 0);
  out.stream_rows = [stream, shared](int64_t epoch, int64_t evaluations) {
    return stream->epoch_rows(*shared, epoch, evaluations);
  };
  return out;
}

}  // namespace llm
