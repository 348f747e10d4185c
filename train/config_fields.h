// The config's field table (train/config_fields.cpp): one row per top-level YAML key, holding
// its name, section, expected value, meaning, reader and writer. Parsing, config_to_yaml, the
// unknown-keys warning, config_keys() and the round-trip test all walk this one table. Also the
// value readers the rows share (train/config_read.cpp). Internal to train/ and its tests.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "train/config.h"

namespace llm {

// Where a value came from, for messages: "<file>:<line>: <key>", or "<file>: --<key>" for a
// command-line override (its text has no line in the file).
struct Where {
  std::string file, key;
  int line = 0;  // 1-based; 0: unknown
  bool cli = false;

  std::string str() const;
  // A value nested in this one (a list item or a map field), located by its own YAML mark.
  Where child(const std::string& sub, const YAML::Node& node) const;
};

// Throws the one-line UserError "<where>: expected <expected>, got <got>".
[[noreturn]] void fail(const Where& w, const std::string& expected, const std::string& got);
std::string describe(const YAML::Node& n);  // what the user wrote, for the "got ..." half
std::string join(const std::vector<std::string>& items);  // "a, b, c"
std::string num(double v);                                 // %g

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kFloatMax = std::numeric_limits<float>::max();
// Upper bounds of the training sizes (the model's are in model/llama_config.h): far above any
// real run, small enough that steps, tokens and batch products stay inside int64.
constexpr int64_t kMaxBatch = int64_t(1) << 20;  // micro_batch_size, gradient_accumulation_steps
constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();
struct Range {
  double lo;
  bool lo_open;
  double hi;
  bool hi_open;
  std::string text() const;
  bool contains(double v) const;
};
const Range kPositive{0, true, kInf, true}, kNonNegative{0, false, kInf, true};
const Range kBeta{0, false, 1, true}, kUnit{0, false, 1, false}, kRatio{0, true, 1, false};
const Range kFinite{-kInf, true, kInf, true};

std::string read_string(const YAML::Node& n, const Where& w);
std::string integer_text(int64_t min, int64_t max);  // "an integer >= 1", "an integer in [1, 8]"
int64_t read_int(const YAML::Node& n, const Where& w, int64_t min, int64_t max = kNoMax);
double read_double(const YAML::Node& n, const Where& w, const Range& range);
// YAML 1.1's spellings too: Axolotl reads its configs with PyYAML, where yes/no/on/off are bools.
bool read_bool(const YAML::Node& n, const Where& w, const std::string& note = "");
std::string read_choice(const YAML::Node& n, const Where& w,
                        const std::vector<std::string>& allowed);
// A list of strings; a single string is a list of one.
std::vector<std::string> read_string_list(const YAML::Node& n, const Where& w);
// A regular expression the config gives (module names): at most kMaxPatternLength characters
// (std::regex compiles and matches recursively, so the bound bounds its depth) that std::regex
// compiles; else fail(w, expected, ...).
void check_pattern(const std::string& pattern, const Where& w, const std::string& expected);
// Calls visit(key, value, where) for each field of the map `n` that is not null.
using FieldVisitor = std::function<void(const std::string&, const YAML::Node&, const Where&)>;
void for_fields(const YAML::Node& n, const Where& w, const std::string& expected,
                const FieldVisitor& visit);

// A config's YAML text checked as Axolotl's yaml.safe_load reads it (no NUL byte, UTF-8, one
// document; a checkpoint's resolved config, whose paths are the filesystem's bytes, only the
// first), then loaded; UserError naming source's line on what fails.
YAML::Node read_config_yaml(const std::string& yaml_text, const std::string& source, bool resolved);

// YAML text that reads back exactly: the shortest decimal of a number, a string plain when it
// cannot be misread (else double-quoted; "" is null, unset).
std::string yaml_number(double v);
std::string yaml_number(float v);
std::string yaml_string(const std::string& s);
std::string yaml_list(const std::vector<std::string>& items);  // [a, b], each a yaml_string

// What a row's reader may touch besides the TrainConfig: the config file's directory for
// relative paths, the nested keys it does not use, and the attention choices, which validate()
// resolves across keys once every key is read.
// The top-level keys a config gave, for checks across keys in files of their own: whether a key
// was given (set, not null), and where it stands (its line when given).
struct GivenKeys {
  std::function<bool(const std::string&)> given;
  std::function<Where(const std::string&)> at;
  std::function<YAML::Node(const std::string&)> value;  // its YAML as written; null when not given
};

struct ReadContext {
  TrainConfig& config;
  std::string source;                 // the config file, for paths beside it
  std::set<std::string>& unknown;     // nested keys not used, e.g. "datasets[0].split"
  struct AttentionChoice {
    AttentionKind kind;
    Where where;
    std::string label;  // "flash_attention: true", for the message naming two choices
  };
  // By key: the boolean keys and attn_implementation that chose one.
  std::map<std::string, AttentionChoice> attention;
  // Axolotl's batch_size (micro_batch_size x gradient_accumulation_steps), given instead of the
  // accumulation: validate() derives that once every key is read. 0: not given.
  int64_t batch_size = 0;
  // The top-level keys given, for a row whose reading depends on a key read after it.
  GivenKeys given_keys;

  // As Axolotl's users expect of a config kept beside its files: a relative path that exists
  // beside the config is taken from there, else from the CWD; either found, it is made absolute
  // (a path found nowhere, such as a hub id, is returned as given).
  std::string beside_config(const std::string& path) const;
};

struct ConfigField {
  std::string name;
  const char* section;   // config_to_yaml's heading comment; rows of a section stand together
  std::string expected;  // the value it takes, as messages say it ("an integer >= 1")
  std::string meaning;   // one line
  std::function<void(ReadContext&, const YAML::Node&, const Where&)> read;
  // The value as YAML ("" is null: unset; a text starting with a newline is a block);
  // empty function: not written (another row carries the value).
  std::function<std::string(const TrainConfig&)> write;
  bool reads_null = false;  // a null is a value (HF's `rope_scaling: null`), not "unset"
};

// `bnb_config_kwargs:` (train/config_maps.cpp): Axolotl's extra BitsAndBytesConfig arguments for
// qlora; bnb_4bit_quant_type (nf4) and bnb_4bit_use_double_quant are read, the rest listed unused.
void read_bnb_config_kwargs(ReadContext& ctx, const YAML::Node& n, const Where& w);
std::string write_bnb_config_kwargs(const TrainConfig& c);
void read_lr_groups(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_unfrozen_parameters(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_lr_scheduler_kwargs(ReadContext& ctx, const YAML::Node& n, const Where& w);
// optim_args (train/config_optim_args.cpp): the arguments HF or Axolotl hand the optimizer, HF's
// string or a map.
void read_optim_args(ReadContext& ctx, const YAML::Node& n, const Where& w);
// optim_target_modules: a list of names or regular expressions (each compiled here), or all_linear.
void read_optim_target_modules(ReadContext& ctx, const YAML::Node& n, const Where& w);
std::string write_optim_args(const TrainConfig& c);
// The optimizer's keys (train/config_fields_optimizer.cpp): optimizer, optim_args, the Adam
// settings and weight_decay.
std::vector<ConfigField> optimizer_rows(const char* section);
// pretraining_dataset and the streaming keys (train/config_pretraining.cpp), and their rules
// against the rest (max_steps, no val_set_size, ...).
std::vector<ConfigField> pretraining_rows(const char* section);
void check_pretraining(TrainConfig& c, const GivenKeys& keys);
// One `datasets:` entry (train/config_datasets.cpp): its path resolved (a local file or directory,
// or a hub dataset in the local HF cache), split, data_files and the per-dataset keys; own_keys
// are left to the caller.
DatasetSpec read_dataset_entry(ReadContext& ctx, const YAML::Node& n, const Where& w,
                               const std::set<std::string>& own_keys = {});
void read_peft_layers(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_lora_target_modules(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_gradient_checkpointing(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_activation_offloading(ReadContext& ctx, const YAML::Node& n, const Where& w);
std::string write_lr_scheduler_kwargs(const TrainConfig& c);
// The schedule's keys across the others (train/config_scheduler.cpp): an lr_scheduler_kwargs
// argument the chosen schedule does not take (or one it needs missing), lr_quadratic_warmup
// without cosine, and what one_cycle does not combine with.
void check_scheduler(TrainConfig& c, const GivenKeys& keys);
std::string write_lr_groups(const TrainConfig& c);

// The keys naming a model's files (train/config_model_paths.cpp): a preset, a local directory or
// a hub id in the local HF cache at revision_of_model (read first: model_revision is its
// other name); lora_model_dir's hub id at main.
void read_revision(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_base_model(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_base_model_config(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_tokenizer_config(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_lora_model_dir(ReadContext& ctx, const YAML::Node& n, const Where& w);

// `datasets:` (train/config_datasets.cpp): the list of entries with Axolotl's per-dataset keys.
void read_datasets(ReadContext& ctx, const YAML::Node& n, const Where& w);
std::string write_datasets(const TrainConfig& c);
void read_test_datasets(ReadContext& ctx, const YAML::Node& n, const Where& w);  // the eval data
std::string write_test_datasets(const TrainConfig& c);

// The map-valued keys (train/config_maps.cpp): special_tokens, rope_scaling (HF's null is "none")
// and gradient_checkpointing_kwargs.
void read_special_tokens(ReadContext& ctx, const YAML::Node& n, const Where& w);
// chat_template_jinja (top-level or a dataset's): a .jinja file beside the config (its path) or
// the template itself, parsed now so that a syntax error names the key.
std::string chat_template_jinja_of(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_chat_template_jinja(ReadContext& ctx, const YAML::Node& n, const Where& w);
// chat_template_kwargs: a map, kept as a JSON object's text (DataConfig::chat_template_kwargs).
void read_chat_template_kwargs(ReadContext& ctx, const YAML::Node& n, const Where& w);
// Each chat_template dataset's eot_tokens and Jinja template (chat_template_source), from the
// tokenizer's own or chat_template_jinja; UserError naming the config when there is none.
void resolve_chat_templates(TrainConfig& c, bool chat_template_given);
// Axolotl's resolve_chat_template_str (its inference command's template): the top-level
// chat_template's Jinja source when the config gives one, else the first dataset's when it is of
// type chat_template; empty: none (the prompt is tokenized as it is, after BOS).
std::string inference_chat_template(const TrainConfig& c);
std::string write_special_tokens(const TrainConfig& c);
void read_added_tokens_overrides(ReadContext& ctx, const YAML::Node& n, const Where& w);
std::string write_added_tokens_overrides(const TrainConfig& c);
void read_rope_scaling(ReadContext& ctx, const YAML::Node& n, const Where& w);
std::string write_rope_scaling(const TrainConfig& c);
void read_checkpointing_kwargs(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_trl(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_model_quantization_config(ReadContext& ctx, const YAML::Node& n, const Where& w);
void read_dpo_loss_weights(ReadContext& ctx, const YAML::Node& n, const Where& w);
// Axolotl's defaults of multipack_real_batches and pad_to_sequence_len, when not given, once the
// attention is chosen: `masked_batches` when it packs through a block-diagonal mask, not a
// varlen kernel (train/config_sampling.cpp).
void default_packing_keys(TrainConfig& c, bool masked_batches, bool real_batches_given, bool padding_given);
// dataset_shard_num / _idx against each other and rl (train/config_sampling.cpp).
void check_dataset_shards(const TrainConfig& c, const Where& num, const Where& idx);
// The optimizer's keys across each other (train/config_optimizer.cpp): Axolotl's Adam defaults for
// its own optimizer classes, Muon's refusals, optim_args and the Trainer's groups left unused
// (into `unknown`), what ZeRO shards.
void resolve_optimizer(TrainConfig& c, const GivenKeys& keys, std::set<std::string>& unknown);
// rl's keys across the others (train/config_rl.cpp): datasets' types named as each trainer
// reads them (an untyped entry completion, or under rl passthrough), then check_preference:
// the types each trainer takes, each trainer's own keys, rl_beta from trl.beta, dpo_beta or
// orpo_alpha, and what preference pairs refuse.
void resolve_rl_dataset_types(TrainConfig& c, const GivenKeys& keys);
void check_preference(TrainConfig& c, const GivenKeys& keys, std::set<std::string>& unknown);
// reward_model and process_reward_model across the others (train/config_reward.cpp), after
// check_preference: their dataset types both ways, the classifier classes and label counts, what
// they refuse, and the model made a sequence (reward) or token (process reward) classifier.
void check_reward_models(TrainConfig& c, const GivenKeys& keys);
// transformers' classifier classes, which model_type may name with those two.
bool is_classifier_class(const std::string& model_type);
// LISA's keys (train/config_lisa.cpp), at the Wheres of lisa_n_layers and lisa_step_interval.
std::vector<ConfigField> lisa_rows(const char* section);
// Axolotl's Q-GaLore keys (train/config_qgalore.cpp) and their rules, from resolve_optimizer.
std::vector<ConfigField> qgalore_rows(const char* section);
void check_qgalore(const TrainConfig& c, const GivenKeys& keys);
void check_lisa(const TrainConfig& c, const Where& n_layers, const Where& interval);
// `llmcompressor:` (train/config_llmcompressor.cpp): its recipe's ConstantPruningModifier
// targets; check_llmcompressor refuses, at `w`, what sparse fine-tuning does not combine with.
void read_llmcompressor(ReadContext& ctx, const YAML::Node& n, const Where& w);
std::string write_llmcompressor(const TrainConfig& c);
void check_llmcompressor(const TrainConfig& c, const Where& w);
void check_fp8(const TrainConfig& c, const Where& w);  // fp8 against adapters and qat
// `diffusion:` (train/config_diffusion.cpp): the DiffusionPlugin's settings; diffusion_field_names,
// the older plugin's top-level spelling of its fields; check_diffusion refuses, at `w`, what
// diffusion training does not combine with.
std::vector<ConfigField> diffusion_rows(const char* section);
const std::vector<std::string>& diffusion_field_names();
void check_diffusion(const TrainConfig& c, const Where& w);
// `bf16` and `bfloat16` (train/config_precision.cpp): the keys, and check_bfloat16 refusing at `w`
// what keeps f32 master weights or changes weights outside AdamW.
std::vector<ConfigField> precision_rows(const char* section);
void resolve_bf16_full(TrainConfig& c);  // bf16: full, once the adapter is known
void check_bfloat16(const TrainConfig& c, const Where& w);
// `qat:` (train/config_qat.cpp): Axolotl's quantisation-aware training; check_qat refuses, at
// `w`, what it does not combine with and a group size the model's linear layers do not divide by.
void read_qat(ReadContext& ctx, const YAML::Node& n, const Where& w);
std::string write_qat(const TrainConfig& c);
void check_qat(const TrainConfig& c, const Where& w);
std::string write_dpo_loss_weights(const TrainConfig& c);

// The keys of several ranks (train/config_sharding.cpp): local_rank, Ray's, the all-reduce bucket,
// and ZeRO's: `deepspeed:` a ZeRO json, Axolotl's `fsdp:` and `fsdp_config:`, and `zero_stage:`;
// each of those sets zero_stage, validate() checks they agree.
std::vector<ConfigField> distributed_rows(const char* section);

// Axolotl's switches for its fused kernels (train/config_speed_only.cpp): each true one is kept in
// TrainConfig::speed_only_keys, for the start-up summary to name.
std::vector<ConfigField> speed_only_rows(const char* section);
// Axolotl's model_config: its entries that are fields llm_train reads at the top level, each with
// where it stands in model_config; a field llm_train does not model is refused, one that cannot
// change the model (use_cache, attention_dropout 0, ...) is checked and dropped.
struct ModelOverride {
  std::string key;
  YAML::Node value;
  Where where;
};
std::vector<ModelOverride> model_config_overrides(const YAML::Node& n, const Where& w);
// ReLoRA's keys (adapters) and the jagged restarts' (training), and check_relora's cross-key rules
// (train/config_relora.cpp).
std::vector<ConfigField> relora_rows(const char* section);
std::vector<ConfigField> jagged_restart_rows(const char* section);
void check_relora(const TrainConfig& c, const Where& w);
// EAFT's keys (train/config_eaft.cpp); check_eaft refuses, at `w`, what its loss does not apply to.
std::vector<ConfigField> eaft_rows(const char* section);
void check_eaft(const TrainConfig& c, const Where& w);
std::vector<ConfigField> dft_rows(const char* section);  // train/config_token_weighting.cpp too
void check_dft(const TrainConfig& c, const Where& w);
// PoSE's keys (train/config_pose.cpp); check_pose refuses, at `w`, what it does not combine with.
std::vector<ConfigField> pose_rows(const char* section);
std::vector<ConfigField> untrained_tokens_rows(const char* section);  // train/config_untrained_tokens.cpp
void check_untrained_tokens(const TrainConfig& c, const Where& at);
void check_pose(const TrainConfig& c, const Where& w);
// PEFT's trainable token rows beside the rest (train/config_peft.cpp): on a tied model lm_head's
// rows become the embedding's.
void check_trainable_token_rows(TrainConfig& c, const Where& w);
// An adapter's lora_modules_to_save on a tied model, which PEFT trains untied unless
// peft_ensure_weight_tying (TrainConfig::unties_embeddings): said at start-up; not under ZeRO-3.
void resolve_tied_modules_to_save(TrainConfig& c, const Where& w);
// PEFT's layer_replication: its ranges within the base, and what it does not combine with.
void check_layer_replication(const TrainConfig& c, const Where& w);
// PEFT's pissa and olora inits: a whole float base, and what they do not combine with.
void check_init_from_base(const TrainConfig& c, const Where& w);
// The keys of how examples are laid into rows and served (train/config_sampling.cpp).
std::vector<ConfigField> sampling_rows(const char* section);
// PEFT's LoraConfig options beyond the basic ones (train/config_peft.cpp).
std::vector<ConfigField> peft_rows(const char* section);
// The attention keys (train/config_attention.cpp): each records its choice in ReadContext::attention,
// which resolve_attention settles into TrainConfig::attention (and the packing defaults it implies).
std::vector<ConfigField> attention_rows(const char* section);
void resolve_attention(const ReadContext& ctx, const GivenKeys& keys);

// An Axolotl key llm_train does not build, set to a value that would change training: what
// llm_train does instead (train/config_unsupported.cpp); nullopt for anything else.
std::optional<std::string> unsupported_setting(const std::string& key, const YAML::Node& value);
// Whether `key` is one of those Axolotl keys (set or not): never a slip of another key.
bool is_axolotl_key_not_built(const std::string& key);
// With lora_model_dir: each LoRA key the config does not give (lora_r, lora_alpha, lora_dropout,
// lora_target_modules unless lora_target_linear is given, modules to save, PEFT's options) read
// from the directory's adapter_config.json, as PEFT's from_pretrained takes the file's settings;
// a key the config gives must agree with the file (load_peft_adapter checks it).
void adopt_adapter_config(ReadContext& ctx, const GivenKeys& keys);
// Whether a plugin named `name` (its class name, without the module path) has keys llm_train
// reads: Spectrum, LLMCompressor (and its older SFTPlugin), DFT.
bool plugin_keys_built(const std::string& name);

// Every top-level key, in config_to_yaml's order; base_model first (after the hub revision it
// resolves at), since it is applied first (HF fields given beside it override its preset).
const std::vector<ConfigField>& config_fields();
const ConfigField* find_config_field(const std::string& name);  // nullptr: unknown key
// The known key an unknown one is a slip of (one edit away, two for names of 8 or more
// characters), for "did you mean"; nullopt when none is that close, or `key` is itself one.
std::optional<std::string> nearest_config_key(const std::string& key);

}  // namespace llm
