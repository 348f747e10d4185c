// Axolotl's newer and older spellings that a sweep of its example configs met: each either means
// what llm_train builds (model_quantization_config's bitsandbytes form, dpo_beta, fractional num_epochs, a per-epoch count of 0, save_strategy best) or stops the run in one line
// (LISA, float16 / bfloat16 without mixed precision, torchao / mxfp4 / fp8 bases).
#include <doctest/doctest.h>

#include "test/config_fixture.h"
#include "train/config_fields.h"

using namespace llm;
using namespace llm::config_test;

TEST_CASE("model_quantization_config {backend: bnb}: nf4 is load_in_4bit (a LoRA on it QLoRA), int8 load_in_8bit") {
  const std::string lora = "adapter: lora\nlora_target_linear: true\n";
  const TrainConfig nf4 = parse(lora + "model_quantization_config:\n  backend: bnb\n  weight_dtype: nf4\n");
  CHECK(nf4.load_in_4bit);
  CHECK(nf4.adapter == "qlora");
  const TrainConfig int8 = parse(lora + "model_quantization_config: {backend: bnb, weight_dtype: int8}\n");
  CHECK(int8.load_in_8bit);
  CHECK(int8.adapter == "lora");
  CHECK(error_with("model_quantization_config: {backend: bnb, weight_dtype: nf4, group_size: 64}\n")
            .find("model_quantization_config.group_size: expected {backend: bnb, weight_dtype: nf4 or int8}") !=
        std::string::npos);
  CHECK(error_with("model_quantization_config: {backend: bnb}\n").find("got no weight_dtype") != std::string::npos);
  // Axolotl's qlora-torchao.yaml: a torchao int4 base is not built.
  CHECK(error_with("adapter: lora\nmodel_quantization_config:\n  backend: torchao\n  weight_dtype: int4\n") ==
        "cfg.yaml:4: model_quantization_config: not supported, only bitsandbytes bases are built ({backend: bnb, "
        "weight_dtype: nf4 or int8}, or load_in_4bit / load_in_8bit): torchao, mxfp4 and fp8 quantised bases are not");
  CHECK(error_with("model_quantization_config: Mxfp4Config\n").find("not supported, only bitsandbytes") != std::string::npos);
}

TEST_CASE("keys that would train otherwise stop the run: half of LISA, float16 without mixed precision") {
  // Axolotl runs LISA only with both keys; one alone would be ignored there, and is refused here.
  CHECK(error_with("lisa_n_layers: 1\n") ==
        "cfg.yaml:3: lisa_n_layers: expected lisa_n_layers and lisa_step_interval together (LISA runs with both), got one of them");
  CHECK(error_with("lisa_step_interval: 20\n").find("lisa_step_interval: expected lisa_n_layers and") != std::string::npos);
  // eval_sequence_len is built (test_data): without test_datasets it is only noted unused, as Axolotl ignores it.
  CHECK(parse("eval_sequence_len: 4096\n").adjustments.back().find("eval_sequence_len: unused without test_datasets") == 0);
  // Packed test examples must fit a bin: sequence_len's with no attention key too (Axolotl's
  // multipack_real_batches default there), not micro_batch_size of them.
  const std::string packed_test = "sequence_len: 64\nmicro_batch_size: 2\nsample_packing: true\nval_set_size: 0\n"
                                  "test_datasets: [{path: " + scratch().data + ", type: completion}]\n";
  CHECK(error_with(packed_test + "eval_sequence_len: 96\n").find("eval_sequence_len: expected at most the packed bins' 64 "
                                                                   "tokens") != std::string::npos);
  CHECK(parse(packed_test + "eval_sequence_len: 64\n").data.eval_sequence_len == 64);
  CHECK(error_with("float16: true\n").find("float16: not supported, fp16 weights without mixed precision") !=
        std::string::npos);
  // bfloat16 is a key of its own (test_bfloat16); float16 unset or false is only unused.
  CHECK(parse("bfloat16: false\nfloat16:\n").unknown_keys == std::vector<std::string>{"float16"});
}

TEST_CASE("dpo_beta: Axolotl's older name of rl_beta, which wins; without rl it is unused") {
  const std::string pairs = "datasets:\n  - path: " + scratch().data + "\n    type: llama3.intel\n";
  CHECK(parse_config(pairs + "rl: dpo\ndpo_beta: 0.2\n", "cfg.yaml").rl_beta == 0.2);
  CHECK(parse_config(pairs + "rl: dpo\ndpo_beta: 0.2\nrl_beta: 0.3\n", "cfg.yaml").rl_beta == 0.3);
  CHECK(parse("dpo_beta: 0.2\n").unknown_keys == std::vector<std::string>{"dpo_beta"});
  CHECK(error_of(pairs + "rl: dpo\ndpo_beta: -1\n").find("dpo_beta: expected") != std::string::npos);
}

// Axolotl reads these through Python's truthiness: 0 is unset.
TEST_CASE("num_epochs may be a fraction; evals_per_epoch, saves_per_epoch, save_total_limit and "
          "early_stopping_patience 0 are unset, as Axolotl reads them") {
  CHECK(parse("num_epochs: 0.25\n").num_epochs == 0.25);
  CHECK(error_with("num_epochs: 0\n").find("num_epochs: expected") != std::string::npos);
  const TrainConfig c = parse("evals_per_epoch: 0\nsaves_per_epoch: 0\neval_steps: 5\nsave_total_limit: 0\n"
                              "early_stopping_patience: 0\n");
  CHECK(c.eval_steps == 5);
  CHECK(c.evals_per_epoch <= 0);
  CHECK(c.save_total_limit == 4);  // its builder's `save_total_limit if save_total_limit else 4`
  CHECK(c.early_stopping_patience == TrainConfig().early_stopping_patience);
  CHECK(parse("save_total_limit: 1\n").save_total_limit == 1);
  CHECK(error_with("save_total_limit: -1\n").find("save_total_limit: expected an integer >= 0") != std::string::npos);
}

// Axolotl's check_evals: refused only where val_set_size says 0 outright, and not in a checkpoint's
// resolved config, which writes every key.
TEST_CASE("eval_steps or an eval_strategy beside val_set_size: 0 and no test_datasets: refused, as Axolotl") {
  CHECK(error_with("val_set_size: 0\neval_steps: 5\n").find("eval_steps: expected an eval set with it "
                                                            "(val_set_size > 0 or test_datasets)") != std::string::npos);
  CHECK(error_with("val_set_size: 0\neval_strategy: epoch\n").find("eval_strategy: expected an eval set") !=
        std::string::npos);
  CHECK(parse("val_set_size: 0\neval_strategy: 'no'\n").eval_strategy == "no");
  CHECK(parse("eval_steps: 5\n").eval_steps == 5);  // val_set_size unset: Axolotl's validator lets it be
  const TrainConfig unset = parse("eval_steps: 5\n");
  CHECK(parse_config(config_to_yaml(unset), "step_000004/config.yaml").eval_steps == 5);
}

TEST_CASE("save_strategy best: needs evaluations and no step counts") {
  CHECK(parse("save_strategy: best\nval_set_size: 0.1\n").save_strategy == "best");
  CHECK(error_with("save_strategy: best\nval_set_size: 0\n").find("save_strategy: expected evaluations with save_strategy: best") !=
        std::string::npos);
  CHECK(error_with("save_strategy: best\nval_set_size: 0.1\neval_strategy: 'no'\n").find("expected evaluations") !=
        std::string::npos);
  CHECK(error_with("save_strategy: best\nval_set_size: 0.1\nsave_steps: 5\n").find("expected no save_steps with save_strategy: best") !=
        std::string::npos);
}

TEST_CASE("dataset_shard_num and dataset_shard_idx: both, an index below the count, no rl") {
  const TrainConfig c = parse("dataset_shard_num: 4\ndataset_shard_idx: 1\n");
  CHECK(c.data.shard_num == 4);
  CHECK(c.data.shard_idx == 1);
  CHECK(error_with("dataset_shard_num: 4\n") ==
        "cfg.yaml:3: dataset_shard_num: expected dataset_shard_num and dataset_shard_idx together, got one of them");
  CHECK(error_with("dataset_shard_idx: 0\n").find("dataset_shard_idx: expected dataset_shard_num and") !=
        std::string::npos);
  CHECK(error_with("dataset_shard_num: 4\ndataset_shard_idx: 4\n").find(
            "dataset_shard_idx: expected an index below dataset_shard_num, 4, got 4") != std::string::npos);
  const std::string pairs = "datasets:\n  - path: " + scratch().data + "\n    type: llama3.intel\n";
  CHECK(error_of(pairs + "rl: dpo\ndataset_shard_num: 2\ndataset_shard_idx: 0\n")
            .find("dataset_shard_num: expected no rl (Axolotl's preference loader does not shard") != std::string::npos);
}

TEST_CASE("numbers with digits grouped by underscores, as YAML 1.1 (PyYAML) reads them: Axolotl's ALST examples") {
  const TrainConfig c = parse("sequence_len: 4_096\nlearning_rate: 0.000_02\nmax_steps: 1_0\n", {{"micro_batch_size", "1_6"}});
  CHECK(c.data.sequence_len == 4096);
  CHECK(c.learning_rate == 2e-5);
  CHECK(c.max_steps == 10);
  CHECK(c.micro_batch_size == 16);
  // Not a number's: a leading underscore, or one after the sign.
  CHECK(error_with("sequence_len: _4096\n") == "cfg.yaml:3: sequence_len: expected an integer in [1, 1048576], got '_4096'");
  CHECK(starts_with(error_with("learning_rate: -_1\n"), "cfg.yaml:3: learning_rate: expected a number > 0, got '-_1'"));
}

TEST_CASE("integers led by 0 as YAML 1.1 (PyYAML) reads them: octal, 0x hex, 0b binary; quoted, Python's int") {
  CHECK(parse("micro_batch_size: 010\n").micro_batch_size == 8);
  CHECK(parse("micro_batch_size: 0x10\n").micro_batch_size == 16);
  CHECK(parse("micro_batch_size: 0b101\n").micro_batch_size == 5);
  CHECK(parse("micro_batch_size: 0_10\n").micro_batch_size == 8);
  CHECK(parse("micro_batch_size: '010'\n").micro_batch_size == 10);  // a string, which pydantic reads as int(text)
  CHECK(parse("micro_batch_size: 09\n").micro_batch_size == 9);      // no octal: a string to PyYAML, then 9
  CHECK(parse("seed: 0\n").seed == 0);
  CHECK(parse("save_steps: 010\neval_steps: 0b11\n").save_steps == 8);  // fields that also take a share
  CHECK(parse("save_steps: 010\neval_steps: 0b11\n").eval_steps == 3);
  CHECK(parse("save_steps: 0.5\n").save_steps == 0.5);
  CHECK(starts_with(error_with("micro_batch_size: 0x\n"), "cfg.yaml:3: micro_batch_size: expected an integer"));
}

// What pydantic (2.13, Axolotl's) takes besides YAML's own spellings, each checked there: an int
// field from a float or string with a zero fraction (2.0, '2.0', not '2.' nor 2.5), a number from
// a string with spaces around it, a bool from 1/0 and t/f/y/n; a helper's differential of
// llm_train's reading against PyYAML + pydantic found these refused here.
TEST_CASE("pydantic's lax spellings: 2.0 for an integer, a padded string number, bf16: 1") {
  CHECK(parse("micro_batch_size: 2.0\n").micro_batch_size == 2);
  CHECK(parse("micro_batch_size: '4.00'\n").micro_batch_size == 4);
  CHECK(parse("micro_batch_size: 010.0\n").micro_batch_size == 10);  // a float's whole part is decimal
  CHECK(parse("sequence_len: ' 512 '\n").data.sequence_len == 512);
  CHECK(parse("learning_rate: >\n  1e-4\n").learning_rate == 1e-4);
  CHECK(parse("bf16: 1\n").bf16 == "true");
  CHECK(parse("bf16: 'n'\n").bf16 == "false");
  CHECK(starts_with(error_with("micro_batch_size: 2.5\n"), "cfg.yaml:3: micro_batch_size: expected an integer"));
  CHECK(starts_with(error_with("micro_batch_size: '2.'\n"), "cfg.yaml:3: micro_batch_size: expected an integer"));
  CHECK(starts_with(error_with("bf16: 2\n"), "cfg.yaml:3: bf16: expected true or false"));
}

// Each value below is what PyYAML 6.0 (yaml.safe_load) and pydantic 2.13 give, checked there.
TEST_CASE("YAML 1.1 as PyYAML resolves a plain scalar: base 60, floats that need a point, whole floats for integers") {
  CHECK(parse("max_steps: 1:30\n").max_steps == 90);           // an int in base 60
  CHECK(parse("learning_rate: 1:30.5\n").learning_rate == 90.5);  // a float in base 60
  CHECK(parse("micro_batch_size: 1.e+1\n").micro_batch_size == 10);  // the float 10.0, whole
  CHECK(parse("learning_rate: 1.0e5\n").learning_rate == 1e5);     // a string to PyYAML, then float()
  CHECK(starts_with(error_with("micro_batch_size: 1.5e+0\n"), "cfg.yaml:3: micro_batch_size: expected an integer"));
  CHECK(starts_with(error_with("learning_rate: .inf\n"), "cfg.yaml:3: learning_rate: expected a number > 0"));
  // Matched by hand, not by std::regex, which overflowed the stack on a scalar this long.
  CHECK(starts_with(error_with("max_steps: " + std::string(100000, '1') + "\n"), "cfg.yaml:3: max_steps: expected an integer"));
}

TEST_CASE("YAML's explicit tags as PyYAML's safe_load builds them; a tag it has no constructor for stops the run") {
  CHECK(parse("micro_batch_size: !!str 010\n").micro_batch_size == 10);  // the string '010': pydantic's int(text)
  CHECK(parse("micro_batch_size: !!int '010'\n").micro_batch_size == 8);  // the tag reads the quoted text as octal
  CHECK(parse("micro_batch_size: !!int ' 5'\n").micro_batch_size == 5);
  CHECK(parse("micro_batch_size: !!int 0o17\n").micro_batch_size == 15);
  CHECK(parse("micro_batch_size: !<tag:yaml.org,2002:int> 1:3\n").micro_batch_size == 63);
  CHECK(parse("micro_batch_size: !!float 2\n").micro_batch_size == 2);
  CHECK(parse("learning_rate: !!float 2_0.5\n").learning_rate == 20.5);
  CHECK(parse("bf16: !!bool 'Off'\n").bf16 == "false");
  CHECK(parse("max_steps: !!null 7\n").max_steps == parse("").max_steps);
  CHECK(parse("", {{"micro_batch_size", "!!str 010"}}).micro_batch_size == 10);
  CHECK(parse("micro_batch_size: ! '010'\n").micro_batch_size == 8);  // `!` alone: resolved as plain, quoted or not
  CHECK(parse("max_steps: &n !\n").max_steps == parse("").max_steps);  // null
  CHECK(parse("learning_rate: !!float 1e-4\n").learning_rate == 1e-4);
  CHECK(parse("my_list: !!seq [1]\nmy_map: !!map {a: 1}\n").unknown_keys.size() == 2);
  CHECK(error_with("micro_batch_size: !!int 1.5\n") ==
        "cfg.yaml:3: micro_batch_size: expected an integer (YAML's !!int) within 64 bits, got '1.5'");
  CHECK(error_with("micro_batch_size: !!int 08\n") ==
        "cfg.yaml:3: micro_batch_size: expected an integer (YAML's !!int) within 64 bits, got '08'");
  CHECK(error_with("learning_rate: !!float 0x10\n") == "cfg.yaml:3: learning_rate: expected a number (YAML's !!float), got '0x10'");
  CHECK(error_with("bf16: !!bool 1\n") == "cfg.yaml:3: bf16: expected true, false, yes, no, on or off (YAML's !!bool), got '1'");
  CHECK(error_with("seed: !!seq 3\n") == "cfg.yaml:3: seed: expected a list for the YAML tag !!seq, got a scalar");
  CHECK(error_with("seed: !!str [3]\n") == "cfg.yaml:3: seed: expected a scalar for the YAML tag !!str, got a list");
  const std::string unknown = "expected a YAML tag that yaml.safe_load reads (!!str, !!int, !!float, !!bool, !!null, !!seq, !!map), got ";
  CHECK(error_with("seed: !!python/object/apply:os.system [ls]\n") == "cfg.yaml:3: seed: " + unknown + "!!python/object/apply:os.system");
  CHECK(error_with("\nwandb:\n  name: !custom x\n") == "cfg.yaml:5: wandb.name: " + unknown + "!custom");
  CHECK(error_with("test_datasets:\n  - path: !!timestamp 2020-01-01\n") ==
        "cfg.yaml:4: test_datasets[0].path: expected a value a config key takes (a string, number, bool, list or map), got "
        "YAML's !!timestamp");
  CHECK(error_with("", {{"seed", "!x 3"}}) == "cfg.yaml: --seed: " + unknown + "!x");
}

TEST_CASE("a key given twice: the last one is read, as PyYAML reads it, and the start-up says so") {
  const TrainConfig c = parse("max_steps: 4\nseed: 1\nmax_steps: 7\n");
  CHECK(c.max_steps == 7);
  CHECK(c.adjustments == std::vector<std::string>{"max_steps is given on lines 3 and 5: the last one is read, as PyYAML reads it"});
}

// yaml-cpp drops line breaks PyYAML keeps where a quoted scalar or a folded keep block ends in
// blank lines (train/yaml_trailing_breaks.h); each expected value is PyYAML 6's.
TEST_CASE("trailing blank lines of quoted scalars and >+ blocks read as PyYAML reads them") {
  const auto value = [](const std::string& yaml, const std::vector<std::string>& path) {
    YAML::Node node = read_config_yaml(yaml, "cfg.yaml", false);
    for (const std::string& key : path) node = key == "0" ? node[0] : node[key];
    return node.Scalar();
  };
  CHECK(value("k: 'a\n  \n  \n  '\n", {"k"}) == "a\n\n");
  CHECK(value("k: \"\n\n\n  \"\n", {"k"}) == "\n\n");
  CHECK(value("k: &x !!str 'it''s\n\n\n\n  '\n", {"k"}) == "it's\n\n\n");
  CHECK(value("k: \"a\\n\n\n\n  \"\n", {"k"}) == "a\n\n\n");  // an escaped \n, then the folded breaks
  CHECK(value("k: >+\n  a\n  b\n\n\n", {"k"}) == "a b\n\n\n");
  CHECK(value("k: >+\n  a\n\n  b\n\n  \nz: 1\n", {"k"}) == "a\nb\n\n\n");
  CHECK(value("- k: >+2\n    a\n\n", {"0", "k"}) == "a\n\n");  // indented by the indicator, from the sequence's map
  CHECK(value("a:\n  k: >+\n    x\n\n# c\n", {"a", "k"}) == "x\n\n");
  // Already as PyYAML's: no blank line after the text, or literal keep.
  CHECK(value("k: >+\n  a\n", {"k"}) == "a\n");
  CHECK(value("k: |+\n  a\n\n\n", {"k"}) == "a\n\n\n");
}

TEST_CASE("an anchor defined twice stops the run, as PyYAML's composer refuses it; aliases to one anchor are read") {
  CHECK(error_with("learning_rate: &a 0.1\nweight_decay: &a 0.2\n") ==
        "cfg.yaml:4: YAML: expected each anchor defined once, as Axolotl's yaml.safe_load reads a config, got &a again "
        "(first at line 3)");
  const TrainConfig c = parse("learning_rate: &a 0.25\nweight_decay: *a\n");
  CHECK((c.learning_rate == 0.25 && c.weight_decay == 0.25));
}
