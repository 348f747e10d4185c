// DataConfig: what the data pipeline needs of a training config (its `datasets:` and the keys
// that decide windows and the validation split), so io/ never sees the whole program's keys.
// train/config.h holds one as TrainConfig::data; the YAML keys keep Axolotl's names.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/multipack.h"
#include "io/pose.h"

namespace llm {

// Axolotl's user-defined instruction format (a dataset's `type:` given as a map; its
// user_defined strategy): a row's instruction, input, output and system fields, and the Python
// format strings its prompt is written with (io/user_defined.h).
struct UserDefinedFormat {
  std::string system_prompt;  // the system text of rows without field_system
  std::string field_system = "system", field_instruction = "instruction", field_input = "input",
              field_output = "output";
  std::string format = "{instruction} {input} ", no_input_format = "{instruction} ", system_format = "{system}";
};

// Axolotl's user-defined preference rows (rl with a `type:` map: its user_defined.default): the
// fields a row's texts come from and the Python format strings each is written with (an empty
// format is the default, as Axolotl's `if not prompt_format`). io/preference_formats.h.
struct PreferenceFormat {
  std::string field_prompt = "prompt", field_system = "system", field_chosen = "chosen", field_rejected = "rejected",
              field_completion = "completion", field_label = "label";
  std::string prompt_format = "{prompt}", chosen_format = "{chosen}", rejected_format = "{rejected}",
              completion_format = "{completion}";
};

// Reward models' pairs (io/bradley_terry.h).
constexpr const char* kBradleyTerryType = "bradley_terry.chat_template";

// Whether datasets of `type` render conversations under a chat template (its keys apply): the
// chat_template types, SFT's and rl's, and reward models' bradley_terry.chat_template.
inline bool renders_chat_template(const std::string& type) {
  return type == "chat_template" || type.rfind("chat_template.", 0) == 0 || type == kBradleyTerryType;
}

struct DatasetSpec {
  std::string path;  // a file or a directory of files
  // completion | alpaca | user_defined | chat_template | input_output | pretokenized (rows of input_ids, labels,
  // attention_mask). An entry without a type is completion; a file whose rows have input_ids,
  // attention_mask and labels columns is pretokenized whatever the type, as Axolotl's loader
  // takes it (its documented way to give one is `type:` left empty).
  std::string type = "completion";
  UserDefinedFormat user_defined;  // type user_defined (a `type:` map)
  PreferenceFormat preference_format;  // type user_defined.default (a `type:` map under rl)
  // Which rows train: "train" (all), or a slice in HF's syntax, "train[:20%]" (io/dataset_split.h).
  std::string split = "train";
  // type completion, a .json/.jsonl file: the string field each row's text is in (Axolotl's `field`).
  std::string field = "text";
  // Axolotl's ds_type: how the files are read, json, parquet or text (HF's loaders); empty: by their names
  // (io/documents.h).
  std::string ds_type;

  // type chat_template (Axolotl's keys, per dataset). chat_template not given in the entry: the
  // config's top-level chat_template (DataConfig::chat_template).
  // llama3 (Meta's Instruct format) | chatml: built in (io/chat_template.h); jinja (the template
  // chat_template_jinja holds or names) | tokenizer_default (the tokenizer's own) |
  // tokenizer_default_fallback_llama3 / _chatml (the tokenizer's own, else that one built in):
  // a Jinja template (io/chat_jinja.h), which the config resolves into chat_template_source.
  std::string chat_template = "tokenizer_default_fallback_llama3";
  std::string chat_template_jinja;   // Axolotl's: a Jinja template, or the path of a .jinja file
  std::string chat_template_source;  // the resolved Jinja template; empty: the built-in one
  // Axolotl's chat_template_kwargs (top-level, copied to chat_template datasets): more variables
  // for a Jinja template, a JSON object's text (e.g. {"date_string": "26 Jul 2024"}); empty: none.
  std::string chat_template_kwargs;
  // Axolotl's eot_tokens: the end-of-turn tokens train_on_eot (else train_on_eos) means; empty:
  // EOS. A template's end-of-turn marker that is neither EOS nor one of them never trains.
  std::vector<std::string> eot_tokens;
  std::string field_messages = "messages";       // the row's list of messages
  // Preference datasets (io/preference.h): the chosen and the rejected response's fields.
  std::string field_chosen = "chosen", field_rejected = "rejected";
  std::string field_tools = "tools";  // the row's tool definitions, a Jinja template's `tools`
  std::string message_field_training;  // a message's own training flag (bool); empty: none
  std::string message_field_training_detail;  // a message's spans that train (io/train_detail.h); empty: none
  bool drop_system_message = false;    // drop a row's first message when it is a system one
  std::map<std::string, std::string> message_property_mappings = {{"role", "role"},
                                                                    {"content", "content"}};
  // Our role -> the names a dataset uses for it (e.g. assistant: [gpt, model]); empty: as given.
  std::map<std::string, std::vector<std::string>> roles;
  std::vector<std::string> roles_to_train = {"assistant"};
  std::string train_on_eos = "turn";  // turn | last | all | none: which turns' end token trains
  std::string train_on_eot;           // the same for eot_tokens (Axolotl's); empty: train_on_eos
  bool train_on_inputs = false;       // DataConfig's, copied by the config: which turns train
  // stepwise_supervised (io/stepwise_supervised.h): the text after each step, the steps' token
  // budget (0: none) and whether only the last step's label trains.
  std::string step_separator = "\n";
  int64_t max_completion_length = 0;
  bool train_on_last_step_only = false;

  // Axolotl's data_files: the files of the directory `path` to read, relative to it, in this
  // order; empty: every file in it. A hub dataset's snapshot gets its train split's JSON files.
  std::vector<std::string> data_files;
};

// Axolotl's pretraining_dataset (io/pretraining.h): the training texts come from this one
// dataset, read in full at start-up and served as HF's streaming datasets serve them (a shuffle
// buffer, then Axolotl's encoding in map batches of buffer_size texts), afresh each epoch.
struct PretrainingSource {
  DatasetSpec spec;          // path, split, data_files, ds_type; its field is the column read
  std::string text_column = "text";
  // type completion (Axolotl's completion strategy, which reads "text"), packed; else pretrain.
  // Unpacked, Axolotl reads text_column whatever the type.
  bool completion = false;
  std::string type = "pretrain";  // as given
  int64_t skip = 0;          // texts skipped at the stream's start (IterableDataset.skip)
  int64_t buffer_size = 10000;  // streaming_multipack_buffer_size: the shuffle buffer, the map batch
  bool multipack_attn = true;   // pretrain_multipack_attn: packed windows attend within themselves
};

struct DataConfig {
  std::string source;  // the config file these settings came from, named in messages
  // The top-level chat_template, chat_template_jinja and eot_tokens: what chat_template entries
  // that name no chat_template take (Axolotl's rule). The default is Axolotl's tokenizer_default,
  // with llama3 where the tokenizer has no template (where Axolotl would stop).
  std::string chat_template = "tokenizer_default_fallback_llama3";
  bool chat_template_given = false;  // the config wrote it (Axolotl's cfg.chat_template is set)
  std::string chat_template_jinja;
  std::vector<std::string> eot_tokens;
  std::string chat_template_kwargs;  // a JSON object's text (DatasetSpec's); empty: none
  // The Jinja template the chat_template datasets train with (the top-level chat_template's when
  // they differ): what the saved tokenizer carries, as Axolotl sets the tokenizer's chat_template
  // to the one it trains with. Empty: the tokenizer keeps its own.
  std::string chat_template_source;
  std::vector<DatasetSpec> datasets;
  // Axolotl's test_datasets: the evaluation examples come from these (val_set_size then 0).
  std::vector<DatasetSpec> test_datasets;
  std::optional<PretrainingSource> pretraining;  // pretraining_dataset; then `datasets` is not read
  int64_t streaming_buffer_size = 10000;  // streaming_multipack_buffer_size (PretrainingSource's)
  // The stream is iterated in a dataloader worker (Axolotl's dataloader_num_workers > 0, by
  // default the node's GPU count): the shuffle and the packing's sampler draw as worker 0 does.
  bool stream_in_worker = false;
  std::string datasets_key = "datasets";  // the key `datasets` came from, for messages
  // Token cache directory. Empty in a config: output_dir/prepared, which the trainer fills in
  // before it calls io/ (io/ itself needs it set).
  std::string dataset_prepared_path;
  double val_set_size = 0.0;  // < 1: a fraction of the examples; >= 1: a count
  int64_t sequence_len = 512;  // Axolotl's default
  // Axolotl's eval_sequence_len: test_datasets' examples are kept (dropped, truncated or refused by
  // excess_length_strategy) at this length instead of sequence_len, which still cuts completion
  // chunks, as its strategies tokenize at sequence_len before its length filter. -1: unset.
  int64_t eval_sequence_len = -1;
  // The longest example kept: sequence_len, or for test_datasets' examples eval_sequence_len
  // (load_training_data sets it on their config).
  int64_t length_limit() const { return keeps_eval_length ? eval_sequence_len : sequence_len; }
  bool keeps_eval_length = false;
  // An unpacked eval row's longest: test_datasets' examples may reach eval_sequence_len.
  int64_t eval_row_len() const {
    return test_datasets.empty() || preference_pairs ? sequence_len : std::max(sequence_len, eval_sequence_len);
  }
  // Whether prompt tokens (alpaca's instruction, input_output's unlabelled text) take loss.
  bool train_on_inputs = false;
  // Examples longer than sequence_len: drop (Axolotl's default) | truncate | raise (a UserError
  // naming the first). Completion rows are split into sequence_len chunks instead, as Axolotl does.
  std::string excess_length_strategy = "drop";
  // Axolotl's min_sample_len: examples (and completion chunks) of fewer tokens are dropped with the
  // long ones; unset (< 0): 2, its default, below which nothing has a target.
  int64_t min_sample_len = -1;
  int64_t shortest_sample_len() const { return min_sample_len > 0 ? min_sample_len : 2; }
  // Axolotl's multipack (io/multipack.h): whole examples packed into bins, each bin one row whose
  // examples attend only within themselves, positions restarting; else one example per row. The
  // training rows are packed afresh each epoch from that epoch's order, as its sampler packs them.
  bool sample_packing = false;
  bool eval_sample_packing = true;  // the same for the eval rows (with sample_packing)
  // Axolotl's sample_packing_sequentially: next fit in the sampler's order, not first fit.
  bool sample_packing_sequentially = false;
  int64_t sample_packing_bin_size = 200;      // examples a bin holds at most (first fit)
  int64_t sample_packing_group_size = 100000;  // examples first fit packs at a time
  // Axolotl's multipack_real_batches: bins of sequence_len, micro_batch_size of them a
  // micro-batch; false: one bin of micro_batch_size x sequence_len a micro-batch (its default
  // with a varlen attention, flash or xformers; with sdp_attention true: config.cpp).
  bool multipack_real_batches = false;
  int64_t micro_batch_size = 1;  // the trainer's, set by it, as kl_block
  MultipackOptions multipack_options() const {
    return {multipack_real_batches ? sequence_len : micro_batch_size * sequence_len, sample_packing_bin_size,
            sample_packing_group_size, sample_packing_sequentially};
  }
  // The rows of a micro-batch of `batch`: with packing into micro-batch-sized bins, one (rl
  // packs nothing: a pair is a row).
  int64_t rows_per_batch(int64_t batch) const {
    return sample_packing && !preference_pairs && !multipack_real_batches ? 1 : batch;
  }
  // HF's group_by_length (without sample_packing or curriculum_sampling, as Axolotl): each
  // epoch's shuffled rows grouped by length (io/dataset.h, group_by_length).
  bool group_by_length = false;
  // Whether the training rows are length-grouped: not packed, and not preference pairs (Axolotl's
  // rl builder does not pass group_by_length on to the Trainer).
  bool groups_by_length() const { return group_by_length && !sample_packing && !preference_pairs; }
  bool pad_to_sequence_len = false;  // pad every row to sequence_len, not the micro-batch's longest
  // Axolotl's dataset_exact_deduplication: before the split, an example equal to an earlier one
  // of the merged order (tokens and labels) is dropped (io/validation_split.h).
  bool exact_deduplication = false;
  // Preference training (the config's rl): every dataset is a preference one (io/preference.h),
  // each pair two examples, chosen then rejected, that share one row (their own attention spans).
  bool preference_pairs = false;
  // Token classification (process_reward_model): every example's labels are its tokens' own
  // classes, each a token's target as it stands (RowLayout::token_labels).
  bool token_labels = false;
  // TRL 1.9's tokenizing of pairs: its DPOTrainer's (rl: dpo, ipo; io/preference.h), or the
  // tokenize_row its CPO and ORPO trainers share (rl: simpo, orpo; io/orpo.h).
  enum class PairTokenizing { dpo, tokenize_row } pair_tokenizing = PairTokenizing::dpo;
  // rl: kto (io/kto.h), with preference_pairs: every dataset a KTO one, cached as a prompt and a
  // completion per row; a row then holds its prompt with its completion and, for TRL's KL
  // estimate, with the completion of another row of its block of kl_block rows (the
  // micro-batch: the trainer sets it). Rows train in one fixed order (TRL's SequentialSampler):
  // the merged datasets' (merged_shuffled).
  bool unpaired_preferences = false;
  int64_t kl_block = 2, eval_kl_block = 2;  // the validation rows' blocks: the eval micro-batch
  // Axolotl's curriculum_sampling: training rows in one fixed order every epoch (its
  // SequentialSampler) instead of a fresh shuffle per epoch: the merged datasets' order
  // (merged_shuffled).
  bool curriculum_sampling = false;
  bool shuffle_merged_datasets = true;
  // Whether the merged datasets are shuffled, as Axolotl's merge_datasets leaves them: with
  // shuffle_merged_datasets, except a single dataset under curriculum_sampling, which keeps its
  // own order; shuffled in HF's Dataset.shuffle(seed) order (numpy_permutation). Unshuffled, the
  // merged order is the datasets' own (files in `datasets` order, rows in file order). Either
  // way the validation examples are its last ones (train_test_split runs with shuffle=False).
  bool merged_shuffled() const { return merge_of_shuffled(datasets.size()); }
  bool merge_of_shuffled(size_t count) const {  // the same for `count` datasets (test_datasets')
    return shuffle_merged_datasets && (count > 1 || !curriculum_sampling);
  }
  // Axolotl's shuffle_before_merging_datasets: with more than one dataset, each one's examples
  // (pairs, rows of KTO) are shuffled as Dataset.shuffle(seed) before they are merged, so that
  // the merged order, unshuffled (shuffle_merged_datasets false), is the datasets in turn, each
  // shuffled.
  // The token cache holds them in that order.
  bool shuffle_before_merging_datasets = false;
  bool shuffles_before_merging() const {
    return shuffle_before_merging_datasets && datasets.size() > 1;
  }
  // Axolotl's dataset_shard_num / dataset_shard_idx (SFT): only shard shard_idx of shard_num
  // contiguous shards of the merged data trains and validates (HF's Dataset.shard), before
  // deduplication and the validation split; test_datasets are sharded alike. -1: unset.
  int64_t shard_num = -1, shard_idx = -1;
  // HF's dataloader_drop_last: each epoch's last training rows that fill no whole micro-batch on
  // every rank are dropped; else served as torch and accelerate serve them (io/dataset.h,
  // DataLoader). Packed rows are always dropped so, as Axolotl's multipack sampler does. Unset is
  // not false: Axolotl then sets it for the eval loader with sample_packing and eval_sample_packing
  // false, and its step count reads only the key as given (train/step_plan.cpp).
  // Preference training keeps them: Axolotl's rl builder does not pass the key on (the eval loader
  // too).
  std::optional<bool> dataloader_drop_last;
  bool drops_last_train_rows() const {
    return (dataloader_drop_last.value_or(false) && !preference_pairs) || sample_packing;
  }
  // The eval loader drops its last, smaller batch with the key (or Axolotl's default above), and
  // when packed: its multipack sampler drops a last batch of fewer than micro_batch_size bins.
  bool drops_last_eval_rows() const {
    const bool packed = sample_packing && eval_sample_packing;
    return packed || (!preference_pairs && dataloader_drop_last.value_or(sample_packing && !eval_sample_packing));
  }
  // Axolotl's use_pose (io/pose.h): the training examples' position ids skip ahead, drawn once
  // from the seed; the validation examples' too unless eval_sample_packing is false (as Axolotl,
  // which maps them when that key is not false). Not with sample_packing or preference pairs.
  bool use_pose = false;
  PoseConfig pose;
};

}  // namespace llm
