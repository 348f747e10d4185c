// defines: pretraining_rows, check_pretraining (Axolotl's pretraining_dataset and the streaming
// keys beside it: io/pretraining.h serves the texts)
#include "train/config_field_builders.h"
#include "train/config_fields.h"

namespace llm {
using namespace field_builders;

namespace {

const char* const kEntry = "a dataset path, or a list of {path, name, split, data_files, text_column, type, skip}";

// Axolotl's PretrainingDataset entry: read_dataset_entry's keys, and its own (text_column,
// type pretrain or completion, skip, trust_remote_code).
void read_pretraining_dataset(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  if (!(n.IsScalar() || (n.IsSequence() && n.size() > 0 && n[0].IsMap()))) fail(w, kEntry, describe(n));
  YAML::Node entry = n.IsScalar() ? YAML::Node(YAML::NodeType::Map) : n[0];
  if (n.IsScalar()) entry["path"] = n.Scalar();
  const Where at = n.IsScalar() ? w : w.child("[0]", n[0]);
  PretrainingSource source;
  const std::set<std::string> own = {"text_column", "type", "skip", "trust_remote_code"};
  for (const std::string& key : own) {
    const YAML::Node v = entry[key];
    if (!v || v.IsNull()) continue;
    const Where wk = at.child("." + key, v);
    if (key == "text_column") source.text_column = read_string(v, wk);
    else if (key == "type") source.type = read_string(v, wk);
    else if (key == "skip") source.skip = read_int(v, wk, 0, kNoMax);
    else read_bool(v, wk);  // trust_remote_code: no dataset script runs here either way
  }
  source.spec = read_dataset_entry(ctx, entry, at, own);
  if (source.spec.split != "train")
    fail(at.child(".split", entry["split"]), "train (a stream has no slices)", source.spec.split);
  source.spec.type = "completion";  // the texts are read as completion rows (check_pretraining picks the column)
  if (n.IsSequence() && n.size() > 1)
    ctx.config.adjustments.push_back("pretraining_dataset: only its first entry is read, as Axolotl reads it");
  ctx.config.data.pretraining = source;
}

std::string write_pretraining_dataset(const TrainConfig& c) {
  if (!c.data.pretraining) return "";
  const PretrainingSource& s = *c.data.pretraining;
  return "\n  - path: " + yaml_string(s.spec.path) + "\n    type: " + yaml_string(s.type) +
         "\n    text_column: " + yaml_string(s.text_column) + "\n    skip: " + std::to_string(s.skip) +
         (s.spec.data_files.empty() ? "" : "\n    data_files: " + yaml_list(s.spec.data_files));
}

}  // namespace

std::vector<ConfigField> pretraining_rows(const char* section) {
  return {
      {"pretraining_dataset", section, kEntry,
       "train on one dataset's texts as Axolotl streams them (a shuffle buffer each epoch; rows of BOS + text "
       "cut at sequence_len - 2, or with sample_packing overlapping windows packed per buffer); needs max_steps",
       read_pretraining_dataset, write_pretraining_dataset},
      flag("streaming", section, MEMBER(streaming), "Axolotl's explicit switch for pretraining_dataset's stream"),
      integer("streaming_multipack_buffer_size", section, MEMBER(data.streaming_buffer_size), 1, kNoMax,
              "pretraining_dataset's shuffle buffer and map batch, in texts"),
      // Axolotl's deprecated name, which its validator copies into streaming_multipack_buffer_size
      // (a saved config writes that name).
      {"pretrain_multipack_buffer_size", section, "an integer >= 1", "streaming_multipack_buffer_size's deprecated name",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) {
         ctx.config.data.streaming_buffer_size = read_int(n, w, 1, kNoMax);
       },
       nullptr},
      flag("pretraining_sample_concatenation", section, MEMBER(pretraining_sample_concatenation),
           "without sample_packing, Axolotl's concatenated rows (not built: refused when true)"),
      flag("pretrain_multipack_attn", section, MEMBER(pretrain_multipack_attn),
           "packed pretraining windows attend only within themselves, positions restarting (false: a bin is one causal "
           "sequence)"),
      integer("dataloader_num_workers", section, MEMBER(dataloader_num_workers), 0, kNoMax,
              "a stream's dataloader workers (any: it is iterated as worker 0 iterates it; unset with "
              "dataloader_pin_memory and dataloader_prefetch_factor: the node's GPU count, as Axolotl)"),
      {"dataloader_pin_memory", section, "true or false", "read for Axolotl's default of dataloader_num_workers",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) { ctx.config.dataloader_pin_memory = read_bool(n, w); },
       [](const TrainConfig& c) {
         return c.dataloader_pin_memory < 0 ? std::string() : c.dataloader_pin_memory ? "true" : "false";
       }},
      integer("dataloader_prefetch_factor", section, MEMBER(dataloader_prefetch_factor), 1, kNoMax,
              "read for Axolotl's default of dataloader_num_workers"),
  };
}

void check_pretraining(TrainConfig& c, const GivenKeys& keys) {
  const auto at = keys.at;
  if (!c.data.pretraining) {
    if (c.streaming)
      fail(at("streaming"), "pretraining_dataset with it (streamed `datasets` are not built: they are read whole)",
           "true");
    return;
  }
  const Where w = at("pretraining_dataset");
  if (c.max_steps <= 0)
    fail(w, "max_steps with it (a stream has no length to count steps by, as Axolotl requires)", "no max_steps");
  if (c.data.val_set_size != 0)
    fail(at("val_set_size"), "0 with pretraining_dataset (test_datasets are its eval set, as Axolotl requires)",
         yaml_number(c.data.val_set_size));
  if (!c.rl.empty()) fail(at("rl"), "no rl with pretraining_dataset (its texts are not preference pairs)", c.rl);
  if (c.data.exact_deduplication)
    fail(at("dataset_exact_deduplication"), "false with pretraining_dataset (Axolotl has no deduplication of a stream)",
         "true");
  if (c.data.use_pose) fail(at("use_pose"), "false with pretraining_dataset (PoSE is not applied to a stream)", "true");
  if (c.pretraining_sample_concatenation && !c.data.sample_packing)
    fail(at("pretraining_sample_concatenation"),
         "false or unset without sample_packing (Axolotl's concatenated rows mask the padding between texts, which "
         "is not built; sample_packing packs the texts instead)", "true");
  if (c.data.sample_packing && c.data.sequence_len < 4)
    fail(at("sequence_len"), "at least 4 with pretraining_dataset and sample_packing (the tokenizer's windows need "
         "a stride below their width)", std::to_string(c.data.sequence_len));
  if (!c.data.datasets.empty())
    c.adjustments.push_back("datasets: not read, as pretraining_dataset's texts train (as Axolotl)");
  if (c.data.group_by_length || c.data.curriculum_sampling)
    c.adjustments.push_back("group_by_length and curriculum_sampling: a stream has no sampler, as in Axolotl");
  PretrainingSource& source = *c.data.pretraining;
  source.buffer_size = c.data.streaming_buffer_size;
  source.multipack_attn = c.pretrain_multipack_attn;
  // Packed, the dataset's type tokenizes (Axolotl's get_dataset_wrapper): pretrain's windows, or
  // completion's strategy, which reads "text"; unpacked, encode_streaming reads text_column
  // whatever the type.
  source.completion = c.data.sample_packing && source.type == "completion";
  if (c.data.sample_packing && source.type != "pretrain" && source.type != "completion")
    fail(at("pretraining_dataset"), "type pretrain or completion with sample_packing (other types' strategies "
         "on a stream are not built)", source.type);
  source.spec.field = source.completion ? "text" : source.text_column;
  // A stream packs one bin of micro_batch_size x sequence_len a micro-batch whatever
  // multipack_real_batches says (Axolotl's encode_packed_streaming sets micro_batch_size to 1).
  if (c.data.sample_packing) c.data.multipack_real_batches = false;
}

}  // namespace llm
