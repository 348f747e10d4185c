// Fuzz targets for the small files read beside the main inputs: PEFT's adapter_config.json
// (lora_model_dir), a DeepSpeed config (`deepspeed:`), transformers' tokenizer_config.json, a
// resumed run's metrics.jsonl and a dataset directory's card (README.md, its `configs:`). Each
// accepted input is checked for what it promised.
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

// defines: UserError
#include "engine/user_error.h"
// defines: BpeTokenizer
#include "io/bpe_tokenizer.h"
// defines: LlamaModel
#include "model/llama.h"
// defines: save_peft_adapter, load_peft_adapter, kPeftConfigFile
#include "model/peft_adapter.h"
// defines: parse_config, config_to_yaml
#include "train/config.h"
// defines: MetricsLog
#include "train/metrics.h"
// defines: Target, PropertyFailure, side_file_targets
#include "test/fuzz/fuzz.h"

namespace llm::fuzz {
namespace {

namespace fs = std::filesystem;

// A 2-layer model with LoRA (r 4, alpha 8) on every linear and a trained lm_head, as an
// adapter directory holds it: the model it was saved from is what an accepted config must load.
LlamaConfig adapter_model_shape() {
  LlamaConfig c;
  c.hidden_size = 16, c.intermediate_size = 24, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.vocab_size = 19;
  c.tie_word_embeddings = false;
  return c;
}

LoraConfig adapter_lora() {
  LoraConfig l;
  l.r = 4, l.alpha = 8.0f, l.target_linear = true, l.modules_to_save = {"lm_head"};
  return l;
}

std::unique_ptr<LlamaModel> adapter_model(uint64_t seed) {
  auto model = std::make_unique<LlamaModel>(adapter_model_shape(), Device::cpu(), seed);
  model->add_lora(adapter_lora(), seed);
  return model;
}

// The value every trainable tensor of the saved adapter holds (B not zero, so a load is seen).
constexpr float kSavedValue = 0.25f;

// adapter_config.json beside a valid adapter_model.safetensors. Accepted: every trainable tensor
// is the saved one, bit for bit.
Target peft_adapter_config_target() {
  auto dict = with_json({"peft_type", "LORA", "task_type", "CAUSAL_LM", "r", "lora_alpha", "lora_dropout",
                               "target_modules", "modules_to_save", "use_rslora", "use_dora", "fan_in_fan_out",
                               "lora_bias", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                               "down_proj", "lm_head", "all-linear", "rank_pattern", "alpha_pattern", "init_lora_weights"});
  return {"peft_adapter_config", "peft_adapter_config", dict,
          [](const std::string& scratch) {
            std::unique_ptr<LlamaModel> saved = adapter_model(1);
            for (const ParamRef& p : saved->trainable_parameters())
              p.tensor->copy_from(Tensor::full(p.tensor->shape(), kSavedValue, DType::f32));
            save_peft_adapter(*saved, scratch + "/adapter", "/models/base", DType::f32);
            return std::vector<std::string>{read_bytes(scratch + "/adapter/" + kPeftConfigFile)};
          },
          [](const std::string& input, const std::string& scratch) {
            write_bytes(scratch + "/adapter/" + kPeftConfigFile, input);
            std::unique_ptr<LlamaModel> model = adapter_model(2);
            load_peft_adapter(*model, scratch + "/adapter");
            for (const ParamRef& p : model->trainable_parameters())
              for (float v : p.tensor->to_floats())
                require(v == kSavedValue, "an accepted adapter_config.json loaded other values into " + p.name);
          }};
}

const char* const kDeepspeedRun =
    "base_model: tiny\ndeepspeed: ds.json\ndatasets:\n  - path: data.jsonl\n    type: completion\n";

// A DeepSpeed JSON named by `deepspeed:`. Accepted: its zero_optimization.stage is the run's
// ZeRO stage, and the config still reads back as itself.
Target deepspeed_config_target() {
  auto dict = with_json({"zero_optimization", "stage", "auto", "offload_optimizer", "offload_param",
                               "device", "cpu", "bf16", "enabled", "gradient_accumulation_steps",
                               "train_micro_batch_size_per_gpu", "overlap_comm", "0", "1", "2", "3", "4"});
  return {"deepspeed_config", "deepspeed_config", dict,
          [](const std::string& scratch) {
            write_bytes(scratch + "/data.jsonl", "{\"text\": \"a\"}\n");  // the run's dataset must exist
            return std::vector<std::string>{};
          },
          [](const std::string& input, const std::string& scratch) {
            write_bytes(scratch + "/ds.json", input);
            const TrainConfig config = parse_config(kDeepspeedRun, scratch + "/fuzz.yaml");
            const nlohmann::json stage = nlohmann::json::parse(input)["zero_optimization"]["stage"];
            require(stage.is_number_integer() && config.zero_stage == stage.get<int64_t>(),
                    "the run's zero_stage is not the DeepSpeed config's stage");
            const std::string yaml = config_to_yaml(config);
            require(config_to_yaml(parse_config(yaml, scratch + "/fuzz.yaml")) == yaml,
                    "a config naming a DeepSpeed file reads back as another config");
          }};
}

// tokenizer_config.json beside a valid tokenizer.json (the hf_tokenizer_json corpus's smallest).
// Accepted: BOS and EOS are the special tokens it names, when it names them.
Target tokenizer_config_target() {
  auto dict = with_json({"bos_token", "eos_token", "pad_token", "content", "<|begin_of_text|>",
                               "<|end_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>", "added_tokens_decoder"});
  return {"tokenizer_config", "tokenizer_config", dict,
          [](const std::string& scratch) {
            fs::copy_file(fs::path(LLM_FUZZ_CORPUS_DIR) / "hf_tokenizer_json" / "small_vocab.json",
                          scratch + "/tokenizer.json", fs::copy_options::overwrite_existing);
            return std::vector<std::string>{};
          },
          [](const std::string& input, const std::string& scratch) {
            write_bytes(scratch + "/tokenizer_config.json", input);
            const BpeTokenizer tokenizer(scratch + "/tokenizer.json");
            const nlohmann::json config = nlohmann::json::parse(input);
            for (const auto& [key, id] : {std::pair{"bos_token", tokenizer.bos()}, {"eos_token", tokenizer.eos()}}) {
              const nlohmann::json named = config.contains(key) ? config[key] : nlohmann::json();
              const nlohmann::json name = named.is_object() ? named["content"] : named;
              if (name.is_string() && !name.get<std::string>().empty())  // "": not named, the default stays
                require(tokenizer.special_id(name.get<std::string>()) == id,
                        std::string(key) + " is not the special token tokenizer_config.json names");
            }
          }};
}

// A resumed run's metrics.jsonl: any bytes. What it keeps are records of steps up to the
// checkpoint's, whole lines of the input.
Target metrics_log_target() {
  auto dict = with_json({"step", "epoch", "loss", "eval_loss", "lr", "grad_norm", "\n", "3", "4", "3.0"});
  return {"metrics_log", "metrics_log", dict, nullptr, [](const std::string& input, const std::string& scratch) {
            const std::string path = scratch + "/metrics.jsonl";
            write_bytes(path, input);
            { MetricsLog log(path, 3, std::nullopt, [](const std::string&) {}); }
            std::istringstream kept(read_bytes(path));
            for (std::string line; std::getline(kept, line);) {
              const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
              require(record.is_object() && record["step"].is_number_integer() && record["step"].get<int64_t>() <= 3,
                      "metrics.jsonl kept a line that is no record of a step up to the checkpoint's: " + line);
              require(input.find(line) != std::string::npos, "metrics.jsonl kept a line the input did not have");
              require(line.find('\0') == std::string::npos, "metrics.jsonl kept a line with a NUL byte");
            }
          }};
}

// A dataset directory's README.md, whose YAML front matter may list configs (HF's `name`), read
// for a dataset entry. Accepted: the entry's data files are files inside the directory (a card
// never sends training elsewhere: its patterns match under the directory, its data_dir stays in).
Target dataset_card_target() {
  std::vector<std::string> dict{"---\n", "configs:\n", "- config_name: ", "  data_files: ", "  - split: ",
                                "    path: ", "train", "test", "  default: true\n", "  data_dir: ", "a/*.jsonl",
                                "**", "../", "/", "[", "]", "{", "}", ": ", "\n", "'", "\"", "- "};
  return {"dataset_card", "dataset_card", dict,
          [](const std::string& scratch) {
            for (const char* file : {"ds/a/train.jsonl", "ds/a/test.jsonl", "ds/b/part.jsonl", "outside.jsonl"}) {
              fs::create_directories(fs::path(scratch + "/" + file).parent_path());
              write_bytes(scratch + "/" + file, "{\"text\": \"a\"}\n");
            }
            return std::vector<std::string>{};
          },
          [](const std::string& input, const std::string& scratch) {
            write_bytes(scratch + "/ds/README.md", input);
            const std::string dir = scratch + "/ds";
            const TrainConfig config = parse_config(
                "base_model: tiny\ndatasets:\n  - path: " + dir + "\n    type: completion\n", scratch + "/fuzz.yaml");
            for (const std::string& file : config.data.datasets[0].data_files) {
              const fs::path rel = fs::path(file).lexically_normal();
              require(!rel.is_absolute() && rel.generic_string().rfind("..", 0) != 0 &&
                          fs::is_regular_file(fs::path(dir) / rel),
                      "a dataset card made the entry read '" + file + "', not a file inside its directory");
            }
          }};
}

}  // namespace

std::vector<Target> side_file_targets() {
  return {peft_adapter_config_target(), deepspeed_config_target(), tokenizer_config_target(), metrics_log_target(),
          dataset_card_target()};
}

}  // namespace llm::fuzz
