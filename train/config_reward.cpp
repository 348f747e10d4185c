// defines: check_reward_models: reward_model's and process_reward_model's keys across the others
// (their dataset types both ways, the classifier classes and label counts, what they refuse, the
// heads PEFT trains beside an adapter) and the model each makes a classifier of.
#include <algorithm>

#include "io/bradley_terry.h"
#include "io/stepwise_supervised.h"
#include "train/config_fields.h"

namespace llm {

namespace {

// A reward trainer of Axolotl's: its key, its dataset type, the classifier it trains (transformers'
// classes, its labels, whether it scores every token) and PEFT's task for that classifier.
struct RewardTrainer {
  const char* key;
  const char* dataset_type;
  const char* classes[2];
  int64_t labels;
  bool per_token;
  const char* what;  // for messages
};
const RewardTrainer kRewardTrainers[] = {
    {"reward_model", kBradleyTerryType, {"AutoModelForSequenceClassification", "LlamaForSequenceClassification"}, 1,
     false, "a sequence classifier scoring each pair's two sequences in one row"},
    {"process_reward_model", kStepwiseSupervisedType, {"AutoModelForTokenClassification", "LlamaForTokenClassification"},
     2, true, "a token classifier labelling each reasoning step's last token"},
};

bool trains(const TrainConfig& c, const RewardTrainer& t) {
  return std::string(t.key) == "reward_model" ? c.reward_model : c.process_reward_model;
}

}  // namespace

bool is_classifier_class(const std::string& model_type) {
  for (const RewardTrainer& t : kRewardTrainers)
    if (model_type == t.classes[0] || model_type == t.classes[1]) return true;
  return false;
}

void check_reward_models(TrainConfig& c, const GivenKeys& keys) {
  if (c.reward_model && c.process_reward_model)
    fail(keys.at("process_reward_model"), "either reward_model or process_reward_model", "both");
  const RewardTrainer* active = nullptr;
  for (const RewardTrainer& t : kRewardTrainers)
    if (trains(c, t)) active = &t;
  if (!active)
    for (const char* head : {"classifier", "score"})
      if (c.lora.saves(head))
        fail(keys.at(keys.given("lora_modules_to_save") ? "lora_modules_to_save" : "lora_model_dir"),
             "embed_tokens or lm_head (classifier and score are a classifier's heads: reward_model or "
             "process_reward_model)", head);
  // Each trainer's dataset type with it and only then, both ways.
  for (const RewardTrainer& t : kRewardTrainers)
    for (const char* key : {"datasets", "test_datasets"})
      for (const DatasetSpec& spec : key == std::string("datasets") ? c.data.datasets : c.data.test_datasets)
        if ((spec.type == t.dataset_type) != (active == &t))
          fail(keys.at(key),
               active == &t ? std::string("the dataset type ") + t.dataset_type + " with " + t.key
                            : std::string(t.key) + ": true with the dataset type " + t.dataset_type,
               active == &t ? "type " + spec.type : std::string("no ") + t.key);
  const YAML::Node model_type = keys.value("model_type");
  for (const RewardTrainer& t : kRewardTrainers)
    if (model_type.IsScalar() && (model_type.Scalar() == t.classes[0] || model_type.Scalar() == t.classes[1]) &&
        active != &t)
      fail(keys.at("model_type"), std::string(t.key) + ": true with " + model_type.Scalar(),
           active ? std::string(active->key) : std::string("neither reward_model nor process_reward_model"));
  if (keys.given("num_labels")) {
    const int64_t labels = read_int(keys.value("num_labels"), keys.at("num_labels"), 1, 2);
    if (!active || labels != active->labels)
      fail(keys.at("num_labels"),
           "1 with reward_model or 2 with process_reward_model (the classifier's labels)", std::to_string(labels) +
           (active ? std::string(" with ") + active->key : std::string(" with neither")));
  }
  if (!active) return;
  const Where& at = keys.at(active->key);
  // What the classifier's head or a pair's shared row cannot take (each refused, not applied in part).
  const std::vector<std::pair<bool, const char*>> refused = {
      {c.data.sample_packing && !active->per_token, "sample_packing"},
      {c.attention == AttentionKind::s2 && !active->per_token, "s2_attention"},
      {c.neftune_noise_alpha > 0, "neftune_noise_alpha"},
      {c.qat.on(), "qat"},
      {c.diffusion.on, "diffusion"},
      {c.relora, "relora"},
      {c.data.pretraining.has_value(), "pretraining_dataset"},
      {c.use_eaft, "use_eaft"},  // token weights of a causal LM's loss
      {c.use_dft, "use_dft"},
  };
  for (const auto& [set, key] : refused)
    if (set)
      fail(keys.given(key) ? keys.at(key) : at, std::string("no ") + key + " with " + active->key + " (" + active->what + ")",
           "set");
  // PEFT's SEQ_CLS and TOKEN_CLS tasks train the classifier heads whole beside the adapters (no
  // Llama module is named classifier; lm_head, listed, matches none either: the score trains).
  if (!c.adapter.empty())
    for (const char* head : {"classifier", "score"})
      if (!c.lora.saves(head)) c.lora.modules_to_save.push_back(head);
  // AutoModelFor...Classification with Axolotl's labels: no lm_head, so nothing ties.
  c.model.num_labels = active->labels;
  c.model.token_classification = active->per_token;
  c.model.tie_word_embeddings = false;
  if (active->per_token) {
    c.data.token_labels = true;
    return;
  }
  c.data.preference_pairs = true;
  // A pair's row needs a document mask, which eager attention lacks (as check_preference).
  if (!attention_info(c.attention).document_masks) c.attention = AttentionKind::flash;
}

}  // namespace llm
