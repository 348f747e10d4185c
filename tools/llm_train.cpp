// llm_train: trains a Llama 3 model from an Axolotl-style YAML config, or continues a checkpoint.
// Bad input (config, data, checkpoint, command line) prints one line per error and exits 2.
#include <fmt/core.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "engine/communicator.h"
#include "engine/cpu/openmp_wait.h"
#include "engine/stop_signal.h"
#include "engine/user_error.h"
#include "io/checkpoint.h"
#include "train/config.h"
#include "train/trainer.h"

namespace {

const char* kUsage =
    "usage: llm_train CONFIG.yaml [--key value]...   train; any top-level config key can be overridden\n"
    "       llm_train --resume DIR [--max_steps N] [--output_dir DIR] [--logging_steps N]\n"
    "                                                continue a checkpoint with the config saved in it\n"
    "       llm_train merge-lora CONFIG.yaml [--key value]...\n"
    "                                                Axolotl's merge-lora: the base with the adapter in lora_model_dir\n"
    "                                                (else output_dir) merged into output_dir/merged, nothing trained\n"
    "       llm_train preprocess CONFIG.yaml [--key value]...\n"
    "                                                Axolotl's preprocess: the datasets tokenized into\n"
    "                                                dataset_prepared_path (else output_dir/prepared), nothing trained\n"
    "       llm_train evaluate CONFIG.yaml [--key value]...\n"
    "                                                Axolotl's evaluate: the model as the config loads it, its loss on\n"
    "                                                the training and validation rows, into output_dir/eval_summary.csv\n"
    "       llm_train inference CONFIG.yaml [--prompter NAME] [--key value]...\n"
    "                                                Axolotl's inference: a prompt read from stdin (Ctrl+D submits),\n"
    "                                                answered by the model as the config loads it, until an empty one\n"
    "       llm_train --keys                          every config key: type, default, meaning\n"
    "       llm_train --help\n"
    "Several ranks: mpirun -np N ./llm_train CONFIG.yaml (one GPU per local rank; --local_rank overrides)\n";

std::map<std::string, std::string> parse_overrides(int argc, char** argv, int first) {
  std::map<std::string, std::string> overrides;
  for (int i = first; i < argc; i++) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2)
      throw llm::UserError("command line: expected --key value, got '" + arg + "'");
    std::string key = arg.substr(2), value;
    if (const std::string name = key.substr(0, key.find('=')); name == "resume" || name == "keys" || name == "help")
      throw llm::UserError("command line: " + arg + " comes first, in place of the config (llm_train " + arg +
                           (key == "resume" ? " DIR" : "") + "), got it after one");
    auto eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      value = argv[++i];
    } else {  // a flag after a flag: `--output_dir --logging_steps 5` would write into '--logging_steps'
      throw llm::UserError("command line: --" + key + " needs a value" +
                           (i + 1 < argc ? ", got the flag '" + std::string(argv[i + 1]) + "' (a value that starts "
                                           "with -- is written --" + key + "=VALUE)"
                                         : std::string()));
    }
    // An empty value would read as the key left unset, its default, which no one typing it means.
    if (value.empty()) throw llm::UserError("command line: --" + key + " needs a value, got ''");
    overrides[key] = value;
  }
  return overrides;
}

llm::TrainConfig resume_config(const std::string& dir, const std::map<std::string, std::string>& overrides) {
  // What changes where and how far the run goes, not how it trains.
  static const std::set<std::string> allowed{"max_steps", "output_dir", "logging_steps", "overwrite_output_dir"};
  for (const auto& [key, value] : overrides)
    if (!allowed.count(key))
      throw llm::UserError("command line: --" + key + " cannot change on --resume (allowed: --max_steps, --output_dir, "
                           "--logging_steps, --overwrite_output_dir)");
  // Checked against the checkpoint's manifest first: an edited config never resumes silently.
  llm::TrainConfig config = llm::parse_config(llm::read_checkpoint_config(dir), dir + "/config.yaml", overrides);
  config.resume_from_checkpoint = dir;
  return config;
}

// merge-lora's config: as Axolotl's command, without lora_model_dir the run's own adapter in
// output_dir (the working directory's, as a run writes it, not the config's). The file is read
// first, so a config that is no file or no YAML is refused for what it is.
llm::TrainConfig merge_lora_config(const std::string& path, std::map<std::string, std::string> overrides) {
  const std::string text = llm::read_config_file(path);
  YAML::Node yaml;
  try {
    yaml = YAML::Load(text);
  } catch (const YAML::Exception&) {
    return llm::parse_config(text, path, overrides);  // which says why it is no YAML
  }
  if (!overrides.count("lora_model_dir")) {
    const auto scalar = [&yaml](const char* key) {
      return yaml.IsMap() && yaml[key] && yaml[key].IsScalar() ? yaml[key].Scalar() : std::string();
    };
    if (scalar("lora_model_dir").empty()) {
      const std::string dir = std::filesystem::absolute(overrides.count("output_dir") ? overrides["output_dir"]
                                                        : !scalar("output_dir").empty() ? scalar("output_dir")
                                                        : llm::TrainConfig().output_dir).string();
      std::error_code ec;
      if (!std::filesystem::is_regular_file(std::filesystem::path(dir) / "adapter_config.json", ec))
        throw llm::UserError(path + ": merge-lora: expected a trained adapter (adapter_config.json) in output_dir " +
                             dir + ", got none; name its directory with --lora_model_dir");
      std::string quoted = "'";  // read as YAML: single-quoted, so '#' or ': ' in a path stay in it
      for (const char ch : dir) quoted += ch == '\'' ? std::string("''") : std::string(1, ch);
      overrides["lora_model_dir"] = quoted + "'";
    }
  }
  return llm::parse_config(text, path, overrides);
}

// The config of a run: CONFIG.yaml and its overrides, or --resume DIR's.
llm::TrainConfig run_config(int argc, char** argv) {
  const std::string first = argv[1];
  if (first == "--resume") {
    if (argc < 3) throw llm::UserError("command line: --resume needs a checkpoint directory");
    return resume_config(argv[2], parse_overrides(argc, argv, 3));
  }
  if (first.rfind("--", 0) == 0)  // an override before the config, or a mistyped flag
    throw llm::UserError("command line: expected CONFIG.yaml, --resume DIR, merge-lora, preprocess, evaluate, "
                         "inference, --keys or --help first, got '" + first + "'");
  return llm::load_config(first, parse_overrides(argc, argv, 2));
}

}  // namespace

int main(int argc, char** argv) {
  llm::use_short_openmp_spins(argv);  // may start the program again, so before anything else
  // Then: a signal during config parsing, tokenisation or model loading stops the run at
  // the next stop point of start-up instead of killing it wherever it is.
  llm::install_stop_signal_handlers(
      "\nllm_train: a second stop signal: exiting at once; the step in progress is not saved, checkpoints "
      "already written are whole\n");
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // log lines reach a file or pipe as they happen
  if (argc < 2) {
    fmt::print(stderr, "{}", kUsage);
    return llm::kUserErrorExitCode;
  }
  const std::string first = argv[1];
  if ((first == "--help" || first == "-h" || first == "--keys") && argc > 2) {
    fmt::print(stderr, "error: command line: {} takes nothing after it, got '{}'\n", first, argv[2]);
    return llm::kUserErrorExitCode;
  }
  if (first == "--help" || first == "-h") {
    fmt::print("{}", kUsage);
    return 0;
  }
  if (first == "--keys") {
    for (const llm::ConfigKey& key : llm::config_keys())
      fmt::print("{:<30} {:<50} {:<12} {}\n", key.name, key.type, key.default_value, key.meaning);
    return 0;
  }
  llm::Communicator& comm = llm::Communicator::init(&argc, &argv);
  if (!comm.is_main()) llm::silence_second_signal_message();
  // In a job of several ranks, one rank's error ends them all (MPI_Abort) instead of leaving the
  // others blocked in a collective; the message says which rank failed.
  // Each line of the message is one error (a config may hold several unsupported keys).
  auto say_error = [&comm](const char* kind, const std::string& what, bool name_the_rank) {
    std::istringstream lines(what);
    for (std::string line; std::getline(lines, line);) {
      if (name_the_rank) fmt::print(stderr, "{}: rank {}: {}\n", kind, comm.rank(), line);
      else fmt::print(stderr, "{}: {}\n", kind, line);
    }
  };
  auto fail = [&comm, &say_error](const char* kind, const std::exception& e, int code) {
    say_error(kind, e.what(), comm.distributed());
    if (comm.distributed()) {
      std::fflush(stderr);
      comm.abort(code);
    }
    return code;
  };
  try {
    llm::TrainConfig config;
    if (first == "merge-lora") {
      if (argc < 3) throw llm::UserError("command line: merge-lora needs a config (llm_train merge-lora CONFIG.yaml)");
      config = merge_lora_config(argv[2], parse_overrides(argc, argv, 3));
      const std::string adapter = config.lora_model_dir, base = config.base_model;
      const std::string merged = llm::Trainer::merge_lora_adapter(std::move(config));
      fmt::print("done: merged the adapter of {} onto {} into {}\n", adapter, base, merged);
      return 0;
    }
    // Every rank reads the same config, so a bad one fails on all of them alike: then rank 0 says
    // it once and each exits, with no MPI_Abort (whose banner would bury the line). Where only
    // some ranks fail (a file one node cannot see), those abort the job as any other error does.
    // Commands of a config, read as a run's.
    const bool command = first == "preprocess" || first == "evaluate" || first == "inference";
    std::optional<std::string> config_error;
    std::string prompter;  // inference's --prompter
    try {
      if (command && argc < 3)
        throw llm::UserError("command line: " + first + " needs a config (llm_train " + first + " CONFIG.yaml)");
      if (command) {
        std::map<std::string, std::string> overrides = parse_overrides(argc, argv, 3);
        if (first == "inference" && overrides.count("prompter"))  // Axolotl's --prompter: its option, not a key
          prompter = overrides.extract("prompter").mapped();
        config = llm::load_config(argv[2], overrides);
      } else {
        config = run_config(argc, argv);
      }
    } catch (const llm::UserError& e) {
      config_error = e.what();
    }
    int64_t any_rank_read_it = config_error ? 0 : 1;
    if (comm.distributed()) comm.allreduce_max(&any_rank_read_it, 1);
    if (!any_rank_read_it) {
      if (comm.is_main()) say_error("error", *config_error, false);
      return llm::kUserErrorExitCode;
    }
    if (config_error) throw llm::UserError(*config_error);
    if (first == "preprocess") {
      const std::string prepared = llm::Trainer::preprocess(std::move(config));
      if (comm.is_main()) fmt::print("done: the datasets are tokenized in {}; a run of this config reads them from there\n", prepared);
      return 0;
    }
    if (first == "inference") {
      llm::Trainer::inference(std::move(config), prompter, std::cin, stdout);
      return 0;
    }
    if (first == "evaluate") {
      const llm::EvaluationSummary summary = llm::Trainer::evaluate_model(std::move(config));
      if (comm.is_main()) {
        for (const auto* set : {&summary.training, &summary.validation})
          for (const auto& [name, value] : *set) fmt::print("{}: {}\n", name, value);
        fmt::print("done: evaluated without training; the metrics are in {}\n", summary.csv_path);
      }
      return 0;
    }
    llm::Trainer trainer(config);
    llm::TrainResult result = trainer.run();
    if (comm.is_main()) {
      fmt::print("done: {} steps", result.steps);
      if (result.non_finite_steps > 0)  // the run went on through them, as HF's; the line says so
        fmt::print(" ({} of this run's with a non-finite loss or gradient norm)", result.non_finite_steps);
      if (result.last_loss) fmt::print(", last loss {:.6f}", *result.last_loss);
      else fmt::print(" (none trained by this run)");
      if (result.best_eval_loss)
        fmt::print(", best eval_loss {:.6f} at step {}", *result.best_eval_loss, result.best_step);
      fmt::print("{}\n", result.last_checkpoint.empty() ? "" : ", checkpoint " + result.last_checkpoint);
    }
    if (!result.interrupted) {
      const std::string samples = trainer.sample_text(3, 120);  // collective under ZeRO-3 (adapters)
      if (comm.is_main()) fmt::print("samples:\n{}", samples);
    }
    return 0;
  } catch (const llm::StopRequested& e) {
    // Every rank stopped at the same stop point (Trainer's start-up): no abort needed; one line.
    if (comm.is_main()) fmt::print(stderr, "{}\n", e.what());
    return llm::kStopExitCodeBase + e.signal;
  } catch (const llm::EveryRankError& e) {
    if (comm.is_main()) say_error("error", e.what(), false);
    return llm::kUserErrorExitCode;
  } catch (const llm::UserError& e) {
    return fail("error", e, llm::kUserErrorExitCode);
  } catch (const std::exception& e) {
    return fail("fatal", e, 1);
  }
}
