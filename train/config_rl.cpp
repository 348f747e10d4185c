// defines: resolve_rl_dataset_types, check_preference: rl's keys across the others (the dataset
// types each trainer reads, each trainer's own keys, rl_beta's sources, what pairs refuse)
#include <algorithm>

#include "io/kto.h"
#include "io/orpo.h"
#include "io/preference.h"
#include "train/config_fields.h"

namespace llm {

// Axolotl's names: an entry without a type is completion, or under rl its rows as they are
// (passthrough); under rl a short name is its .default strategy (llama3, chat_template,
// passthrough) and a type map is user_defined.default, whose instruction keys rl never reads.
void resolve_rl_dataset_types(TrainConfig& c, const GivenKeys& keys) {
  const std::vector<std::string>& rl_types = c.rl == "kto" ? kto_types() : preference_types();
  const UserDefinedFormat unset;
  for (std::vector<DatasetSpec>* specs : {&c.data.datasets, &c.data.test_datasets})
    for (DatasetSpec& spec : *specs) {
      const char* key = specs == &c.data.datasets ? "datasets" : "test_datasets";
      if (spec.type.empty()) spec.type = c.rl.empty() ? "completion" : "passthrough.default";
      if (c.rl.empty() || c.rl == "orpo") continue;
      if (spec.type == "user_defined") {
        const UserDefinedFormat& f = spec.user_defined;
        if (f.system_prompt != unset.system_prompt || f.field_instruction != unset.field_instruction ||
            f.field_input != unset.field_input || f.field_output != unset.field_output || f.format != unset.format ||
            f.no_input_format != unset.no_input_format || f.system_format != unset.system_format)
          fail(keys.at(key), "rl's user-defined keys with rl: " + c.rl +
                            " (field_prompt, field_system, field_chosen, field_rejected, field_completion, field_label, "
                            "prompt_format, chosen_format, rejected_format, completion_format)",
               "an instruction format (field_instruction, format, ...)");
        spec.type = "user_defined.default";
      } else if (spec.type.find('.') == std::string::npos &&
                 std::find(rl_types.begin(), rl_types.end(), spec.type + ".default") != rl_types.end()) {
        spec.type += ".default";
      }
    }
}

// rl trains on preference pairs only, and only rl reads them. Settings that change the examples
// a pair's log-likelihoods come from are refused rather than applied to one response of a pair.
void check_preference(TrainConfig& c, const GivenKeys& keys, std::set<std::string>& unknown) {
  const bool kto = c.rl == "kto", orpo = c.rl == "orpo";
  if ((c.reward_model || c.process_reward_model) && !c.rl.empty())  // before rl's dataset types are checked
    fail(keys.at("rl"), std::string("no rl with ") + (c.reward_model ? "reward_model" : "process_reward_model") +
         " (TRL's reward trainers train them, rl its preference trainers)", c.rl);
  c.data.preference_pairs = !c.rl.empty();
  c.data.unpaired_preferences = kto;
  c.data.pair_tokenizing = c.rl == "simpo" || orpo ? DataConfig::PairTokenizing::tokenize_row : DataConfig::PairTokenizing::dpo;
  std::vector<std::string> types = kto ? kto_types() : orpo ? orpo_types() : preference_types();
  if (orpo) types.push_back("passthrough.default");  // Axolotl reads rows as they are under any rl
  const char* kind = kto ? "KTO" : orpo ? "ORPO" : "preference";
  for (const std::vector<DatasetSpec>* specs : {&c.data.datasets, &c.data.test_datasets})
    for (const DatasetSpec& spec : *specs) {
      const char* key = specs == &c.data.datasets ? "datasets" : "test_datasets";
      if (c.rl.empty() && (is_preference_type(spec.type) || is_kto_type(spec.type) || is_orpo_type(spec.type)))
        fail(keys.at(key), "rl (dpo, ipo, kto, orpo or simpo) with the preference dataset type " + spec.type, "no rl");
      if (!c.rl.empty() && std::find(types.begin(), types.end(), spec.type) == types.end())
        fail(keys.at(key), std::string(kind) + " dataset types with rl: " + c.rl + " (" + join(types) + ")", "type " + spec.type);
    }
  // Each trainer's own keys (Axolotl passes rpo_alpha to every trainer; only DPO's takes it).
  const std::vector<std::pair<const char*, std::vector<std::string>>> own_keys = {
      {"dpo_label_smoothing", {"dpo", "ipo"}}, {"rpo_alpha", {"dpo", "ipo"}}, {"dpo_norm_loss", {"dpo", "ipo"}},
      {"dpo_use_weighting", {"dpo", "ipo"}},
      {"kto_desirable_weight", {"kto"}},      {"kto_undesirable_weight", {"kto"}},
      {"simpo_gamma", {"simpo"}},             {"cpo_alpha", {"simpo"}},
      {"orpo_alpha", {"orpo"}},               {"rl_beta", {"dpo", "ipo", "kto", "orpo", "simpo"}},
      {"dpo_loss_type", {"dpo"}},             {"dpo_loss_weights", {"dpo"}}};
  for (const auto& [key, trainers] : own_keys)
    if (keys.given(key) && std::find(trainers.begin(), trainers.end(), c.rl) == trainers.end())
      fail(keys.at(key), "rl: " + join(trainers) + " with it", c.rl.empty() ? "no rl" : "rl: " + c.rl);
  // Axolotl's order: trl.beta, else rl_beta, else orpo_alpha.
  const YAML::Node trl = keys.value("trl");
  const bool trl_beta = trl.IsMap() && trl["beta"] && !trl["beta"].IsNull();
  // dpo_beta: Axolotl moves it to rl_beta when that is unset.
  const bool dpo_beta = keys.given("dpo_beta") && !c.rl.empty();
  if (keys.given("dpo_beta") && c.rl.empty()) unknown.insert("dpo_beta");
  if (dpo_beta && !keys.given("rl_beta") && !trl_beta)
    c.rl_beta = read_double(keys.value("dpo_beta"), keys.at("dpo_beta"), kPositive);
  if (orpo && c.orpo_alpha > 0 && !keys.given("rl_beta") && !dpo_beta && !trl_beta) c.rl_beta = c.orpo_alpha;
  if (c.rl.empty()) return;
  const bool has_reference = kto || c.rl == "dpo" || c.rl == "ipo";  // Axolotl's list for a LoRA config alone
  if (has_reference && !c.adapter.empty() && !c.lora_model_dir.empty()) {
    c.adjustments.push_back("lora_model_dir with rl: " + c.rl + ": its adapter is loaded and is the reference's too, as "
                            "TRL copies a PeftModel's adapter into its reference (Axolotl 0.19 hands TRL a fresh "
                            "LoRA config here and never reads lora_model_dir's weights)");
  }
  // TRL's KL estimate pairs each prompt with another row's completion of the same micro-batch.
  if (kto && c.micro_batch_size < 2)
    fail(keys.at("micro_batch_size"), "at least 2 with rl: kto (its KL estimate pairs each prompt with another row's "
         "completion in the micro-batch, as TRL requires)", std::to_string(c.micro_batch_size));
  const bool ipo_term = std::find(c.dpo_loss_type.begin(), c.dpo_loss_type.end(), "ipo") != c.dpo_loss_type.end();
  if ((c.rl == "ipo" || ipo_term) && c.dpo_label_smoothing > 0)
    fail(keys.at("dpo_label_smoothing"), "0 with rl: ipo or an ipo dpo_loss_type (label smoothing is DPO's, as Axolotl)",
         yaml_number(c.dpo_label_smoothing));
  // TRL 1.9 scales each term's per-pair loss in place: its sft term (one value expanded over the
  // pairs) raises there; rpo_alpha's NLL (TRL before 1.0) came without weighting.
  if (c.dpo_use_weighting) {
    if (std::find(c.dpo_loss_type.begin(), c.dpo_loss_type.end(), "sft") != c.dpo_loss_type.end())
      fail(keys.at("dpo_use_weighting"), "no sft dpo_loss_type with it (TRL cannot weight its one NLL value per pair)",
           "dpo_loss_type with sft");
    if (c.rpo_alpha >= 0)
      fail(keys.at("dpo_use_weighting"), "no rpo_alpha with it (TRL 1.9's weighting has no RPO term)", "rpo_alpha");
  }
  if (!c.dpo_loss_weights.empty() && c.dpo_loss_weights.size() != c.dpo_loss_type.size())  // TRL's check
    fail(keys.at("dpo_loss_weights"), "one weight per dpo_loss_type (" + std::to_string(c.dpo_loss_type.size()) + ")",
         std::to_string(c.dpo_loss_weights.size()));
  if (c.neftune_noise_alpha > 0)
    fail(keys.at("neftune_noise_alpha"), "none with rl (noise would reach the reference's forward too)", "set");
  if (c.attention == AttentionKind::s2)
    fail(keys.at("s2_attention"), "false with rl (a pair's two sequences share a row, which S2's groups would span)", "true");
  if (c.data.sample_packing)  // Axolotl's validator: "does not work with RLHF training"
    fail(keys.at("sample_packing"), "false with rl (its pairs are not packed: a pair's two sequences share a row)", "true");
  // A pair's row needs a document mask, which eager attention lacks: flash attention computes
  // the same exact attention tile by tile.
  if (!attention_info(c.attention).document_masks) c.attention = AttentionKind::flash;
}

}  // namespace llm
