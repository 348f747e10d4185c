// Tests for train/config: Axolotl-style YAML -> TrainConfig (presets, HF fields, rope_scaling,
// overrides, size bounds; attention's keys: test_config_attention), each error class as one line naming file, line and key.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "test/config_fixture.h"
#include "train/config_fields.h"

using namespace llm;
using namespace llm::config_test;

TEST_CASE("presets: base_model picks each preset's shape") {
  for (const std::string& name : llama_preset_names()) {
    CAPTURE(name);
    TrainConfig c = parse("base_model: " + name + "\n");
    LlamaConfig p = *llama_preset(name);
    CHECK(c.base_model == name);
    CHECK(c.model.hidden_size == p.hidden_size);
    CHECK(c.model.num_hidden_layers == p.num_hidden_layers);
    CHECK(c.model.num_key_value_heads == p.num_key_value_heads);
    CHECK(c.model.vocab_size == p.vocab_size);
    CHECK(c.model.rope.factor == p.rope.factor);
    CHECK(c.model.tie_word_embeddings == p.tie_word_embeddings);
  }
  setenv("HF_HUB_CACHE", (scratch().dir / "empty_hub").c_str(), 1);  // whatever this machine has cached
  std::string e = error_with("base_model: meta-llama/Meta-Llama-3-8B\n");
  unsetenv("HF_HUB_CACHE");
  CHECK(starts_with(e, "cfg.yaml:3: base_model: expected a preset (tiny, llama3-1b"));
  CHECK(e.find("an HF model directory holding config.json or a hub id in the local HF cache") != std::string::npos);
  CHECK(e.find("llama3-8b") != std::string::npos);
  // A hub id: looked for in the hub cache (test_hub_cache), which holds none here.
  CHECK(e.find("got hub id 'meta-llama/Meta-Llama-3-8B' at revision main, which the local Hugging Face cache "
               "does not hold") != std::string::npos);
}

TEST_CASE("HF fields override the preset wherever they stand in the file") {
  TrainConfig c = parse(
      "num_hidden_layers: 2\nbase_model: llama3-1b\nhidden_size: 512\nintermediate_size: 1024\n"
      "num_attention_heads: 8\nnum_key_value_heads: 2\nvocab_size: 1000\n"
      "max_position_embeddings: 4096\nrope_theta: 10000\nrms_norm_eps: 1e-6\n"
      "tie_word_embeddings: false\ninitializer_range: 0.01\n");
  const LlamaConfig& m = c.model;
  CHECK(m.num_hidden_layers == 2);
  CHECK(m.hidden_size == 512);
  CHECK(m.intermediate_size == 1024);
  CHECK(m.num_attention_heads == 8);
  CHECK(m.num_key_value_heads == 2);
  CHECK(m.vocab_size == 1000);
  CHECK(m.max_position_embeddings == 4096);
  CHECK(m.rope.theta == 10000.0f);
  CHECK(m.rope.factor == 32.0f);  // llama3-1b's scaling stays
  CHECK(m.rms_norm_eps == 1e-6f);
  CHECK(!m.tie_word_embeddings);
  CHECK(m.initializer_range == 0.01f);
  CHECK(c.unknown_keys.empty());
  // LlamaConfig::validate() runs on the result.
  std::string e = error_with("num_attention_heads: 5\n");
  CHECK(starts_with(e, "cfg.yaml: model: hidden_size must be a multiple of num_attention_heads"));
}

TEST_CASE("rope_scaling: a llama3 map, the legacy `type` spelling, null for none") {
  TrainConfig c = parse(
      "rope_scaling:\n  rope_type: llama3\n  factor: 8\n  low_freq_factor: 2\n"
      "  high_freq_factor: 8\n  original_max_position_embeddings: 1024\n");
  CHECK(c.model.rope.factor == 8.0f);
  CHECK(c.model.rope.low_freq_factor == 2.0f);
  CHECK(c.model.rope.high_freq_factor == 8.0f);
  CHECK(c.model.rope.original_max_position_embeddings == 1024);
  c = parse("rope_scaling: {type: llama3, factor: 16, low_freq_factor: 1, high_freq_factor: 4, "
            "original_max_position_embeddings: 8192}\n");
  CHECK(c.model.rope.factor == 16.0f);
  CHECK(c.model.rope.original_max_position_embeddings == 8192);
  // transformers' rope validation refuses a llama3 map without one of its three numbers (KeyError);
  // the original length is max_position_embeddings where not given, as transformers 5 fills it in.
  CHECK(error_with("rope_scaling: {type: llama3, factor: 16}\n") ==
        "cfg.yaml:3: rope_scaling.low_freq_factor: expected a number (llama3's scaling needs factor, low_freq_factor "
        "and high_freq_factor, as transformers), got none");
  c = parse("max_position_embeddings: 2048\nrope_scaling: {type: llama3, factor: 4, low_freq_factor: 1, high_freq_factor: 4}\n");
  CHECK(c.model.rope.original_max_position_embeddings == 2048);
  c = parse("base_model: llama3-1b\nrope_scaling:\n");
  CHECK(c.model.rope.factor == 0.0f);
  CHECK(c.model.rope.theta == 500000.0f);

  // YaRN and linear scaling as HF's (engine/ops.h); the original length defaults to max_position_embeddings.
  c = parse("base_model: llama3-1b\nmax_position_embeddings: 4096\nrope_scaling: {type: yarn, factor: 2.0}\n");
  CHECK(c.model.rope.type == RopeType::yarn);
  CHECK(c.model.rope.factor == 2.0f);
  CHECK(c.model.rope.original_max_position_embeddings == 4096);
  CHECK(c.model.rope.theta == 500000.0f);
  CHECK(parse("rope_scaling: {rope_type: linear, factor: 4}\n").model.rope.type == RopeType::linear);
  CHECK(error_with("rope_scaling: {rope_type: longrope, factor: 4}\n") ==
        "cfg.yaml:3: rope_scaling.rope_type: expected llama3, linear, yarn or dynamic (the scalings built; longrope "
        "is not), got 'longrope'");
  CHECK(error_with("rope_scaling: {rope_type: yarn}\n") ==
        "cfg.yaml:3: rope_scaling.factor: expected a number (yarn's scaling needs factor, as transformers), got none");
  CHECK(error_with("rope_scaling: {factor: 4}\n") ==
        "cfg.yaml:3: rope_scaling.rope_type: expected llama3, linear, yarn or dynamic, got none");
  CHECK(error_with("rope_scaling:\n  rope_type: llama3\n  factor: 0.5\n") ==
        "cfg.yaml:5: rope_scaling.factor: expected a number >= 1, got 0.5");
  CHECK(error_with("rope_scaling: 8\n") ==
        "cfg.yaml:3: rope_scaling: expected a map {rope_type: llama3, linear, yarn or dynamic, factor, ...} or null, got 8");
  CHECK(
      starts_with(error_with("rope_scaling: {rope_type: llama3, factor: 8, low_freq_factor: 4, high_freq_factor: 4, "
                             "original_max_position_embeddings: 8192}\n"),
                  "cfg.yaml:3: rope_scaling: expected low_freq_factor < high_freq_factor, got 4 and 4"));
  // Another type's field moves no frequency: listed unused, as transformers warns of it.
  CHECK(parse("rope_scaling: {rope_type: linear, factor: 2, beta_fast: 32}\n").unknown_keys ==
        std::vector<std::string>{"rope_scaling.beta_fast"});
}

TEST_CASE("wrong types and out-of-range values: file, line, key, expected, got") {
  CHECK(error_with("max_steps: many\n") ==
        "cfg.yaml:3: max_steps: expected an integer >= 1, got 'many'");
  CHECK(error_with("seed: 1\nmax_steps: [1, 2]\n") ==
        "cfg.yaml:4: max_steps: expected an integer >= 1, got a list");
  CHECK(error_with("learning_rate: {a: 1}\n") ==
        "cfg.yaml:3: learning_rate: expected a number > 0, got a map");
  CHECK(error_with("adam_beta2: 1\n") ==
        "cfg.yaml:3: adam_beta2: expected a number in [0, 1), got 1");
  CHECK(error_with("optimizer: lamb\n") ==
        "cfg.yaml:3: optimizer: expected one of adamw_torch, adamw_torch_fused, adamw, paged_adamw_32bit, "
        "adamw_8bit, adamw_bnb_8bit, paged_adamw_8bit, adopt_adamw, lion_32bit, lion_8bit, paged_lion_32bit, "
        "paged_lion_8bit, adafactor, ademamix, ademamix_8bit, paged_ademamix_32bit, paged_ademamix_8bit, muon, "
        "optimi_adamw, adamc, came_pytorch, schedule_free_adamw, schedule_free_radam, schedule_free_sgd, adamw_torch_8bit, "
        "adamw_torch_4bit, ao_adamw_fp8, sgd, adagrad, rmsprop, rmsprop_bnb, rmsprop_bnb_32bit, rmsprop_bnb_8bit, "
        "galore_adamw, galore_adamw_8bit, galore_adafactor, galore_adamw_layerwise, galore_adamw_8bit_layerwise, "
        "galore_adafactor_layerwise, apollo_adamw, apollo_adamw_layerwise, q_galore_adamw8bit, stable_adamw, grokadamw, lomo, adalomo, "
        "got 'lamb'");
  CHECK(error_with("zero_stage: 4\n") == "cfg.yaml:3: zero_stage: expected an integer in [0, 3], got 4");
  // YAML's "\0" escape: a path holding a NUL byte would name another file than it reads as.
  CHECK(error_with("output_dir: \"out\\0put\"\n") ==
        "cfg.yaml:3: output_dir: expected a string without NUL bytes, got one with a NUL byte");
  // Each line alone on line 3: the message names its key (the text before the first ':').
  for (const std::string line : {"sequence_len: 0",
                                 "micro_batch_size: -1",
                                 "gradient_accumulation_steps: 0",
                                 "num_epochs: 0",
                                 "learning_rate: 0",
                                 "learning_rate: fast",
                                 "adam_beta1: -0.1",
                                 "adam_epsilon: -1",
                                 "weight_decay: -0.01",
                                 "max_grad_norm: -1",
                                 "val_set_size: -0.5",
                                 "val_set_size: 2.5",
                                 "logging_steps: 0",
                                 "warmup_ratio: 1.5",
                                 "warmup_steps: -2",
                                 "eval_steps: 1.5",
                                 "cosine_min_lr_ratio: 2",
                                 "seed: -3",
                                 "local_rank: -2",
                                 "tf32: maybe",
                                 "sample_packing: [true]",
                                 "output_dir: [a, b]",
                                 "lr_scheduler: cyclic",
                                 "device: tpu",
                                 "bf16: sometimes",
                                 "attn_implementation: flex",
                                 "s2_group_size_ratio: 0",
                                 "s2_group_size_ratio: 1.5",
                                 "hidden_size: wide",
                                 "max_position_embeddings: 0",
                                 "rms_norm_eps: 0",
                                 "tie_word_embeddings: 2",
                                 "gradient_checkpointing_kwargs: 5",
                                 "resume_from_checkpoint: /no/such/checkpoint"}) {
    CAPTURE(line);
    std::string e = error_with(line + "\n");
    CHECK(starts_with(e, "cfg.yaml:3: " + line.substr(0, line.find(':')) + ": expected "));
    CHECK(e.find(", got ") != std::string::npos);
  }
  CHECK(
      error_with("gradient_checkpointing_kwargs: {every_n_layers: 0}\n") ==
      "cfg.yaml:3: gradient_checkpointing_kwargs.every_n_layers: expected an integer >= 1, got 0");
  CHECK(error_with("gradient_checkpointing_kwargs:\n  use_reentrant: maybe\n") ==
        "cfg.yaml:4: gradient_checkpointing_kwargs.use_reentrant: expected true or false, got "
        "'maybe'");
  CHECK(error_with("bf16: sometimes\n") ==
        "cfg.yaml:3: bf16: expected true or false or auto or full, got 'sometimes'");
}

TEST_CASE("datasets: a list of {path, type}; paths must exist") {
  const std::string data = scratch().data;
  TrainConfig c = parse_config("datasets:\n  - path: " + data +
                                   "\n    type: alpaca\n  - path: " + scratch().dir.string() + "\n",
                               "cfg.yaml");
  REQUIRE(c.data.datasets.size() == 2);
  CHECK(c.data.datasets[0].type == "alpaca");
  CHECK(c.data.datasets[1].type == "completion");
  CHECK(error_of("datasets:\n  - path: " + data + "\n    type: sharegpt\n") ==
        "cfg.yaml:3: datasets[0].type: expected chat_template, which Axolotl replaced sharegpt with (ShareGPT rows: "
        "field_messages: conversations, message_property_mappings: {role: from, content: value}; human and gpt are "
        "the default user and assistant roles), got 'sharegpt'");
  CHECK(error_of("datasets:\n  - path: " + data + "\n    type: vicuna\n") ==
        "cfg.yaml:3: datasets[0].type: expected one of completion, alpaca, chat_template, input_output, pretokenized, "
              "bradley_terry.chat_template, stepwise_supervised, "
        "llama3.default, llama3.argilla_chat, llama3.icr, llama3.intel, llama3.prompt_pairs, llama3.ultra, "
        "chatml.default, chatml.argilla_chat, chatml.icr, chatml.intel, chatml.prompt_pairs, chatml.ultra, "
        "chatml.argilla, chat_template.default, chat_template.argilla_chat, passthrough.default, chat_template.argilla, "
            "llama3.argilla, llama3, chatml, passthrough, got 'vicuna'");
  CHECK(
      error_of("datasets:\n  - path: /no/such/data\n") ==
      "cfg.yaml:2: datasets[0].path: expected an existing file or directory, got '/no/such/data'");
  // A hub id's shape with a data file's extension is a local file that is missing.
  CHECK(error_of("datasets:\n  - path: data/train.jsonl\n") ==
        "cfg.yaml:2: datasets[0].path: expected an existing file or directory (looked for beside the config, then in "
        "the working directory), got 'data/train.jsonl'");
  CHECK(error_of("datasets:\n  - type: completion\n") ==
        "cfg.yaml:2: datasets[0]: expected a path in the dataset entry, got none");
  CHECK(error_of("datasets:\n  path: " + data + "\n") ==
        "cfg.yaml:1: datasets: expected a list of {path, type} entries, got a map");
  CHECK(error_of("datasets: []\n") ==
        "cfg.yaml:1: datasets: expected a list of {path, type} entries, got an empty list");
  CHECK(error_of("learning_rate: 0.1\n") ==
        "cfg.yaml: datasets: expected a list of {path, type} entries (or a pretraining_dataset), got none");
  // split: HF's slice of the rows (Axolotl's fft-8b-liger-fsdp example takes train[:20%]).
  const std::string sliced = "datasets:\n  - path: " + data + "\n    split: train[:20%]\n";
  CHECK(parse_config(sliced, "cfg.yaml").data.datasets[0].split == "train[:20%]");
  CHECK(parse_config(config_to_yaml(parse_config(sliced, "cfg.yaml")), "re.yaml").data.datasets[0].split == "train[:20%]");
  CHECK(error_of("datasets:\n  - path: " + data + "\n    split: validation\n") ==
        "cfg.yaml:3: datasets[0].split: expected train or a slice of it (a file is one split, train), got "
        "'validation'");
}

TEST_CASE("relative dataset paths: beside the config file, else relative to the CWD") {
  const Scratch& s = scratch();
  s.write("sub/near.txt", "x");
  s.write("far.txt", "x");
  std::string cfg = s.write("sub/cfg.yaml", "datasets:\n  - path: near.txt\n  - path: far.txt\n");
  const fs::path cwd = fs::current_path();
  fs::current_path(s.dir);
  TrainConfig c = load_config(cfg);
  fs::current_path(cwd);
  REQUIRE(c.data.datasets.size() == 2);
  CHECK(c.data.datasets[0].path == (s.dir / "sub" / "near.txt").string());
  CHECK(c.data.datasets[1].path == (s.dir / "far.txt").string());  // absolute: a resume may start elsewhere
  CHECK(c.source == cfg);
}

TEST_CASE("tokenizer_config: a ranks file, or a directory holding one, resolved to the file") {
  const Scratch& s = scratch();
  fs::create_directories(s.dir / "tok" / "original");
  fs::create_directories(s.dir / "hf" / "original");
  const std::string direct = s.write("tok/tokenizer.model", "x");
  const std::string original = s.write("hf/original/tokenizer.model", "x");
  CHECK(parse("").tokenizer_config.empty());
  CHECK(parse("tokenizer_config: " + direct + "\n").tokenizer_config == direct);
  CHECK(parse("tokenizer_config: " + (s.dir / "tok").string() + "\n").tokenizer_config == direct);
  CHECK(parse("tokenizer_config: " + (s.dir / "hf").string() + "\n").tokenizer_config == original);
  // Relative: beside the config file first, as dataset paths.
  const std::string cfg = s.write("sub/tok.yaml", base() + "tokenizer_config: ../hf\n");
  CHECK(load_config(cfg).tokenizer_config == original);
  const std::string expected =
      "expected a tokenizer.json or tiktoken tokenizer.model file, or a directory (or hub id in the local HF "
      "cache) holding tokenizer.json, tokenizer.model or original/tokenizer.model, got ";
  CHECK(error_with("tokenizer_config: " + (s.dir / "sub").string() + "\n") ==
        "cfg.yaml:3: tokenizer_config: " + expected + "'" + (s.dir / "sub").string() + "'");
  CHECK(error_with("tokenizer_config: [a]\n") == "cfg.yaml:3: tokenizer_config: expected a non-empty string, got a list");
  CHECK(error_with("tokenizer_config: /no/such\n", {{"tokenizer_config", "/no/where"}}) ==
        "cfg.yaml: --tokenizer_config: " + expected + "'/no/where'");
}

TEST_CASE("checks across keys: early stopping, either-or pairs, sequence_len") {
  CHECK(error_with("early_stopping_patience: 3\n") ==
        "cfg.yaml:3: early_stopping_patience: expected an eval set (val_set_size > 0 or test_datasets), got "
        "val_set_size 0");
  const std::string early = "early_stopping_patience: 3\nval_set_size: 0.1\neval_steps: 4\n";
  CHECK(
      error_with(early + "save_steps: 10\n") ==
      "cfg.yaml:6: save_steps: expected a multiple of eval_steps, 4, with early stopping, got 10");
  CHECK(parse(early + "save_steps: 8\n").early_stopping_patience == 3);
  CHECK(parse("eval_steps: 4\nsave_steps: 10\n").save_steps == 10);  // no early stopping: fine
  // Shares of the total steps (HF's eval_steps / save_steps below 1), compared as HF does.
  CHECK(parse(early + "save_steps: 8\n").save_steps == 8);
  const std::string early_share = "early_stopping_patience: 3\nval_set_size: 0.1\neval_steps: 0.1\n";
  CHECK(parse(early_share + "save_steps: 0.3\n").save_steps == doctest::Approx(0.3));
  CHECK(error_with(early_share + "save_steps: 0.25\n") ==
        "cfg.yaml:6: save_steps: expected a multiple of eval_steps, 0.1, with early stopping, got 0.25");
  CHECK(error_with(early_share + "save_steps: 10\n") ==
        "cfg.yaml:6: save_steps: expected a share of the steps as eval_steps is, or both whole step counts, "
        "with early stopping, got 10");

  CHECK(error_with("warmup_steps: 10\nwarmup_ratio: 0.1\n") ==
        "cfg.yaml:4: warmup_ratio: expected warmup_steps or warmup_ratio, not both, got both");
  CHECK(starts_with(error_with("evals_per_epoch: 2\neval_steps: 5\n"),
                    "cfg.yaml:3: evals_per_epoch:"));
  CHECK(starts_with(error_with("saves_per_epoch: 2\nsave_steps: 5\n"),
                    "cfg.yaml:3: saves_per_epoch:"));
  CHECK(parse("warmup_steps: 0\n").warmup_steps == 0);
  CHECK(parse("tf32: auto\n").tf32 == "auto");  // Axolotl 0.19's spelling: TF32 where the GPU has it

  // Axolotl raises the model's max_position_embeddings to sequence_len, saying so.
  const TrainConfig longer = parse("sequence_len: 4096\n");
  CHECK(longer.model.max_position_embeddings == 4096);
  CHECK(longer.adjustments ==
        std::vector<std::string>{"max_position_embeddings 2048 raised to sequence_len 4096, as Axolotl does"});
  CHECK(parse("sequence_len: 4096\nmax_position_embeddings: 8192\n").data.sequence_len == 4096);
}

TEST_CASE("YAML syntax, structure and file errors") {
  std::string e = error_of("a: [1, 2\nb: 3\n");
  CHECK(starts_with(e, "cfg.yaml:"));
  CHECK(e.find("YAML syntax error") != std::string::npos);
  CHECK(error_of("- a\n- b\n") == "cfg.yaml: expected a map of keys at the top level, got a list");
  // What the user wrote is quoted on the message's one line (found by llm_fuzz config): a block
  // scalar's newlines, yaml-cpp's naming of the character after a NUL, control characters.
  CHECK(error_of("|\n  two\n  lines\n") == "cfg.yaml: expected a map of keys at the top level, got 'two\\nlines\\n'");
  CHECK(error_of(std::string("a: x\0\n", 6)) == "cfg.yaml:1: YAML syntax error: a NUL byte (YAML text holds none)");
  CHECK(error_of("a: " + std::string(100000, '[') + "\n") == "cfg.yaml:2: YAML syntax error: nested deeper than the YAML reader takes");
  CHECK(error_of("a\rb\n") == "cfg.yaml: expected a map of keys at the top level, got 'a\\rb'");
  // Axolotl's yaml.safe_load: UTF-8 text, one document (a second one was dropped unread).
  CHECK(error_of("a: 1\nb: o\xff\n") == "cfg.yaml:2: expected UTF-8 text, got a byte that starts no UTF-8 character at byte 10");
  const std::string second = "cfg.yaml:3: expected one YAML document, got a second one starting here (a config is one "
                             "mapping, as Axolotl's yaml.safe_load reads it)";
  CHECK(error_of("# c\nmax_steps: 2\n---\nmax_steps: 3\n") == second);
  CHECK(error_of("---\nmax_steps: 2\n--- # empty\n") == second);
  CHECK(error_of("max_steps: 2\n...\nmax_steps: 3\n") == second);
  CHECK(error_of("%YAML 1.2\n--- {max_steps: 2}\n...\n%YAML 1.2\n") == "cfg.yaml:4:" + second.substr(11));
  CHECK(error_of("---\n# nothing\n---\nmax_steps: 3\n") == second);  // an empty document first
  CHECK(error_of("\xEF\xBB\xBF# a BOM, skipped as PyYAML does\n---\n" + base()) == "(no error)");
  // A checkpoint's own config names paths as the filesystem spells them, UTF-8 or not.
  CHECK(error_of(std::string(kResolvedConfigHeader) + "\n" + base() + "output_dir: /tmp/lat\xe9\n") == "(no error)");
  CHECK(error_of("%YAML 1.2\n---\n" + base() + "max_steps: 2\nx: |\n  ---\n...\n# end\n") == "(no error)");
  const std::string missing = (scratch().dir / "nope.yaml").string();
  try {
    load_config(missing);
    FAIL("no error");
  } catch (const UserError& err) {
    CHECK(std::string(err.what()) == missing + ": expected a YAML config file, got no such file");
  }
  const std::string loop = (scratch().dir / "loop.yaml").string();
  std::filesystem::create_symlink("loop.yaml", loop);
  try {
    load_config(loop);
    FAIL("no error");
  } catch (const UserError& err) {
    CHECK(std::string(err.what()) == loop + ": expected a YAML config file, got a loop of symbolic links");
  }
}

// Held to PyYAML 6.0.3's safe_load on 3,000 random documents of anchors and merges (nested, lists
// of them, in lists): the same maps.
TEST_CASE("YAML merge keys (<<): applied as Axolotl's yaml.safe_load applies them, at any depth") {
  const TrainConfig top = parse("defaults: &d\n  max_steps: 7\n  learning_rate: 1.0e-3\n<<: *d\nmax_steps: 9\n");
  CHECK(top.max_steps == 9);  // the map's own key wins
  CHECK(top.learning_rate == doctest::Approx(1e-3));
  CHECK(top.unknown_keys == std::vector<std::string>{"defaults"});
  // A dataset entry's keys from an anchor: a list of maps, the first that gives a key winning.
  const std::string data = scratch().data;
  const TrainConfig entry = parse("common: &c {type: completion, field: body}\nother: &o {field: text, split: train}\n"
                                  "datasets:\n  - {<<: [*c, *o], path: " + data + "}\n");
  REQUIRE(entry.data.datasets.size() == 1);
  CHECK(entry.data.datasets[0].field == "body");
  CHECK(entry.data.datasets[0].path == data);
  // A merged path is a given path.
  CHECK(parse("e: &e {path: " + data + ", type: completion}\ndatasets:\n  - <<: *e\n").data.datasets[0].path == data);
  CHECK(error_with("<<: 3\n") == "cfg.yaml:3: <<: expected a mapping or a list of mappings to merge (YAML's merge key), got '3'");
  CHECK(error_with("<<: [{max_steps: 2}, x]\n") ==
        "cfg.yaml:3: <<: expected a mapping in the list to merge (YAML's merge key), got 'x'");
  CHECK(parse("a: &x {<<: *x, max_steps: 3}\n<<: *x\n").max_steps == 3);  // a map merging itself ends
}

TEST_CASE("null keys mean unset; unknown keys are listed, sorted, never an error") {
  TrainConfig c = parse(
      "wandb_project:\nmax_steps:\nlearning_rate: ~\nadapter:\nlora_r: 8\nstrict: false\n"
      "special_tokens:\n  pad_token: \"<pad>\"\n  unk_token: x\ngradient_checkpointing_kwargs:\n"
      "  use_reentrant: false\n  every_n_layers: 2\n  preserve_rng_state: true\n");
  CHECK(c.special_tokens.pad_token == "<pad>");
  CHECK(c.max_steps == -1);
  CHECK(c.learning_rate == TrainConfig().learning_rate);
  CHECK(c.gradient_checkpointing_every_n_layers == 2);
  CHECK(parse("seed: 1\nseed: 2\n").seed == 2);  // a repeated key: the last wins, as in PyYAML
  CHECK(c.unknown_keys ==
        std::vector<std::string>{"gradient_checkpointing_kwargs.preserve_rng_state",
                                 "special_tokens.unk_token", "strict", "wandb_project"});
  // Axolotl adds special_tokens' additional_special_tokens to the tokenizer: refused unless empty.
  CHECK(parse("special_tokens:\n  additional_special_tokens: []\n").unknown_keys ==
        std::vector<std::string>{"special_tokens.additional_special_tokens"});
  CHECK(error_of("special_tokens:\n  additional_special_tokens: ['<x>']\n") ==
        "cfg.yaml:2: special_tokens.additional_special_tokens: expected none (a tokenizer's added special tokens are "
        "not built; list new tokens under `tokens`), got a list");
  // pretrain_multipack_buffer_size: Axolotl's deprecated name of streaming_multipack_buffer_size.
  CHECK(parse("pretrain_multipack_buffer_size: 7\n").data.streaming_buffer_size == 7);
  CHECK(config_to_yaml(parse("pretrain_multipack_buffer_size: 7\n")).find("streaming_multipack_buffer_size: 7") !=
        std::string::npos);
  c = parse_config("datasets:\n  - path: " + scratch().data + "\n    ds_type: json\n", "cfg.yaml");
  CHECK(c.data.datasets[0].ds_type == "json");
  CHECK(parse_config(config_to_yaml(c), "saved.yaml").data.datasets[0].ds_type == "json");
  CHECK(error_of("datasets:\n  - path: " + scratch().data + "\n    ds_type: xml\n") ==
        "cfg.yaml:3: datasets[0].ds_type: expected one of json, parquet, arrow, csv, text, got 'xml'");
  // Axolotl's default_system_message only edits a "You are a helpful assistant." in the saved
  // chatml template, which its chatml template does not hold: no effect on training.
  CHECK(parse("default_system_message: Be brief.\n").unknown_keys == std::vector<std::string>{"default_system_message"});
  CHECK(parse_config("", "cfg.yaml", {{"datasets", "[{path: " + scratch().data + "}]"}})
            .data.datasets.size() == 1);  // an empty file is a map with every key unset
}

TEST_CASE("command-line overrides: applied as top-level keys before validation") {
  TrainConfig c = parse("base_model: llama3-1b\nmax_steps: 5\n", {{"max_steps", "10"},
                                                                  {"learning_rate", "2e-4"},
                                                                  {"output_dir", "/tmp/a b"},
                                                                  {"num_hidden_layers", "2"},
                                                                  {"bf16", "false"},
                                                                  {"logging_steps", ""}});
  CHECK(c.max_steps == 10);
  CHECK(c.learning_rate == 2e-4);
  CHECK(c.output_dir == "/tmp/a b");
  CHECK(c.model.num_hidden_layers == 2);  // onto the preset, whatever the order
  CHECK(c.model.hidden_size == 2048);
  CHECK(c.bf16 == "false");
  CHECK(c.logging_steps == -1);

  // Any key, as its YAML line: unused ones listed, unsupported ones refused, a slip of a known one
  // refused with the key it is near.
  CHECK(parse("", {{"wandb_project", "x"}}).unknown_keys == std::vector<std::string>{"wandb_project"});
  CHECK(error_with("", {{"fp16", "true"}}) == "cfg.yaml: --fp16: not supported, fp16 training is not offered: use bf16 (or f32)");
  CHECK(error_with("", {{"learnng_rate", "3"}}) ==
        "cfg.yaml: --learnng_rate: expected a config key llm_train knows (did you mean --learning_rate?), got an "
        "unknown key");
  CHECK(error_with("", {{"max_step", "3"}}).find("(did you mean --max_steps?)") != std::string::npos);
  // Axolotl's keys that are not built are never taken for slips of others; model_config's fields apply.
  CHECK(parse("", {{"float16", "false"}, {"sage_attention", "false"}}).unknown_keys ==
        std::vector<std::string>{"float16", "sage_attention"});
  CHECK(error_with("", {{"float16", "true"}}).find("--float16: not supported, fp16 weights") != std::string::npos);
  CHECK(parse("", {{"model_config", "{hidden_size: 128}"}}).model.hidden_size == 128);
  CHECK(nearest_config_key("sequnce_len") == std::optional<std::string>("sequence_len"));
  CHECK(nearest_config_key("seeds") == std::optional<std::string>("seed"));
  CHECK(!nearest_config_key("wandb_project"));
  CHECK(!nearest_config_key("optim_args"));  // a known key unused by its optimizer is no slip of another
  CHECK(parse("optim_args: 'beta1=0.9'\n").unknown_keys == std::vector<std::string>{"optim_args"});
  CHECK(error_with("", {{"max_steps", "many"}}) ==
        "cfg.yaml: --max_steps: expected an integer >= 1, got 'many'");
  CHECK(starts_with(error_with("", {{"max_steps", "[1"}}),
                    "cfg.yaml: --max_steps: expected a YAML value"));
  CHECK(error_with("flash_attention: true\n", {{"attn_implementation", "sdpa"}}) ==
        "cfg.yaml: --attn_implementation: expected one attention implementation, got flash_attention: "
        "true and attn_implementation: sdpa");
  CHECK(starts_with(
      error_with("early_stopping_patience: 2\nval_set_size: 0.1\n", {{"val_set_size", "0"}}),
      "cfg.yaml:3: early_stopping_patience: expected an eval set"));
}


TEST_CASE("sizes have stated upper bounds; numbers stored as floats must be finite as floats") {
  // Once a crash: the size overflowed the parameter count.
  CHECK(error_with("", {{"intermediate_size", "72057594037927937"}}) ==
        "cfg.yaml: --intermediate_size: expected an integer in [1, 1048576], got "
        "72057594037927937");
  CHECK(error_with("rope_theta: 1e300\n") ==
        "cfg.yaml:3: rope_theta: expected a number in (0, 3.40282e+38], got 1e300");
  CHECK(error_with("rms_norm_eps: 1e300\n") ==
        "cfg.yaml:3: rms_norm_eps: expected a number in (0, 3.40282e+38], got 1e300");
  for (const std::string line : {"hidden_size: 1048577",
                                 "intermediate_size: 1048577",
                                 "num_hidden_layers: 1025",
                                 "num_attention_heads: 1025",
                                 "num_key_value_heads: 1025",
                                 "vocab_size: 16777217",
                                 "max_position_embeddings: 1048577",
                                 "sequence_len: 1048577",
                                 "micro_batch_size: 1048577",
                                 "gradient_accumulation_steps: 1048577",
                                 "num_epochs: 1048577",
                                 "local_rank: 65536",
                                 "seed: 99999999999999999999",
                                 "initializer_range: 1e39",
                                 "adam_epsilon: 1e39",
                                 "weight_decay: 1e300",
                                 "rope_scaling: {rope_type: llama3, factor: 8, "
                                 "original_max_position_embeddings: 1048577}"}) {
    CAPTURE(line);
    std::string e = error_with(line + "\n");
    CHECK(starts_with(e, "cfg.yaml:3: " + line.substr(0, line.find(':'))));
    CHECK(e.find(": expected ") != std::string::npos);
    CHECK(e.find(", got ") != std::string::npos);
  }
  // The bounds themselves are fine.
  TrainConfig c = parse(
      "num_hidden_layers: 1024\nvocab_size: 16777216\nlocal_rank: 65535\nnum_epochs: 1048576\n"
      "micro_batch_size: 1048576\nmax_position_embeddings: 1048576\nsequence_len: 1048576\n");
  CHECK(c.model.vocab_size == 16777216);
  CHECK(c.data.sequence_len == 1048576);
}
