// defines: read_datasets, write_datasets (the `datasets:` list and Axolotl's per-dataset keys)
#include <algorithm>
#include <filesystem>
#include <regex>
#include <tuple>

#include "engine/user_error.h"
#include "io/bradley_terry.h"
#include "io/chat_template.h"
#include "io/dataset_directory.h"
#include "io/dataset_split.h"
#include "io/hf_hub_cache.h"
#include "io/kto.h"
#include "io/orpo.h"
#include "io/preference.h"
#include "io/stepwise_supervised.h"
#include "io/user_defined.h"
#include "train/config_fields.h"
#include "train/hub_dataset_configs.h"

namespace llm {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string>& dataset_types() {
  static const std::vector<std::string> types = [] {
    std::vector<std::string> t = {"completion", "alpaca", "chat_template", "input_output", "pretokenized", kBradleyTerryType,
                                  kStepwiseSupervisedType};
    t.insert(t.end(), preference_types().begin(), preference_types().end());
    t.insert(t.end(), orpo_types().begin(), orpo_types().end());
    for (const std::string& kto : kto_types())  // most share a DPO type's name
      if (std::find(t.begin(), t.end(), kto) == t.end()) t.push_back(kto);
    // Axolotl's short names under rl: llama3 for llama3.default, passthrough, ... (config.cpp)
    for (const std::string& rl : std::vector<std::string>(t)) {
      const std::string bare = rl.substr(0, rl.size() - std::string(".default").size());
      if (rl.size() > 8 && rl.compare(rl.size() - 8, 8, ".default") == 0 && bare != "user_defined" &&
          std::find(t.begin(), t.end(), bare) == t.end())
        t.push_back(bare);
    }
    t.erase(std::remove(t.begin(), t.end(), "user_defined.default"), t.end());  // a type map, never a name
    return t;
  }();
  return types;
}

// Axolotl's message_property_mappings {role: <field>, content: <field>}.
void read_mappings(DatasetSpec& spec, const YAML::Node& n, const Where& w, std::set<std::string>& unknown) {
  for_fields(n, w, "a map {role, content}", [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    if (key == "role" || key == "content") spec.message_property_mappings[key] = read_string(v, wk);
    else unknown.insert(wk.key);
  });
}

void read_roles(DatasetSpec& spec, const YAML::Node& n, const Where& w) {
  spec.roles.clear();
  for_fields(n, w, "a map of role -> list of names",
             [&](const std::string& key, const YAML::Node& v, const Where& wk) {
               spec.roles[key] = read_string_list(v, wk);
             });
}

// Axolotl's user-defined formats, `type:` as a map: its instruction keys (io/user_defined.h) make
// user_defined, rl's keys (io/preference_formats.h) user_defined.default; field_system is both's.
// A map of the one kind holding a key of the other is refused; each format may name only its fields.
void read_user_defined(DatasetSpec& spec, const YAML::Node& n, const Where& w) {
  UserDefinedFormat& f = spec.user_defined;
  PreferenceFormat& p = spec.preference_format;
  const std::vector<std::pair<const char*, std::string*>> instruction = {
      {"system_prompt", &f.system_prompt},     {"field_instruction", &f.field_instruction},
      {"field_input", &f.field_input},         {"field_output", &f.field_output},
      {"format", &f.format},                   {"no_input_format", &f.no_input_format},
      {"system_format", &f.system_format}};
  const std::vector<std::pair<const char*, std::string*>> preference = {
      {"field_prompt", &p.field_prompt},       {"field_chosen", &p.field_chosen},
      {"field_rejected", &p.field_rejected},   {"field_completion", &p.field_completion},
      {"field_label", &p.field_label},         {"prompt_format", &p.prompt_format},
      {"chosen_format", &p.chosen_format},     {"rejected_format", &p.rejected_format},
      {"completion_format", &p.completion_format}};
  std::string names = "field_system";
  for (const auto* keys : {&instruction, &preference})
    for (const auto& [name, member] : *keys) names += ", " + std::string(name);
  std::set<const void*> kinds;  // which key lists the map used
  for_fields(n, w, "a map of " + names, [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    // rl's formats may be '' (Axolotl's `if not prompt_format`: the default)
    const bool may_be_empty = key.size() > 7 && key.compare(key.size() - 7, 7, "_format") == 0 && key != "system_format";
    const std::string value = v.IsNull()                    ? std::string()
                              : may_be_empty && v.IsScalar() ? v.Scalar()
                                                             : read_string(v, wk);
    if (key == "field_system") {
      f.field_system = p.field_system = value;
      return;
    }
    for (const auto* keys : {&instruction, &preference})
      for (const auto& [name, member] : *keys)
        if (key == name) {
          *member = value;
          kinds.insert(keys);
          return;
        }
    fail(wk, "one of " + names + " (Axolotl's user-defined formats)", "'" + key + "'");
  });
  if (kinds.size() > 1)
    fail(w, "the keys of one user-defined format: field_instruction, format, ... (instructions) or field_prompt, "
            "prompt_format, ... (rl's preference rows)", "both kinds");
  spec.type = kinds.count(&preference) ? "user_defined.default" : "user_defined";
  const std::tuple<const char*, const std::string*, std::vector<std::string>> formats[] = {
      {"format", &f.format, {"instruction", "input"}},
      {"no_input_format", &f.no_input_format, {"instruction"}},
      {"system_format", &f.system_format, {"system"}},
      {"prompt_format", &p.prompt_format, {"prompt", "system"}},
      {"chosen_format", &p.chosen_format, {"chosen"}},
      {"rejected_format", &p.rejected_format, {"rejected"}},
      {"completion_format", &p.completion_format, {"completion"}}};
  for (const auto& [name, text, allowed] : formats)
    if (std::optional<std::string> problem = format_problem(*text, allowed))
      fail(w.child(std::string(".") + name, n[name]), "a Python format string of " + join(allowed), *problem);
}

// io's answer for the entry at `w`: its one-line refusal (naming the directory) led by the key.
template <typename Read>
auto at_key(const Where& w, Read read) {
  try {
    return read();
  } catch (const UserError& e) {
    throw UserError(w.str() + ": " + e.what());
  }
}

// Axolotl's data_files, each resolved against the dataset's directory as HF resolves them in a hub
// repo: a file inside it, or a glob pattern (`data/train-*.jsonl`, `**/*.parquet`) expanded in its
// place to the files it matches, sorted, as HF's resolve_pattern (one matching none is refused). A hub dataset's never
// climb out of its snapshot. A local directory's may also name a file it does not hold, as Axolotl
// hands them to HF's loader for a local directory: beside the config or the working directory,
// or an absolute path, kept as an absolute path.
std::vector<std::string> resolve_data_files(const ReadContext& ctx, const std::string& dir, bool local,
                                            const std::vector<std::string>& given, const Where& w) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const std::string& f : given) {
    const bool inside = stays_inside(f);
    if (inside && has_glob_magic(f)) {
      const std::vector<std::string> matched = at_key(w, [&] { return resolve_data_pattern(dir, f, false); });
      if (matched.empty()) fail(w, "data_files patterns that match files of " + dir, "'" + f + "', which matches none");
      files.insert(files.end(), matched.begin(), matched.end());
    } else if (local && !(inside && fs::is_regular_file(fs::path(dir) / f, ec)) &&
               fs::is_regular_file(ctx.beside_config(f), ec)) {
      files.push_back(fs::absolute(ctx.beside_config(f), ec).lexically_normal().string());
    } else if (!inside && !local) {
      fail(w, "paths inside the dataset's directory", "'" + f + "'");
    } else {
      files.push_back(f);  // (a missing one is named when the data is read)
    }
  }
  return files;
}

// The split Axolotl takes of a directory read without data_files (a DatasetDict): the entry's
// `split` when it names one, else train for `datasets` and test for `test_datasets`.
struct SplitChoice {
  std::string name;
  bool asked;  // named by the entry's `split`
};

// The files of the chosen split of a directory (relative to it) become data_files, and `split`
// the slice of their rows ("test[:10]" -> "train[:10]"), as HF reads data_files: one split, train.
void take_split_files(std::vector<std::string> files, DatasetSpec& spec) {
  spec.data_files = std::move(files);
  const size_t slice = spec.split.find('[');
  spec.split = "train" + (slice == std::string::npos ? std::string() : spec.split.substr(slice));
}

// io's directory_split_files for the entry at `w`. False: no data file
// HF's datasets reads (llm_train's own reading of text documents).
bool take_directory_split(const std::string& dir, const SplitChoice& split, const Where& w, DatasetSpec& spec) {
  const std::optional<std::vector<std::string>> files =
      at_key(w, [&] { return directory_split_files(dir, split.name, split.asked); });
  if (!files) return false;
  std::vector<std::string> relative;
  for (const std::string& f : *files) relative.push_back(fs::path(f).lexically_relative(dir).generic_string());
  take_split_files(std::move(relative), spec);
  return true;
}

// The entry's `name` (HF's config name) given at `w`: the files of the chosen split of that
// config, from the `configs:` its directory's README.md lists, become data_files. Returns false,
// leaving them to the caller, when the README lists no configs and no name other than "default"
// is asked.
bool take_config_files(const std::string& dir, const std::string& name, const SplitChoice& split, const Where& w,
                       DatasetSpec& spec) {
  std::vector<HubDatasetConfig> configs;
  try {
    configs = hub_dataset_configs(dir);
  } catch (const std::runtime_error& e) {
    fail(w, "a dataset whose README.md lists its configs as HF's datasets reads them", e.what());
  }
  if (configs.empty() && (name.empty() || name == "default")) return false;
  std::string why;
  const HubDatasetConfig* config = choose_hub_dataset_config(configs, name, why);
  if (!config)
    fail(w, name.empty() ? "a config name (`name:`) for a dataset of several configs" : "a config the dataset has",
         (name.empty() ? std::string("none") : "'" + name + "'") + "; " + dir + " has " + why);
  // Its data_files resolve in its data_dir; without data_files, its (or the whole directory's)
  // splits are found as for a directory.
  const std::string data_dir = (fs::path(dir) / config->data_dir).lexically_normal().string();
  const auto under_data_dir = [&](std::vector<std::string>& files) {
    if (!config->data_dir.empty())
      for (std::string& f : files) f = (fs::path(config->data_dir) / f).lexically_normal().generic_string();
  };
  if (config->split_files.empty()) {
    if (!take_directory_split(data_dir, split, w, spec))
      fail(w, "a config whose directory holds data files", "config '" + config->name + "' of " + dir + ", whose " +
           (config->data_dir.empty() ? std::string("directory") : config->data_dir) + " holds none HF's datasets reads");
    under_data_dir(spec.data_files);
    return true;
  }
  std::string names;
  for (const auto& [split_name, patterns] : config->split_files) {
    if (split_name == split.name) {
      // HF's DataFilesPatternsList.resolve: each pattern's files in turn, sorted, repeats kept; a
      // pattern without wildcards must name a data file.
      std::vector<std::string> files;
      for (const std::string& pattern : patterns) {
        const std::vector<std::string> matched = at_key(w, [&] {
          return stays_inside(pattern) ? resolve_data_pattern(data_dir, pattern, true) : std::vector<std::string>();
        });
        if (matched.empty() && !has_glob_magic(pattern))
          fail(w, "data files the config names", "config '" + config->name + "' of " + dir + ", whose '" + pattern +
               "' is " + (stays_inside(pattern) ? "no data file there" : "outside the dataset's directory"));
        files.insert(files.end(), matched.begin(), matched.end());
      }
      under_data_dir(files);
      take_split_files(std::move(files), spec);
      if (spec.data_files.empty())
        fail(w, "a config with " + split.name + " files", "config '" + config->name + "' of " + dir + ", whose " +
             split.name + " patterns match none");
      return true;
    }
    names += (names.empty() ? "" : ", ") + split_name;
  }
  fail(w, split.asked ? "a split the config has" : "a config with a " + split.name + " split (or a split: naming one)",
       (split.asked ? "'" + split.name + "'; " : std::string()) + "config '" + config->name + "' of " + dir +
           " has splits " + names);
}

// The entry's path: local (beside the config first), else an org/name hub id resolved in the
// local HF cache at `revision`. Without data_files, a directory's (or the snapshot's) files of the
// chosen split become data_files: those of config `name` when its README lists configs, else
// those HF's datasets finds (io/dataset_directory.h).
std::string resolve_path(const std::string& given, const std::string& revision, const std::string& name,
                         const SplitChoice& split, const Where& name_where, DatasetSpec& spec, const ReadContext& ctx,
                         const YAML::Node& node, const Where& w) {
  const std::string local = ctx.beside_config(given);
  std::error_code ec;
  if (fs::exists(local, ec)) {
    if (!name.empty() && !fs::is_directory(local, ec))
      fail(name_where, "a config of a dataset directory (a file has none)", "'" + name + "' for " + local);
    // A directory's card picks its files as a snapshot's does (HF reads a local dataset's
    // README.md configs too: a git clone of a hub dataset repo): the named config, else the default.
    if (spec.data_files.empty() && fs::is_directory(local, ec) && !take_config_files(local, name, split, name_where, spec))
      take_directory_split(local, split, w, spec);
    return local;
  }
  // A name ending in a data file's extension (data/train.jsonl) is a local file, not a hub id.
  static const std::regex kDataFile(R"(.*\.(jsonl?|parquet|arrow|csv|tsv|txt)(\.(gz|zst))?)", std::regex::icase);
  if (!looks_like_hub_id(given) || std::regex_match(given, kDataFile))
    fail(w, fs::path(given).is_absolute()
                ? "an existing file or directory"
                : "an existing file or directory (looked for beside the config, then in the working directory)",
         describe(node));
  const std::optional<std::string> snapshot = find_hub_snapshot(given, HubRepoKind::dataset, revision);
  if (!snapshot)
    fail(w, "an existing file or directory, or a hub dataset in the local HF cache",
         "'" + given + "' at revision " + revision + ", neither; " + hub_download_hint(given, HubRepoKind::dataset));
  if (spec.data_files.empty() && !take_config_files(*snapshot, name, split, name_where, spec) &&
      !take_directory_split(*snapshot, split, w, spec))
    fail(w, "a hub dataset with data files HF's datasets reads (JSON, JSONL, Parquet, Arrow, CSV or text)",
         "'" + given + "', whose snapshot holds none");
  return *snapshot;
}

// `default_split`: the split Axolotl takes of a directory when the entry names none (test for
// test_datasets' entries, else train).
DatasetSpec read_entry(ReadContext& ctx, const YAML::Node& n, const Where& wi, const std::set<std::string>& own_keys,
                       const std::string& default_split) {
  DatasetSpec spec;
  spec.chat_template.clear();  // not given: the top-level chat_template, filled in by validate()
  spec.type.clear();           // not given: completion, or under rl passthrough (validate())
  std::string given_path, revision = "main", config_name;
  YAML::Node path_node;
  Where path_where = wi, name_where = wi, data_files_where = wi, split_where = wi;
  bool split_given = false;
  std::vector<std::string> stepwise_keys;  // given; unused by other types
  for_fields(n, wi, "a map {path, type, ...}",
             [&](const std::string& key, const YAML::Node& v, const Where& wk) {
               if (own_keys.count(key)) {
                 // read by the caller
               } else if (key == "path") {
                 given_path = read_string(v, wk);
                 path_node = v;
                 path_where = wk;
               } else if (key == "data_files") {
                 spec.data_files = read_string_list(v, wk);
                 data_files_where = wk;
               } else if (key == "revision") {  // of a hub dataset
                 revision = read_string(v, wk);
               } else if (key == "name") {  // HF's config name (a subset)
                 if (!v.IsNull()) config_name = read_string(v, wk);
                 name_where = wk;
               } else if (key == "type") {
                 if (v.IsMap()) read_user_defined(spec, v, wk);
                 else if (v.IsScalar() && v.Scalar().rfind("sharegpt", 0) == 0)  // Axolotl's refusal, with the way over
                   fail(wk, "chat_template, which Axolotl replaced sharegpt with (ShareGPT rows: field_messages: "
                            "conversations, message_property_mappings: {role: from, content: value}; human and gpt "
                            "are the default user and assistant roles)", describe(v));
                 else if (!v.IsNull()) spec.type = read_choice(v, wk, dataset_types());
               } else if (key == "split") {
                 spec.split = read_string(v, wk);
                 if (!parse_split(spec.split))
                   fail(wk, "a split or a slice of it in HF's syntax, e.g. train, test, train[:20%] or train[100:]",
                        describe(v));
                 split_given = true;
                 split_where = wk;
               } else if (key == "field") {
                 spec.field = read_string(v, wk);
               } else if (key == "ds_type") {  // the loader Axolotl hands a local file to
                 if (!v.IsNull()) spec.ds_type = read_choice(v, wk, {"json", "parquet", "arrow", "csv", "text"});
               } else if (key == "chat_template") {
                 spec.chat_template = read_choice(v, wk, chat_template_choices());
               } else if (key == "chat_template_jinja") {
                 spec.chat_template_jinja = chat_template_jinja_of(ctx, v, wk);
               } else if (key == "field_messages") {
                 spec.field_messages = read_string(v, wk);
               } else if (key == "field_chosen") {
                 spec.field_chosen = read_string(v, wk);
               } else if (key == "field_rejected") {
                 spec.field_rejected = read_string(v, wk);
               } else if (key == "field_tools") {
                 spec.field_tools = read_string(v, wk);
               } else if (key == "message_field_training") {
                 spec.message_field_training = read_string(v, wk);
               } else if (key == "message_field_training_detail") {
                 spec.message_field_training_detail = read_string(v, wk);
               } else if (key == "drop_system_message") {
                 spec.drop_system_message = read_bool(v, wk);
               } else if (key == "message_property_mappings") {
                 read_mappings(spec, v, wk, ctx.unknown);
               } else if (key == "message_field_role") {  // Axolotl's older spellings
                 spec.message_property_mappings["role"] = read_string(v, wk);
               } else if (key == "message_field_content") {
                 spec.message_property_mappings["content"] = read_string(v, wk);
               } else if (key == "roles") {
                 read_roles(spec, v, wk);
               } else if (key == "roles_to_train") {
                 spec.roles_to_train = read_string_list(v, wk);
               } else if (key == "train_on_eos") {
                 spec.train_on_eos = read_choice(v, wk, {"turn", "last", "all", "none"});
               } else if (key == "train_on_eot") {
                 spec.train_on_eot = read_choice(v, wk, {"turn", "last", "all", "none"});
               } else if (key == "step_separator" || key == "max_completion_length" ||
                          key == "train_on_last_step_only") {  // stepwise_supervised's (null: its default)
                 stepwise_keys.push_back(wk.key);
                 if (v.IsNull()) return;
                 if (key == "step_separator") spec.step_separator = read_string(v, wk);
                 else if (key == "max_completion_length") spec.max_completion_length = read_int(v, wk, 0);
                 else spec.train_on_last_step_only = read_bool(v, wk);
               } else if ((key == "shards" || key == "shards_idx" || key == "preprocess_shards") && !v.IsNull()) {
                 // Axolotl keeps shuffle(seed).shard(shards, shards_idx) of the entry's rows: other
                 // rows than all of them, trained here in silence before 2026-12-06.
                 fail(wk, "none: a dataset entry's own shards are not built (dataset_shard_num and dataset_shard_idx "
                          "shard the merged examples)",
                      "set");
               } else {
                 ctx.unknown.insert(wk.key);
               }
             });
  if (given_path.empty()) fail(wi, "a path in the dataset entry", "none");
  if (spec.type != kStepwiseSupervisedType) ctx.unknown.insert(stepwise_keys.begin(), stepwise_keys.end());
  const bool had_data_files = !spec.data_files.empty();
  const SplitChoice split{split_given ? parse_split(spec.split)->split : default_split, split_given};
  spec.path = resolve_path(given_path, revision, config_name, split, name_where, spec, ctx, path_node, path_where);
  std::error_code ec;
  // A file, or the data_files the entry gave, HF reads as one split, train.
  if (parse_split(spec.split)->split != "train")
    fail(split_where, std::string("train or a slice of it (") +
                          (had_data_files ? "data_files are" : fs::is_directory(spec.path, ec) ? "a directory of text documents is" : "a file is") +
                          " one split, train)",
         "'" + spec.split + "'");
  if (!spec.data_files.empty() && !fs::is_directory(spec.path, ec))
    fail(path_where, "a directory, as data_files names files inside it", describe(path_node));
  const bool local = spec.path == ctx.beside_config(given_path);
  // Axolotl hands ds_type to HF's loader only for a local file or a local directory's data_files:
  // for a hub dataset, or a directory read without them, HF picks the loader by the files' names.
  if (!spec.ds_type.empty() && (!local || (!had_data_files && !spec.data_files.empty()))) {
    ctx.config.adjustments.push_back(wi.key + ".ds_type: unused for " +
                                     (local ? "a directory read without data_files" : "a hub dataset") +
                                     " (HF's datasets picks the loader by the files' names, as Axolotl calls it)");
    spec.ds_type.clear();
  }
  spec.data_files = resolve_data_files(ctx, spec.path, local, spec.data_files, data_files_where);
  return spec;
}

}  // namespace

namespace {

std::vector<DatasetSpec> read_list(ReadContext& ctx, const YAML::Node& n, const Where& w, const std::string& default_split) {
  const std::string expected = "a list of {path, type} entries";
  if (!n.IsSequence() || n.size() == 0) fail(w, expected, describe(n));
  std::vector<DatasetSpec> specs;
  for (size_t i = 0; i < n.size(); i++)
    specs.push_back(read_entry(ctx, n[i], w.child("[" + std::to_string(i) + "]", n[i]), {}, default_split));
  return specs;
}

std::string write_list(const std::vector<DatasetSpec>& specs) {
  std::string y;
  const auto list = yaml_list;
  for (const DatasetSpec& d : specs) {
    y += "\n  - path: " + yaml_string(d.path) + "\n    type: ";
    if (d.type == "user_defined") {
      const UserDefinedFormat& f = d.user_defined;
      y += "{system_prompt: " + yaml_string(f.system_prompt) + ", field_system: " + yaml_string(f.field_system) +
           ", field_instruction: " + yaml_string(f.field_instruction) + ", field_input: " + yaml_string(f.field_input) +
           ", field_output: " + yaml_string(f.field_output) + ", format: " + yaml_string(f.format) +
           ", no_input_format: " + yaml_string(f.no_input_format) + ", system_format: " + yaml_string(f.system_format) + "}";
    } else if (d.type == "user_defined.default") {
      const PreferenceFormat& p = d.preference_format;
      y += "{field_prompt: " + yaml_string(p.field_prompt) + ", field_system: " + yaml_string(p.field_system) +
           ", field_chosen: " + yaml_string(p.field_chosen) + ", field_rejected: " + yaml_string(p.field_rejected) +
           ", field_completion: " + yaml_string(p.field_completion) + ", field_label: " + yaml_string(p.field_label) +
           ", prompt_format: " + yaml_string(p.prompt_format) + ", chosen_format: " + yaml_string(p.chosen_format) +
           ", rejected_format: " + yaml_string(p.rejected_format) +
           ", completion_format: " + yaml_string(p.completion_format) + "}";
    } else {
      y += yaml_string(d.type);
    }
    if (!d.data_files.empty()) y += "\n    data_files: " + list(d.data_files);
    if (d.split != "train") y += "\n    split: " + yaml_string(d.split);
    if (d.field != "text") y += "\n    field: " + yaml_string(d.field);
    if (!d.ds_type.empty()) y += "\n    ds_type: " + d.ds_type;
    if (d.field_chosen != "chosen") y += "\n    field_chosen: " + yaml_string(d.field_chosen);
    if (d.field_rejected != "rejected") y += "\n    field_rejected: " + yaml_string(d.field_rejected);
    if (!renders_chat_template(d.type)) continue;
    y += "\n    chat_template: " + yaml_string(d.chat_template);
    if (!d.chat_template_jinja.empty()) y += "\n    chat_template_jinja: " + yaml_string(d.chat_template_jinja);
    y += "\n    field_messages: " + yaml_string(d.field_messages);
    if (d.field_tools != "tools") y += "\n    field_tools: " + yaml_string(d.field_tools);
    if (!d.message_field_training.empty()) y += "\n    message_field_training: " + yaml_string(d.message_field_training);
    if (!d.message_field_training_detail.empty())
      y += "\n    message_field_training_detail: " + yaml_string(d.message_field_training_detail);
    if (d.drop_system_message) y += "\n    drop_system_message: true";
    y += "\n    message_property_mappings: {role: " +
         yaml_string(d.message_property_mappings.at("role")) +
         ", content: " + yaml_string(d.message_property_mappings.at("content")) + "}";
    if (!d.roles.empty()) {
      std::string roles;
      for (const auto& [role, names] : d.roles)
        roles += (roles.empty() ? "" : ", ") + yaml_string(role) + ": " + list(names);
      y += "\n    roles: {" + roles + "}";
    }
    y += "\n    roles_to_train: " + list(d.roles_to_train);
    y += "\n    train_on_eos: " + yaml_string(d.train_on_eos);
    if (!d.train_on_eot.empty()) y += "\n    train_on_eot: " + yaml_string(d.train_on_eot);
  }
  return y;
}

}  // namespace

DatasetSpec read_dataset_entry(ReadContext& ctx, const YAML::Node& n, const Where& w,
                               const std::set<std::string>& own_keys) {
  return read_entry(ctx, n, w, own_keys, "train");
}

void read_datasets(ReadContext& ctx, const YAML::Node& n, const Where& w) { ctx.config.data.datasets = read_list(ctx, n, w, "train"); }
std::string write_datasets(const TrainConfig& c) { return write_list(c.data.datasets); }

void read_test_datasets(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  // Axolotl's SFT loader takes a DatasetDict's test split for them, its rl loader the train split.
  ctx.config.data.test_datasets = read_list(ctx, n, w, ctx.given_keys.given("rl") ? "train" : "test");
}
std::string write_test_datasets(const TrainConfig& c) { return write_list(c.data.test_datasets); }

}  // namespace llm
