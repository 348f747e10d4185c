// defines: load_config, parse_config (Axolotl-style YAML -> a validated TrainConfig): the
// top-level keys are read by the rows of the field table (train/config_fields.cpp), then the
// checks across keys run here.
#include "train/config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "engine/user_error.h"
#include "io/special_file.h"
#include "io/bpe_tokenizer.h"
#include "io/json_text.h"
#include "io/python_text.h"
#include "model/lora_init.h"
#include "train/config_fields.h"
#include "train/config_spectrum.h"
#include "train/pyyaml_scalars.h"
#include "train/unfrozen_parameters.h"

namespace llm {
namespace {

namespace fs = std::filesystem;

struct Entry {
  YAML::Node value;
  Where where;
};

// Axolotl's RemappedParameters: its fields overrides_of_model_config, type_of_model and
// overrides_of_model_kwargs are given in configs by these names or by their aliases model_config,
// model_type and model_kwargs; the keys here are the aliases. (revision_of_model and
// model_revision are both fields.)
std::string alias_read_for(const std::string& key) {
  if (key == "overrides_of_model_config") return "model_config";
  if (key == "type_of_model") return "model_type";
  if (key == "overrides_of_model_kwargs") return "model_kwargs";
  return key;
}

// One parse: the file's top-level keys, then the overrides, applied onto a default TrainConfig
// in the table's order (base_model first, so HF fields given beside it win), then the checks
// across keys.
class Parser {
 public:
  bool resolved = false;  // a config config_to_yaml wrote (kResolvedConfigHeader)

  explicit Parser(const std::string& source) : source_(source), ctx_{c_, source, unknown_, {}} {
    c_.source = source;
    c_.data.source = source;
    ctx_.given_keys = keys();
  }

  TrainConfig run(const YAML::Node& root, const std::map<std::string, std::string>& overrides) {
    collect(root);
    // Axolotl's model_config holds the HF fields that are top-level keys here.
    if (auto it = entries_.find("model_config"); it != entries_.end() && !it->second.value.IsNull()) {
      const Entry model_config = it->second;
      entries_.erase(it);
      for (const ModelOverride& o : model_config_overrides(model_config.value, model_config.where)) {
        // The same value both ways says one thing (Axolotl's context-extension examples give
        // pad_token_id so): only two values are ambiguous.
        const auto top = entries_.find(o.key);
        const bool same = top != entries_.end() && top->second.value.IsScalar() && o.value.IsScalar() &&
                          top->second.value.Scalar() == o.value.Scalar();
        if (top != entries_.end() && !same) fail(o.where, "each field once (in model_config, or as " + o.key + ")", "both");
        entries_[o.key] = {o.value, o.where};
      }
    }
    for (const auto& [key, text] : overrides) add_override(key, text);
    if (lists_plugin("DiffusionPlugin")) adopt_top_level_diffusion_fields();
    // Refused keys first: `rl: dpo` is the reason a DPO config cannot run, not the preference
    // dataset type or the optimizer it names beside it, which would otherwise fail first.
    std::vector<std::string> refused;  // one line per key that would change training
    for (const auto& [key, entry] : entries_) {
      if (std::optional<std::string> why = unsupported_setting(key, entry.value))
        refused.push_back(entry.where.str() + ": not supported, " + *why);
      else if (!find_config_field(key))
        unknown_.insert(entry.where.key);  // as spelled
    }
    if (!refused.empty()) throw UserError(refused);
    // `plugins` is read when it lists a plugin whose keys are built; speed-only ones go unused.
    for (const std::string& name : plugin_names())
      if (plugin_keys_built(name)) unknown_.erase("plugins");
    for (const ConfigField& field : config_fields()) {
      auto it = entries_.find(field.name);
      if (it != entries_.end() && (!it->second.value.IsNull() || field.reads_null))
        field.read(ctx_, it->second.value, it->second.where);
    }
    adopt_adapter_config(ctx_, keys());
    validate();
    c_.unknown_keys.assign(unknown_.begin(), unknown_.end());
    return c_;
  }

 private:
  void collect(const YAML::Node& root) {
    if (root.IsNull()) return;  // an empty file: every key unset
    if (!root.IsMap())
      throw UserError(source_ + ": expected a map of keys at the top level, got " + describe(root));
    for (const auto& kv : root) {
      Where w{source_, kv.first.IsScalar() ? kv.first.Scalar() : "?", kv.first.Mark().line + 1};
      if (!kv.first.IsScalar()) fail(w, "a key name", describe(kv.first));
      const std::string key = alias_read_for(w.key);
      if (auto it = entries_.find(key); it != entries_.end() && it->second.where.key != w.key)
        fail(w, it->second.where.key + " or " + w.key + ", not both", "both");
      else if (it != entries_.end())  // the last one wins, as in PyYAML, which says nothing
        c_.adjustments.push_back(w.key + " is given on lines " + std::to_string(it->second.where.line) + " and " +
                                 std::to_string(w.line) + ": the last one is read, as PyYAML reads it");
      entries_[key] = {kv.second, w};
    }
  }

  // `--key value` is read as the YAML line `key: value` would be (Axolotl's CLI takes any key): an
  // unknown key is listed unused and an unsupported one refused, but a slip of a known key is
  // refused here, since the run would go on with that key's default.
  void add_override(const std::string& key, const std::string& text) {
    Where w{source_, key, 0, true};
    const std::string name = alias_read_for(key);
    if (!find_config_field(name) && !is_axolotl_key_not_built(name) && name != "model_config")
      if (std::optional<std::string> near = nearest_config_key(key))
        fail(w, "a config key llm_train knows (did you mean --" + *near + "?)", "an unknown key");
    YAML::Node value;
    try {
      value = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      fail(w, "a YAML value", "'" + text + "' (" + e.msg + ")");
    }
    apply_yaml_tags(value, text, first_ill_formed_utf8(text) == std::string::npos, w);
    if (name == "model_config" && !value.IsNull()) {  // its fields, as the YAML's model_config is read
      for (const ModelOverride& o : model_config_overrides(value, w)) entries_[o.key] = {o.value, o.where};
      return;
    }
    entries_[name] = {value, w};
  }

  // The older DiffusionPlugin's fields (top-level keys) read as its `diffusion:` map is.
  void adopt_top_level_diffusion_fields() {
    YAML::Node fields(YAML::NodeType::Map);
    for (const std::string& name : diffusion_field_names()) {
      auto it = entries_.find(name);
      if (it == entries_.end()) continue;
      if (entries_.count("diffusion")) fail(it->second.where, "the diffusion fields in `diffusion:` only", name + " beside it");
      fields[name] = it->second.value;
      entries_.erase(it);
    }
    if (fields.size() > 0) entries_["diffusion"] = {fields, Where{source_, "diffusion"}};
  }

  // The location of a top-level key for checks across keys: its line when given, else none.
  Where at(const std::string& key) const {
    auto it = entries_.find(key);
    return it != entries_.end() ? it->second.where : Where{source_, key};
  }

  bool given(const std::string& key) const {
    auto it = entries_.find(key);
    return it != entries_.end() && !it->second.value.IsNull();
  }

  GivenKeys keys() const {
    return {[this](const std::string& key) { return given(key); }, [this](const std::string& key) { return at(key); },
            [this](const std::string& key) { return given(key) ? entries_.at(key).value : YAML::Node(); }};
  }

  void validate();
  std::vector<std::string> plugin_names() const;
  bool lists_plugin(const std::string& name) const;
  void resolve_spectrum();
  void resolve_strategy(const char* key, const std::string& strategy, const char* steps_key, double steps,
                        const char* per_epoch_key, int64_t per_epoch);
  void check_save_steps_fit_eval_steps() const;
  void check_exclusive(const std::string& a, bool a_set, const std::string& b, bool b_set) const {
    if (a_set && b_set) fail(at(b), a + " or " + b + ", not both", "both");
  }

  std::string source_;
  TrainConfig c_;
  std::set<std::string> unknown_;
  ReadContext ctx_;
  std::map<std::string, Entry> entries_;
};

void Parser::validate() {
  TrainConfig& c = c_;
  if (std::string why = c.model.validate(); !why.empty())
    throw UserError(source_ + ": model: " + why + " (base_model " + c.base_model +
                    " with the HF fields given)");
  // Axolotl's model loader raises the model's max_position_embeddings to sequence_len (RoPE's
  // angles do not depend on it; the exported config.json says the new length).
  if (c.data.sequence_len > c.model.max_position_embeddings) {
    c.adjustments.push_back("max_position_embeddings " + std::to_string(c.model.max_position_embeddings) +
                            " raised to sequence_len " + std::to_string(c.data.sequence_len) + ", as Axolotl does");
    c.model.max_position_embeddings = c.data.sequence_len;
  }
  if (c.data.datasets.empty() && !c.data.pretraining)
    fail(at("datasets"), "a list of {path, type} entries (or a pretraining_dataset)", "none");
  for (std::vector<DatasetSpec>* specs : {&c.data.datasets, &c.data.test_datasets})
    for (DatasetSpec& spec : *specs)
      if (spec.chat_template.empty()) {  // Axolotl's rule: both from the top level, or neither
        spec.chat_template = c.data.chat_template;
        spec.chat_template_jinja = c.data.chat_template_jinja;
      }
  resolve_rl_dataset_types(c, keys());
  // Axolotl's check_val_w_test_datasets.
  if (!c.data.test_datasets.empty() && c.data.val_set_size != 0)
    fail(at("val_set_size"), "0 with test_datasets (they are the eval set)", yaml_number(c.data.val_set_size));
  std::error_code ec;
  // With no tokenizer_config, an HF model directory's own tokenizer (base_model_config's first, as Axolotl).
  if (const std::string& dir = c.base_model_config.empty() ? c.base_model : c.base_model_config;
      c.tokenizer_config.empty() && fs::is_directory(dir, ec))
    c.tokenizer_config = find_bpe_tokenizer(dir).value_or("");
  c.data.chat_template_given = given("chat_template");
  resolve_chat_templates(c, c.data.chat_template_given);
  if (!c.resume_from_checkpoint.empty() && !fs::is_directory(c.resume_from_checkpoint, ec))
    fail(at("resume_from_checkpoint"), "an existing checkpoint directory (auto_resume_from_checkpoints: true takes "
         "the newest in output_dir, as HF's resume_from_checkpoint=True)",
         "'" + c.resume_from_checkpoint + "'");
  check_exclusive("warmup_steps", c.warmup_steps >= 0, "warmup_ratio", c.warmup_ratio >= 0);
  if (ctx_.batch_size > 0) {
    // Axolotl's rule (check_gas_bsz): one of the two; the accumulation is batch_size // micro.
    const auto gas = entries_.find("gradient_accumulation_steps");
    check_exclusive("gradient_accumulation_steps", gas != entries_.end() && !gas->second.value.IsNull(), "batch_size", true);
    if (ctx_.batch_size < c.micro_batch_size)
      fail(at("batch_size"), "at least micro_batch_size, " + std::to_string(c.micro_batch_size),
           std::to_string(ctx_.batch_size));
    c.gradient_accumulation_steps = ctx_.batch_size / c.micro_batch_size;
  }
  check_exclusive("eval_steps", c.eval_steps > 0, "evals_per_epoch", c.evals_per_epoch > 0);
  // Axolotl's check_evals: val_set_size 0 said outright, no test_datasets, and evaluations asked for
  // (not in a checkpoint's resolved config: before 2026-12-05 it wrote val_set_size 0 when unset).
  if (!resolved && given("val_set_size") && c.data.val_set_size == 0 && c.data.test_datasets.empty()) {
    const char* key = c.eval_steps > 0 ? "eval_steps" : given("evaluation_strategy") ? "evaluation_strategy" : "eval_strategy";
    if (c.eval_steps > 0 || (!c.eval_strategy.empty() && c.eval_strategy != "no"))
      fail(at(key), "an eval set with it (val_set_size > 0 or test_datasets), as Axolotl's check_evals", "val_set_size 0");
  }
  check_exclusive("save_steps", c.save_steps > 0, "saves_per_epoch", c.saves_per_epoch > 0);
  resolve_strategy("eval_strategy", c.eval_strategy, "eval_steps", c.eval_steps, "evals_per_epoch", c.evals_per_epoch);
  resolve_strategy("save_strategy", c.save_strategy, "save_steps", c.save_steps, "saves_per_epoch", c.saves_per_epoch);

  if (c.early_stopping_patience > 0) {
    if (c.data.val_set_size == 0 && c.data.test_datasets.empty())
      fail(at("early_stopping_patience"), "an eval set (val_set_size > 0 or test_datasets)", "val_set_size 0");
    check_save_steps_fit_eval_steps();
  }
  if (c.save_strategy == "best" &&
      ((c.data.val_set_size == 0 && c.data.test_datasets.empty()) || c.eval_strategy == "no"))
    fail(at("save_strategy"), "evaluations with save_strategy: best (val_set_size > 0 or test_datasets, "
         "eval_strategy not no): it saves at each new best eval_loss", "none");
  if (c.deepspeed_stage >= 0 && c.zero_stage != c.deepspeed_stage)
    fail(at("zero_stage"), "the stage of deepspeed's config, " + std::to_string(c.deepspeed_stage) + ", or no zero_stage",
         std::to_string(c.zero_stage));
  // Axolotl turns FSDP on for either key given (setup_fsdp_envs), and accelerate's plugin then
  // shards fully (FULL_SHARD; FSDP 2 reshards after forward) where no strategy is named, as for
  // `fsdp: [auto_wrap]` or an fsdp_config of wrapping settings alone.
  const auto turns_fsdp_on = [&](const char* key) {
    const YAML::Node n = keys().value(key);
    return n && ((n.IsScalar() && !n.Scalar().empty()) || ((n.IsSequence() || n.IsMap()) && n.size() > 0));
  };
  // A zero_stage given beside them says the stage (a saved config carries it so).
  if (c.fsdp_stage < 0 && !given("zero_stage") && c.deepspeed_stage < 0 &&
      (turns_fsdp_on("fsdp") || turns_fsdp_on("fsdp_config")))
    c.fsdp_stage = c.zero_stage = 3;
  if (c.fsdp_stage >= 0 && c.deepspeed_stage >= 0)
    fail(at("fsdp"), "either fsdp or deepspeed", "both");
  if (c.fsdp_stage >= 0 && c.zero_stage != c.fsdp_stage)
    fail(at("zero_stage"), "the stage fsdp asks for, " + std::to_string(c.fsdp_stage) + ", or no zero_stage",
         std::to_string(c.zero_stage));
  // The blocks adapters go on: PEFT counts layers_to_transform and patterns after replication.
  const int64_t blocks = c.lora.replicated_layers(c.model.num_hidden_layers);
  for (int64_t layer : c.lora.layers)
    if (layer >= blocks)
      fail(at("peft_layers_to_transform"),
           std::string(c.lora.layer_replication.empty() ? "block indices below num_hidden_layers, "
                                                        : "block indices below the replicated blocks' count, ") +
               std::to_string(blocks),
           std::to_string(layer));
  if (!c.adapter.empty() && c.lora.targets().empty() && c.lora.target_pattern.empty())
    fail(at("adapter"), "lora_target_modules or lora_target_linear: true with it", "no target modules");
  if (!c.lora.target_pattern.empty()) {  // PEFT's checks of a pattern, at start-up
    bool any = false;
    for (int64_t i = 0; i < blocks; i++)
      for (int k = 0; k < kNumLinear; k++) any = any || c.lora.adapts(i, k);
    if (!any)
      fail(at("lora_target_modules"), "a pattern matching some block's linear layer, e.g. model.layers.0.self_attn.q_proj",
           "'" + c.lora.target_pattern + "', which matches none");
    if (const std::string other = c.lora.pattern_matches_other_module(blocks); !other.empty())
      fail(at("lora_target_modules"), "a pattern matching only the blocks' linear layers (LoRA on embeddings, lm_head "
           "or whole modules is not built)", "'" + c.lora.target_pattern + "', which matches " + other);
    if (c.lora.target_linear)
      fail(at("lora_target_linear"), "false with a lora_target_modules pattern (which names the targets)", "true");
    if (!c.lora.layers.empty())
      fail(at("peft_layers_to_transform"), "none with a lora_target_modules pattern (PEFT ignores it then)",
           "a block list");
  }
  if (c.adapter.empty()) {
    if (!c.lora_model_dir.empty()) fail(at("lora_model_dir"), "adapter: lora with it", "no adapter");
    if (c.merge_lora) fail(at("merge_lora"), "adapter: lora with it", "no adapter");
    if (c.loraplus_lr_ratio > 0) fail(at("loraplus_lr_ratio"), "adapter: lora or qlora with it", "no adapter");
    if (c.lora.use_dora) fail(at("peft_use_dora"), "adapter: lora or qlora with it", "no adapter");
    if (!c.lora.layers.empty()) fail(at("peft_layers_to_transform"), "adapter: lora or qlora with it", "no adapter");
    if (!c.lora.rank_pattern.empty()) fail(at("lora_rank_pattern"), "adapter: lora or qlora with it", "no adapter");
    if (!c.lora.alpha_pattern.empty()) fail(at("lora_alpha_pattern"), "adapter: lora or qlora with it", "no adapter");
  }
  check_scheduler(c, keys());
  check_untrained_tokens(c, at("fix_untrained_tokens"));
  if (lists_plugin("SpectrumPlugin")) resolve_spectrum();
  if (!c.unfrozen_parameters.empty() && !c.adapter.empty())
    fail(at("unfrozen_parameters"), "no adapter with it (an adapter run trains its adapters)", "adapter: " + c.adapter);
  if (!c.unfrozen_parameters.empty() && c.zero_stage == 3)
    fail(at("unfrozen_parameters"), "ZeRO stage 0 to 2 with it (ZeRO-3 shards trained weights only)", "zero_stage 3");
  for (const std::string& p : c.unfrozen_parameters)  // its rows are zeroed in the whole gradient
    if (parse_unfreeze_pattern(p).rows && c.zero_stage > 0)
      fail(at("unfrozen_parameters"), "zero_stage 0 with a row range (ZeRO shards the gradients it zeroes)",
           "'" + p + "' with zero_stage " + std::to_string(c.zero_stage));
  // Axolotl's rl builder does not pass dataloader_drop_last on: TRL's trainers keep every batch.
  if (!c.rl.empty() && given("dataloader_drop_last")) ctx_.unknown.insert("dataloader_drop_last");
  // Axolotl's model_quantization_config {backend: bnb, weight_dtype: nf4} replaces adapter: qlora
  // with load_in_4bit: a LoRA adapter on its NF4 base is QLoRA.
  if (given("model_quantization_config") && c.load_in_4bit && c.adapter == "lora") c.adapter = "qlora";
  // Axolotl's rules: qlora requires load_in_4bit, and does not merge a base loaded in 4 bits
  // (its merge reloads the base in 16 bits afterwards). 4-bit weights here mean qlora.
  if (c.adapter == "qlora" && !c.load_in_4bit)
    fail(at("adapter"), "load_in_4bit: true with qlora", "load_in_4bit false");
  if (c.load_in_4bit && c.adapter != "qlora")
    fail(at("load_in_4bit"), "adapter: qlora with it (4-bit NF4 base weights are built for QLoRA)",
         c.adapter.empty() ? "no adapter" : "adapter: " + c.adapter);
  // load_in_8bit: LoRA on bnb's int8 base, as Axolotl's lora-8b.yml. Without an adapter
  // transformers' Trainer refuses to fine-tune a purely quantised model (Int8Params train no
  // weights), and Axolotl's qlora check refuses 8 bits with qlora; both flags at once is neither.
  if (c.load_in_8bit && c.load_in_4bit)
    fail(at("load_in_8bit"), "either load_in_8bit or load_in_4bit", "both");
  if (c.load_in_8bit && c.adapter != "lora")
    fail(at("load_in_8bit"), "adapter: lora with it (an 8-bit base is frozen: only adapters train on it)",
         c.adapter.empty() ? "no adapter" : "adapter: " + c.adapter);
  if (c.adapter == "qlora" && c.merge_lora)
    fail(at("merge_lora"), "false with adapter: qlora (a 4-bit base is not merged; merge onto the f32/bf16 "
         "base after training)", "true");
  resolve_optimizer(c, keys(), ctx_.unknown);
  // Axolotl's rule: an adapter run adding tokens trains the rows of the new tokens whole.
  if (!c.tokens.empty() && !c.adapter.empty())
    for (const char* module : {"embed_tokens", "lm_head"})
      if (!c.lora.saves(module))
        fail(at("lora_modules_to_save"), "[embed_tokens, lm_head] with tokens and an adapter (the new tokens' rows must train)",
             given("lora_modules_to_save") ? "a list without " + std::string(module) : "none");
  resolve_attention(ctx_, keys());
  if (c.data.eval_sequence_len > 0) {
    // Axolotl applies it to the "test" split's SFT examples alone (test_datasets; not the held-out
    // share of val_set_size, nor rl's loader). Checked after resolve_attention, which sets
    // multipack_real_batches' default. (A stream's eval bins hold sequence_len: Axolotl's eval multipack takes its batch size 1.)
    const int64_t bins = c.data.multipack_real_batches || c.data.pretraining ? c.data.sequence_len
                                                                             : c.micro_batch_size * c.data.sequence_len;
    if (c.data.test_datasets.empty() || !c.rl.empty())
      c.adjustments.push_back("eval_sequence_len: unused without test_datasets (or with rl), as in Axolotl");
    else if (c.data.sample_packing && c.data.eval_sample_packing && c.data.eval_sequence_len > bins)
      fail(at("eval_sequence_len"), "at most the packed bins' " + std::to_string(bins) +
           " tokens with sample_packing and eval_sample_packing (test examples pack into them)",
           std::to_string(c.data.eval_sequence_len));
  }
  check_preference(c, keys(), ctx_.unknown);
  if (c.qat.on()) check_qat(c, at("qat"));
  if (!c.pruning_targets.empty()) check_llmcompressor(c, at("llmcompressor"));
  // A resolved config (a checkpoint's) keeps `diffusion:` and not the plugins that asked for it.
  if (given("diffusion") && !lists_plugin("DiffusionPlugin") && !resolved)
    fail(at("diffusion"), "plugins: [axolotl.integrations.diffusion.DiffusionPlugin] with it (it is that plugin's map)",
         "no DiffusionPlugin");
  c.diffusion.on = lists_plugin("DiffusionPlugin") || given("diffusion");
  if (c.diffusion.on) check_diffusion(c, at("plugins"));
  if (c.fp8) check_fp8(c, at("fp8"));
  const bool bf16_full = c.bf16 == "full";
  resolve_bf16_full(c);
  if (c.bfloat16) check_bfloat16(c, at(bf16_full && !given("bfloat16") ? "bf16" : "bfloat16"));
  if (c.lisa_n_layers > 0 || c.lisa_step_interval > 0) check_lisa(c, at("lisa_n_layers"), at("lisa_step_interval"));
  if (c.data.shard_num > 0 || c.data.shard_idx >= 0) check_dataset_shards(c, at("dataset_shard_num"), at("dataset_shard_idx"));
  if (c.relora) check_relora(c, at("relora"));
  if (c.use_eaft) check_eaft(c, at("use_eaft"));
  if (c.use_dft) check_dft(c, at(given("use_dft") ? "use_dft" : "enable_dft_loss"));
  if (c.data.use_pose) check_pose(c, at("use_pose"));
  // Before the adapter's tied modules are resolved: a reward model's head ties to nothing.
  check_reward_models(c, keys());
  if (c.lora.trains_token_rows()) check_trainable_token_rows(c, at("peft_trainable_token_indices"));
  resolve_tied_modules_to_save(c, at("lora_modules_to_save"));
  if (!c.lora.layer_replication.empty()) check_layer_replication(c, at("peft_layer_replication"));
  if (lora_init_from_base(c.lora.init)) check_init_from_base(c, at("peft_init_lora_weights"));
  check_pretraining(c, keys());
}

// The class names `plugins` lists, without their module paths (axolotl.integrations.x.Name).
std::vector<std::string> Parser::plugin_names() const {
  const auto it = entries_.find("plugins");
  if (it == entries_.end()) return {};
  const YAML::Node& n = it->second.value;
  std::vector<std::string> names;
  if (n.IsScalar()) names.push_back(n.Scalar());
  if (n.IsSequence())
    for (const YAML::Node& item : n)
      if (item.IsScalar()) names.push_back(item.Scalar());
  for (std::string& p : names) p = p.substr(p.rfind('.') + 1);  // npos + 1 == 0: the whole name
  return names;
}

bool Parser::lists_plugin(const std::string& name) const {
  const std::vector<std::string> names = plugin_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Axolotl's Spectrum plugin: its SNR file, looked up where Axolotl does (the working directory),
// beside the config first, for the model named as written (a hub id, not its cache snapshot).
void Parser::resolve_spectrum() {
  TrainConfig& c = c_;
  const auto model = entries_.find("base_model");
  const std::string name = !c.spectrum_model_name.empty() ? c.spectrum_model_name
                           : model != entries_.end() && model->second.value.IsScalar() ? model->second.value.Scalar()
                                                                                      : c.base_model;
  const std::string file = ctx_.beside_config(spectrum_snr_file(name));
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    fail(at("plugins"), "Spectrum's SNR scan " + spectrum_snr_file(name) +
                            " beside the config or in the working directory (llm_train does not download it)",
         "none for model " + name);
  const std::string expected = "Spectrum's SNR results";
  c.unfrozen_parameters = spectrum_unfrozen_parameters(read_whole_file(file, expected), file, c.spectrum_top_fraction);
}

// HF's eval_strategy / save_strategy as Axolotl passes them on: "epoch" is once an epoch (with
// saves_per_epoch, its share of the steps, as Axolotl's builder then saves by steps), "no" none,
// save_strategy "best" at each new best eval_loss; any of them with a step count set is an error,
// and so is evals_per_epoch beside any eval_strategy but steps (Axolotl's validator). Unset, the
// counts decide (the trainer's step_interval).
void Parser::resolve_strategy(const char* key, const std::string& strategy, const char* steps_key, double steps,
                              const char* per_epoch_key, int64_t per_epoch) {
  if (strategy.empty() || strategy == "steps") return;
  if (steps > 0) fail(at(steps_key), std::string("no ") + steps_key + " with " + key + ": " + strategy, num(steps));
  if ((strategy == "no" || strategy == "best" || std::string(key) == "eval_strategy") && per_epoch > 0)
    fail(at(per_epoch_key), std::string("no ") + per_epoch_key + " with " + key + ": " + strategy,
         std::to_string(per_epoch));
}

// Axolotl's (and HF's load_best_model_at_end) rule with early stopping: the checkpoint of the
// best evaluation must be one that gets saved, so save_steps is a multiple of eval_steps; shares
// of the total steps are compared as HF does, in millionths, and cannot be mixed with counts.
void Parser::check_save_steps_fit_eval_steps() const {
  const TrainConfig& c = c_;
  if (c.eval_steps <= 0 || c.save_steps <= 0) return;
  if ((c.eval_steps < 1) != (c.save_steps < 1))
    fail(at("save_steps"), "a share of the steps as eval_steps is, or both whole step counts, with early stopping",
         num(c.save_steps));
  const auto units = [](double v) { return v < 1 ? std::llround(v * 1e6) : static_cast<int64_t>(v); };
  if (units(c.save_steps) % units(c.eval_steps) != 0)
    fail(at("save_steps"), "a multiple of eval_steps, " + num(c.eval_steps) + ", with early stopping", num(c.save_steps));
}

}  // namespace

TrainConfig parse_config(const std::string& yaml_text, const std::string& source,
                         const std::map<std::string, std::string>& overrides) {
  Parser parser(source);
  parser.resolved = yaml_text.rfind(kResolvedConfigHeader, 0) == 0;
  return parser.run(read_config_yaml(yaml_text, source, parser.resolved), overrides);
}

std::string read_config_file(const std::string& path) {
  std::error_code ec;
  // Only a regular file: reading a FIFO or a socket would block forever.
  const fs::file_type type = fs::status(path, ec).type();
  if (type != fs::file_type::regular)
    throw UserError(path + ": expected a YAML config file, got " +
                    special_file_kind(path).value_or(type == fs::file_type::directory ? "a directory"
                                                     : ec.value() == ELOOP            ? "a loop of symbolic links"
                                                                                      : "no such file"));
  std::ifstream in(path);
  if (!in) throw UserError(path + ": expected a readable YAML config file, got no permission");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TrainConfig load_config(const std::string& path, const std::map<std::string, std::string>& overrides) {
  return parse_config(read_config_file(path), path, overrides);
}

}  // namespace llm
