// defines: sampling_rows, default_packing_keys, check_dataset_shards (the keys of which examples
// are used and how they are laid into rows and served: sharding, packing, ordering, deduplication
// and dataloader_drop_last; io/dataset.h)
#include "train/config_field_builders.h"
#include "train/config_fields.h"

namespace llm {
using namespace field_builders;

std::vector<ConfigField> sampling_rows(const char* data) {
  return {
      flag("sample_packing", data, MEMBER(data.sample_packing),
           "pack whole examples into bins of micro_batch_size x sequence_len, masked apart, afresh each epoch"),
      flag("eval_sample_packing", data, MEMBER(data.eval_sample_packing),
           "pack the eval examples too (with sample_packing)"),
      flag("sample_packing_sequentially", data, MEMBER(data.sample_packing_sequentially),
           "pack in the sampler's order by next fit, not first fit"),
      integer("sample_packing_bin_size", data, MEMBER(data.sample_packing_bin_size), 1, kNoMax,
              "examples a bin holds at most"),
      integer("sample_packing_group_size", data, MEMBER(data.sample_packing_group_size), 1, kNoMax,
              "examples first fit packs at a time"),
      flag("multipack_real_batches", data, MEMBER(data.multipack_real_batches),
           "bins of sequence_len, micro_batch_size of them a micro-batch (unset: true with sdp_attention only)"),
      flag("group_by_length", data, MEMBER(data.group_by_length),
           "serve rows of like length together, as HF's LengthGroupedSampler (not with sample_packing)"),
      flag("pad_to_sequence_len", data, MEMBER(data.pad_to_sequence_len),
           "pad every row to sequence_len (a packed one to its bin), not to the micro-batch's longest "
           "(unset: true with sample_packing)"),
      flag("dataset_exact_deduplication", data, MEMBER(data.exact_deduplication),
           "drop examples equal (tokens and labels) to an earlier one; eval ones equal to a training one too"),
      {"exact_deduplication", data, "true or false", "the name Axolotl's lora-1b-deduplicate-sft.yml gives it",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) { ctx.config.data.exact_deduplication = read_bool(n, w); },
       nullptr},
      flag("curriculum_sampling", data, MEMBER(data.curriculum_sampling),
           "train rows in one fixed order every epoch, not shuffled per epoch"),
      flag("shuffle_merged_datasets", data, MEMBER(data.shuffle_merged_datasets),
           "shuffle the merged datasets as HF's Dataset.shuffle(seed) (false, or one dataset under "
           "curriculum_sampling: their own order); the merged order's last examples validate"),
      flag("shuffle_before_merging_datasets", data, MEMBER(data.shuffle_before_merging_datasets),
           "shuffle each of several datasets as Dataset.shuffle(seed) before they are merged"),
      integer("dataset_shard_num", data, MEMBER(data.shard_num), 1, kNoMax,
              "keep one of this many contiguous shards of the merged datasets (with dataset_shard_idx)"),
      integer("dataset_shard_idx", data, MEMBER(data.shard_idx), 0, kNoMax,
              "which shard dataset_shard_num keeps, from 0"),
      flag("dataloader_drop_last", data, MEMBER(data.dataloader_drop_last),
           "drop each epoch's last rows that fill no whole micro-batch on every rank (unset: false, HF's, "
           "but true for the eval rows with sample_packing and eval_sample_packing false, as Axolotl; "
           "sample_packing always drops them, as Axolotl's multipack sampler)"),
  };
}

// Axolotl's defaults for packing keys left unset: multipack_real_batches true with sdpa or eager
// attention (not varlen: masked batches), else false; pad_to_sequence_len true with sample_packing
// (its validator sets it so, "to prevent memory leaks": every micro-batch one shape).
void default_packing_keys(TrainConfig& c, bool masked_batches, bool real_batches_given, bool padding_given) {
  if (!real_batches_given) c.data.multipack_real_batches = masked_batches;
  if (!padding_given && c.data.sample_packing) c.data.pad_to_sequence_len = true;
}

// Axolotl shards when both keys are set, and in its SFT loader only.
void check_dataset_shards(const TrainConfig& c, const Where& num, const Where& idx) {
  if ((c.data.shard_num > 0) != (c.data.shard_idx >= 0))
    fail(c.data.shard_num > 0 ? num : idx, "dataset_shard_num and dataset_shard_idx together",
         "one of them");
  if (c.data.shard_idx >= c.data.shard_num)
    fail(idx, "an index below dataset_shard_num, " + std::to_string(c.data.shard_num),
         std::to_string(c.data.shard_idx));
  if (!c.rl.empty())
    fail(num, "no rl (Axolotl's preference loader does not shard its datasets)", "rl: " + c.rl);
}

}  // namespace llm
