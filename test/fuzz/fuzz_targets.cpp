// The fuzz targets: every parser that reads a user's file. Each writes the input where its parser
// reads it and, when the parser accepts it, checks what it can cheaply (a round trip, every
// tensor readable), so an input that is accepted but misread counts as a bug too.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

// defines: UserError
#include "engine/user_error.h"
// defines: SafetensorsFile, SafetensorsDir, write_safetensors_dir
#include "io/safetensors.h"
// defines: read_tensor_file, verify_tensor_file, write_tensor_file, crc32
#include "io/tensor_file.h"
// defines: save_checkpoint, load_checkpoint, verify_checkpoint
#include "io/checkpoint.h"
// defines: BpeTokenizer
#include "io/bpe_tokenizer.h"
// defines: load_documents, DatasetSpec
#include "io/documents.h"
// defines: append_kto_examples, rotate_completions, kto_sequences
#include "io/kto.h"
// defines: is_orpo_type, tokenize_row
#include "io/orpo.h"
// defines: load_preference_file, tokenize_preference
#include "io/preference.h"
// defines: kIgnoreIndex
#include "engine/ops.h"
// defines: read_hf_config, hf_config_json
#include "model/hf_config.h"
// defines: parse_config, config_to_yaml
#include "train/config.h"
// defines: Target, PropertyFailure
#include "test/fuzz/fuzz.h"

namespace llm::fuzz {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void require(bool ok, const std::string& what) {
  if (!ok) throw PropertyFailure(what);
}

std::vector<std::string> with_json(std::vector<std::string> keys) {
  static const std::vector<std::string> kJsonTokens = {
      "{", "}", "[", "]", "\"", ":", ",", "null", "true", "false", "\"\"", "[]", "{}", "\\u0000",
      "\\ud800", "\xf0\x9f\x98\x80", "\xff", "-1", "1e999", "0.5", "18446744073709551616"};
  for (std::string& k : keys) k = "\"" + k + "\"";
  keys.insert(keys.end(), kJsonTokens.begin(), kJsonTokens.end());
  return keys;
}

namespace {

namespace fs = std::filesystem;

// The YAML config. An accepted config must survive its own round trip: checkpoints carry
// config_to_yaml's text and resume from it.
Target config_target() {
  std::vector<std::string> dict = {"\n", ": ", "- ", "  ", "{", "}", "[", "]", "'", "\"", "&a", "*a",
                                   "<<: ", "!!binary ", "~", "null", "true", "no", ".inf", ".nan",
                                   "0x10", "1e999", "-1", "datasets:\n  - path: /tmp\n    type: ",
                                   "base_model: ", "sequence_len: ", "max_steps: ", "learning_rate: ",
                                   "micro_batch_size: ", "num_hidden_layers: ", "hidden_size: ",
                                   "special_tokens:\n  pad_token: ", "chat_template: ", "roles:\n",
                                   "gradient_checkpointing_kwargs:\n  every_n_layers: "};
  for (const ConfigKey& key : config_keys()) dict.push_back(key.name + ": ");
  return {"config", "config", dict, nullptr, [](const std::string& input, const std::string&) {
            const TrainConfig config = parse_config(input, "fuzz.yaml");
            const std::string yaml = config_to_yaml(config);
            require(config_to_yaml(parse_config(yaml, "round trip")) == yaml,
                    "config_to_yaml's text reads back as another config");
          }};
}

// HF's config.json; an accepted one is written and read back unchanged.
Target hf_config_target() {
  auto dict = with_json({"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                         "num_key_value_heads", "head_dim", "vocab_size", "rope_parameters", "rope_scaling",
                         "rope_theta", "rope_type", "llama3", "factor", "tie_word_embeddings",
                         "max_position_embeddings", "rms_norm_eps", "hidden_act", "attention_bias"});
  return {"hf_config", "hf_config", dict, nullptr, [](const std::string& input, const std::string& scratch) {
            const std::string path = scratch + "/config.json";
            write_bytes(path, input);
            const std::string json = hf_config_json(read_hf_config(path), DType::f32, {1, 2});
            write_bytes(path, json);
            require(hf_config_json(read_hf_config(path), DType::f32, {1, 2}) == json,
                    "hf_config_json's text reads back as another model");
          }};
}

// Small tensors with values that show a misread byte.
std::vector<NamedTensor> fixture_tensors() {
  return {{"a", Tensor::from_floats({1, 2, 3, 4, 5, 6}, {2, 3})},
          {"b", Tensor::from_floats({-1.5f}, {})},
          {"c", Tensor::from_floats({7, 8, 9, 10}, {4})}};
}

// One .safetensors file: header and data. Every tensor of an accepted file must read.
Target safetensors_target() {
  auto dict = with_json({"dtype", "shape", "data_offsets", "__metadata__", "F32", "BF16", "F16", "I64"});
  dict.push_back(std::string(8, '\0'));
  return {"safetensors", "safetensors", dict,
          [](const std::string& scratch) {
            write_safetensors(scratch + "/fixture.safetensors", fixture_tensors(), DType::bf16);
            return std::vector<std::string>{read_bytes(scratch + "/fixture.safetensors")};
          },
          [](const std::string& input, const std::string& scratch) {
            const std::string path = scratch + "/model.safetensors";
            write_bytes(path, input);
            SafetensorsFile file(path);
            for (const SafetensorsEntry& e : file.entries()) {
              file.read(e.name, DType::f32);
              file.read(e.name, DType::bf16);
            }
          }};
}

// model.safetensors.index.json over two real shards.
Target safetensors_index_target() {
  auto dict = with_json({"metadata", "total_size", "weight_map", "a", "b", "c",
                         "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                         "../", "/etc/passwd", "model.safetensors"});
  return {"safetensors_index", "safetensors_index", dict,
          [](const std::string& scratch) {
            const std::string dir = scratch + "/sharded";
            write_safetensors_dir(dir, fixture_tensors(), DType::f32, 32);  // a shard per tensor or two
            return std::vector<std::string>{read_bytes(dir + "/model.safetensors.index.json")};
          },
          [](const std::string& input, const std::string& scratch) {
            const std::string dir = scratch + "/sharded";
            write_bytes(dir + "/model.safetensors.index.json", input);
            SafetensorsDir model(dir);
            for (const std::string& name : model.names()) model.read(name, DType::f32);
          }};
}

// `bytes` with the tensor file header checksum (bytes 16-20) of the header its length names.
std::string with_header_checksum(std::string bytes) {
  uint32_t header_bytes = 0;
  if (bytes.size() < 20) return bytes;
  std::memcpy(&header_bytes, bytes.data() + 12, 4);
  if (header_bytes > bytes.size() - 20) return bytes;
  const uint32_t crc = crc32(bytes.data() + 20, header_bytes);
  std::memcpy(bytes.data() + 16, &crc, 4);
  return bytes;
}

// A tensor file (model.bin, optimizer.bin, trainer.bin). Each input runs twice: as given, and
// with its header checksum made right, so mutations of the header reach the JSON behind it.
// A resume's reader (TensorFileReader) on a file read_tensor_file accepted: each tensor, read
// whole and as a part, must be the accepted bytes. On any other file it may refuse, in one
// UserError, but must not misbehave (the sanitizers watch).
void check_reader_agrees(const std::string& path, const TensorFile* accepted) {
  if (!accepted) {
    try {
      TensorFileReader reader(path);
    } catch (const UserError&) {
    }
    return;
  }
  TensorFileReader reader(path);
  for (const NamedTensor& t : accepted->tensors) {
    const Tensor& want = t.tensor;
    const auto same = [&](const Tensor& got, int64_t begin, int64_t count) {
      const size_t elem = want.nbytes() / static_cast<size_t>(std::max<int64_t>(want.numel(), 1));
      require(got.nbytes() == elem * static_cast<size_t>(count) &&
                  std::memcmp(got.data_ptr(), static_cast<const char*>(want.data_ptr()) + elem * begin, got.nbytes()) == 0,
              "TensorFileReader reads other bytes of " + t.name + " than read_tensor_file");
    };
    same(reader.read(t.name, want.shape(), want.dtype()), 0, want.numel());
    const int64_t half = want.numel() / 2;  // one part a rank: the second half, from an offset
    same(reader.read(t.name, want.shape(), want.dtype(), half, want.numel() - half), half, want.numel() - half);
  }
}

Target tensor_file_target() {
  auto dict = with_json({"metadata", "tensors", "name", "dtype", "shape", "offset", "bytes", "crc32",
                         "f32", "bf16", "i32", "4096", "00000000"});
  dict.push_back(std::string("LLMCKPT\0", 8));
  return {"tensor_file", "tensor_file", dict,
          [](const std::string& scratch) {
            TensorFile file;
            for (NamedTensor& t : fixture_tensors()) file.tensors.push_back(t);
            file.add("ids", Tensor::from_ints({1, 2, 3}, {3}));
            file.metadata = {{"step", "12"}, {"note", "\xc3\xa9"}};
            write_tensor_file(scratch + "/fixture.bin", file);
            return std::vector<std::string>{read_bytes(scratch + "/fixture.bin")};
          },
          [](const std::string& input, const std::string& scratch) {
            const std::string path = scratch + "/model.bin";
            const std::string fixed = with_header_checksum(input);
            std::string first_error;
            for (const std::string* bytes : {&input, &fixed}) {
              write_bytes(path, *bytes);
              try {
                const TensorFile accepted = read_tensor_file(path);
                check_reader_agrees(path, &accepted);
              } catch (const UserError& e) {
                check_reader_agrees(path, nullptr);
                // verify_tensor_file streams the same checks: it must refuse the same files.
                bool refused = false;
                try {
                  verify_tensor_file(path);
                } catch (const UserError&) {
                  refused = true;
                }
                require(refused, std::string("verify_tensor_file accepts what read_tensor_file refuses: ") + e.what());
                if (first_error.empty()) first_error = e.what();
                continue;
              }
              verify_tensor_file(path);
            }
            if (!first_error.empty()) throw UserError(first_error);
          }};
}

// manifest.json of a real checkpoint: the rest of the checkpoint stays valid, so only the
// manifest's reading decides.
Target manifest_target() {
  auto dict = with_json({"format", "step", "run_id", "files", "size", "checksum", "config.yaml",
                         "model.bin", "optimizer.bin", "trainer.bin", "manifest.json", "../", "0123456789abcdef"});
  return {"manifest", "manifest", dict,
          [](const std::string& scratch) {
            CheckpointContents c;
            c.run_id = "0123456789abcdef";
            c.config_yaml = "base_model: tiny\n";
            c.model.add("model.embed_tokens.weight", Tensor::full({4, 3}, 0.5f, DType::f32));
            c.optimizer.add("exp_avg.model.embed_tokens.weight", Tensor::full({4, 3}, -0.5f, DType::f32));
            c.trainer.add("rng_state", Tensor::from_ints({1, 2, 3}, {3}));
            const std::string dir = save_checkpoint(scratch + "/out", 1, c);
            return std::vector<std::string>{read_bytes(dir + "/manifest.json")};
          },
          [](const std::string& input, const std::string& scratch) {
            const std::string dir = scratch + "/out/" + checkpoint_dir_name(1);
            write_bytes(dir + "/manifest.json", input);
            const bool sealed = verify_checkpoint(dir);
            require(load_checkpoint(dir).sealed == sealed, "load_checkpoint and verify_checkpoint disagree");
          }};
}

// The tiktoken ranks file. An accepted one must decode what it encodes.
Target tokenizer_target() {
  return {"tokenizer", "tokenizer", {"\n", " ", "=", "==", "\r\n", "0", "128000", "-1", "99999999999", "AA==", "IA=="},
          nullptr, [](const std::string& input, const std::string& scratch) {
            const std::string path = scratch + "/tokenizer.model";
            write_bytes(path, input);
            BpeTokenizer tokenizer(path);
            const std::string text = "Hello, world! 123 caf\xc3\xa9 <|eot_id|>\n\n  x";
            require(tokenizer.decode(tokenizer.encode(text)) == text, "decode(encode(text)) differs from text");
          }};
}

// Hugging Face's tokenizer.json. An accepted one must decode what it encodes, and each added
// token's name must encode, with specials, to its id.
Target hf_tokenizer_json_target() {
  auto dict = with_json({"model", "type", "BPE", "vocab", "merges", "added_tokens", "id", "content",
                         "pre_tokenizer", "pretokenizers", "Split", "Sequence", "pattern", "Regex", "\u0120"});
  return {"hf_tokenizer_json", "hf_tokenizer_json", dict, nullptr,
          [](const std::string& input, const std::string& scratch) {
            write_bytes(scratch + "/tokenizer.json", input);
            BpeTokenizer tokenizer(scratch + "/tokenizer.json");
            const std::string text = "Hello, world! 123 caf\xc3\xa9 <|eot_id|>\n\n  x";
            require(tokenizer.decode(tokenizer.encode(text)) == text, "decode(encode(text)) differs from text");
            for (const nlohmann::json& t : nlohmann::json::parse(input).value("added_tokens", nlohmann::json::array())) {
              const std::string name = t["content"].get<std::string>();
              require(tokenizer.encode_with_specials(name) == std::vector<int32_t>{t["id"].get<int32_t>()},
                      "added token " + name + " does not encode to its id");
            }
          }};
}

// special_tokens.json beside a valid ranks file: the special names, in id order.
Target tokenizer_specials_target() {
  auto dict = with_json({"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>",
                         "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_0|>"});
  return {"tokenizer_specials", "tokenizer_specials", dict,
          [](const std::string& scratch) {
            std::string ranks;  // the 256 single bytes: the smallest valid ranks file
            for (int byte = 0; byte < 256; byte++) {
              static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
              ranks += std::string{digits[byte >> 2], digits[(byte & 3) << 4], '=', '='} + " " +
                       std::to_string(byte) + "\n";
            }
            write_bytes(scratch + "/tokenizer.model", ranks);
            return std::vector<std::string>{};
          },
          [](const std::string& input, const std::string& scratch) {
            write_bytes(scratch + "/special_tokens.json", input);
            BpeTokenizer tokenizer(scratch + "/tokenizer.model");
            // Accepted: each name is the id after the 256 ranks at its position, whole.
            const nlohmann::json names = nlohmann::json::parse(input);
            for (size_t i = 0; i < names.size(); i++) {
              const std::string name = names[i].get<std::string>();
              const int32_t id = int32_t(256 + i);
              require(tokenizer.special_id(name) == id && tokenizer.encode_with_specials(name) == std::vector<int32_t>{id},
                      "special token " + name + " does not encode to its id");
            }
          }};
}

// A dataset file of one `type`, as `datasets:` names it.
Target documents_target(const std::string& type, std::vector<std::string> keys) {
  return {"documents_" + type, "documents_" + type, with_json(std::move(keys)), nullptr,
          [type](const std::string& input, const std::string& scratch) {
            DatasetSpec spec;
            spec.path = scratch + "/data.jsonl";
            spec.type = type;
            spec.message_field_training = "training";  // read by chat_template rows only
            spec.message_field_training_detail = "train_detail";
            spec.user_defined.system_prompt = "Default {system}";  // user_defined rows: with a system format
            spec.user_defined.system_format = "<<{system}>> {{ }}";
            write_bytes(spec.path, input);
            if (type == "completion")  // the same bytes as text: a row per line, and fortune-style documents
              for (const char* text_file : {"/data.txt", "/data"}) {
                DatasetSpec text = spec;
                text.path = scratch + text_file;
                write_bytes(text.path, input);
                try {
                  load_documents(text, ByteTokenizer());
                } catch (const UserError&) {  // NUL bytes, or no document: refused in one line
                }
              }
            load_documents(spec, ByteTokenizer());
          }};
}

// A preference dataset file read as each kind of preference type reads rows (ORPO's too), every
// pair tokenized: a kept pair's sequences fit max_length and share their masked prompt.
Target preference_pairs_target() {
  return {"preference_pairs", "preference_pairs",
          with_json({"messages", "chosen", "rejected", "prompt", "question", "input", "instruction", "system",
                     "chosen_response", "role", "content", "user", "assistant"}),
          nullptr, [](const std::string& input, const std::string& scratch) {
            const std::string path = scratch + "/pairs.jsonl";
            write_bytes(path, input);
            std::optional<UserError> refused;  // rethrown when every type refuses the file
            int read = 0;
            for (const char* type :
                 {"chat_template.default", "chat_template.argilla_chat", "llama3.default", "chatml.ultra", "chat_template.argilla"}) {
              const bool orpo = is_orpo_type(type);  // TRL's ORPO rule, its prompt cut to 20 tokens
              DatasetSpec spec;
              spec.path = path;
              spec.type = type;
              spec.chat_template = "chatml";
              const ByteTokenizer tokenizer;
              std::vector<PreferenceText> pairs;
              try {
                load_preference_file(path, spec, tokenizer, pairs);
              } catch (const UserError& e) {
                refused = e;  // refused as this type; the next may read it
                continue;
              }
              read++;
              for (const PreferenceText& pair : pairs) {
                const std::optional<PreferenceExamples> ex =
                    orpo ? tokenize_row(pair, tokenizer, 48) : tokenize_preference(pair, tokenizer, 48);
                if (!ex) continue;
                for (const Example* e : {&ex->chosen, &ex->rejected}) {
                  require(!e->tokens.empty() && e->tokens.size() <= 48 && e->labels.size() == e->tokens.size(),
                          "a sequence longer than max_length, or labels of another length");
                  require((orpo || e->tokens[0] == tokenizer.bos()) && e->labels[0] == kIgnoreIndex, "no masked BOS first");
                }
                const size_t prompt = static_cast<size_t>(
                    std::find_if(ex->chosen.labels.begin(), ex->chosen.labels.end(), [](int32_t l) { return l != kIgnoreIndex; }) -
                    ex->chosen.labels.begin());
                require(prompt < ex->chosen.tokens.size(), "a kept pair whose chosen response has no target");
                require(std::equal(ex->chosen.tokens.begin(), ex->chosen.tokens.begin() + prompt, ex->rejected.tokens.begin()),
                        "chosen and rejected do not share their prompt");
              }
            }
            if (read == 0 && refused) throw *refused;
          }};
}

// A KTO dataset file read as KTO types read rows, its rows made into training and KL sequences:
// every kept row fits the length rule, and each sequence is the row's prompt, masked, then a
// completion, cut to max_length.
Target kto_rows_target() {
  return {"kto_rows", "kto_rows",
          with_json({"prompt", "completion", "label", "system", "instruction", "question", "role", "content", "true",
                     "false"}),
          nullptr, [](const std::string& input, const std::string& scratch) {
            DatasetSpec spec;
            spec.path = scratch + "/rows.jsonl";
            write_bytes(spec.path, input);
            std::optional<UserError> refused;
            int read = 0;
            for (const char* type : {"llama3.ultra", "llama3.argilla_chat", "chatml.argilla_chat", "chatml.intel"}) {
              spec.type = type;
              const ByteTokenizer tokenizer;
              std::vector<Example> examples;
              ExampleStats stats;
              try {
                append_kto_examples(spec, tokenizer, 96, examples, stats);
              } catch (const UserError& e) {
                refused = e;
                continue;
              }
              read++;
              require(examples.size() % 2 == 0 && stats.documents == stats.dropped + int64_t(examples.size() / 2),
                      "rows kept and dropped do not add up");
              ExampleSet cached;
              for (const Example& e : examples) cached.add(e);
              std::vector<int64_t> order(examples.size() / 2), kl_source(order.size());
              for (size_t r = 0; r < order.size(); r++) order[r] = static_cast<int64_t>(order.size() - 1 - r);
              rotate_completions(order, 3, kl_source);
              const ExampleSet seqs = kto_sequences(cached, kl_source, 40);
              require(seqs.size() == cached.size(), "not two sequences a row");
              for (int64_t e = 0; e < seqs.size(); e++) {
                const int64_t row = e / 2, prompt = cached.length(2 * row);
                const int64_t completion = e % 2 == 0 ? 2 * row + 1 : 2 * kl_source[row] + 1;
                require(seqs.length(e) == std::min<int64_t>(40, prompt + cached.length(completion)),
                        "a sequence is not its prompt and a completion cut to max_length");
                for (int64_t i = 0; i < seqs.length(e); i++)
                  require((i < prompt) == (seqs.labels[seqs.offsets[e] + i] == kIgnoreIndex),
                          "the prompt takes loss, or a completion token does not");
                require(seqs.desirable[e] == cached.desirable[e - e % 2], "a sequence lost its row's label");
              }
            }
            if (read == 0 && refused) throw *refused;
          }};
}

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> all = [] {
    std::vector<Target> main_inputs = {
        config_target(),
        hf_config_target(),
        safetensors_target(),
        safetensors_index_target(),
        tensor_file_target(),
        manifest_target(),
        tokenizer_target(),
        tokenizer_specials_target(),
        hf_tokenizer_json_target(),
        documents_target("completion", {"text"}),
        documents_target("alpaca", {"instruction", "input", "output"}),
        documents_target("user_defined", {"instruction", "input", "output", "system"}),
        documents_target("chat_template", {"messages", "role", "content", "user", "assistant", "system", "tool",
                                           "training", "train_detail", "begin_offset", "end_offset", "train"}),
        documents_target("input_output", {"segments", "text", "label"}),
        documents_target("pretokenized", {"input_ids", "labels", "attention_mask", "-100"}),
    };
    for (Target& t : side_file_targets()) main_inputs.push_back(std::move(t));
    main_inputs.push_back(chat_template_jinja_target());
    main_inputs.push_back(parquet_target());
    main_inputs.push_back(arrow_target());
    main_inputs.push_back(csv_target());
    main_inputs.push_back(preference_pairs_target());
    main_inputs.push_back(kto_rows_target());
    main_inputs.push_back(reward_pairs_target());
    main_inputs.push_back(process_reward_rows_target());
    return main_inputs;
  }();
  return all;
}

}  // namespace llm::fuzz
