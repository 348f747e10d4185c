// The training loop end to end on a small model: exact resume, the loss watchdog, signals, and the
// process-level errors (message and exit code 2) for bad configs and damaged checkpoints. The
// log records are in test_log_records.cpp; evaluation (early stopping, the best checkpoint) is in test_train_evaluation.cpp; the
// reliability checks (sealed checkpoints, output_dir and its lock, the memory estimate) in
// test_reliability.cpp.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "engine/backend.h"
#include "io/bpe_tokenizer.h"
#include "io/checkpoint.h"
#include "io/python_text.h"
#include "io/safetensors.h"
#include "model/hf_config.h"
#include "test/tokenizer_fixture.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;


TEST_CASE("resume is exact: 8 steps straight == 4 steps, --resume, 4 more (losses and weights)") {
  // f32 AdamW, and the 8-bit one (and 8-bit Lion and RMSprop) whose u8 codes and block absmax travel in
  // optimizer.bin; Adafactor's row and column means; AdEMAMix's three 8-bit moments; Muon's
  // momentum buffers and its AdamW's moments with their own step counts; CAME's first moment and
  // factored means; AdamC; Schedule-Free's z, v and mode; torchao's 8-bit codes and scales; GaLore's
  // low-rank moments and bases (a basis recomputed after the resume meets the saved moments); NEFTune,
  // whose noise a resumed run must draw as the uninterrupted one did.
  std::string optimizer, extra;
  SUBCASE("adamw_torch") { optimizer = "adamw_torch"; }
  SUBCASE("adamw_8bit") { optimizer = "adamw_8bit"; }
  SUBCASE("lion_8bit") { optimizer = "lion_8bit"; }
  SUBCASE("rmsprop_bnb_8bit") { optimizer = "rmsprop_bnb_8bit"; }
  SUBCASE("adafactor") { optimizer = "adafactor"; }
  SUBCASE("ademamix_8bit") { optimizer = "ademamix_8bit"; }
  SUBCASE("muon") { optimizer = "muon"; }
  SUBCASE("came_pytorch") { optimizer = "came_pytorch"; }
  SUBCASE("adamc, its decay from the schedule's lr and peak") {
    optimizer = "adamc";
    extra = "weight_decay: 0.5\n";
  }
  SUBCASE("schedule_free_adamw, its weights saved at x after step 4's evaluation, its own warmup") {
    optimizer = "schedule_free_adamw";
    extra = "warmup_steps: 3\nlr_scheduler: constant\n";
  }
  SUBCASE("schedule_free_sgd") { optimizer = "schedule_free_sgd"; }
  SUBCASE("adamw_torch_8bit") { optimizer = "adamw_torch_8bit"; }
  SUBCASE("adamw_torch_4bit") { optimizer = "adamw_torch_4bit"; }
  SUBCASE("ao_adamw_fp8") { optimizer = "ao_adamw_fp8"; }
  SUBCASE("rmsprop, centered with momentum: all three of its state tensors") {
    optimizer = "rmsprop";
    extra = "optim_args: momentum=0.5,centered=true\n";
  }
  SUBCASE("grokadamw, its gradient EMA") {
    optimizer = "grokadamw";
    extra = "weight_decay: 0.1\n";
  }
  SUBCASE("stable_adamw, decay relative to max_lr") {
    optimizer = "stable_adamw";
    extra = "weight_decay: 0.5\noptim_args: decouple_lr=true\n";
  }
  SUBCASE("galore_adamw, its bases recomputed at update 3 and 5 from the saved moments' basis") {
    optimizer = "galore_adamw";
    extra = "optim_args: rank=4,update_proj_gap=2\noptim_target_modules: [attn, mlp]\n";
  }
  SUBCASE("galore_adafactor, its factored means over the low-rank gradients") {
    optimizer = "galore_adafactor";
    extra = "optim_args: rank=4,update_proj_gap=3\noptim_target_modules: [q_proj, down_proj]\n";
  }
  SUBCASE("galore_adamw_8bit, every linear") {
    optimizer = "galore_adamw_8bit";
    extra = "optim_args: {rank: 8, update_proj_gap: 3, proj_type: left}\noptim_target_modules: all_linear\n";
  }
  SUBCASE("galore_adamw_layerwise, each parameter updated in backward") {
    optimizer = "galore_adamw_layerwise";
    extra = "optim_args: rank=4,update_proj_gap=3\noptim_target_modules: all_linear\ngradient_accumulation_steps: 1\n"
            "unfrozen_parameters: ['model.embed_tokens.weight[:100]', 'model.layers.*', 'lm_head.weight']\n";
  }
  SUBCASE("apollo_adamw, its random bases redrawn at updates 3, 5 and 7 (the resumed run's seeds caught up)") {
    optimizer = "apollo_adamw";
    extra = "optim_args: rank=4,update_proj_gap=2\noptim_target_modules: [attn, mlp]\n";
  }
  SUBCASE("apollo_adamw_layerwise, SVD bases and one factor a tensor, in backward") {
    optimizer = "apollo_adamw_layerwise";
    extra = "optim_args: rank=2,update_proj_gap=3,proj=svd,scale_type=tensor,scale=4\noptim_target_modules: all_linear\n"
            "gradient_accumulation_steps: 1\n";
  }
  SUBCASE("q_galore_adamw8bit, its 4-bit bases, the gap grown and the similarities queued") {
    optimizer = "q_galore_adamw8bit";
    extra = "optim_target_modules: [attn, mlp, embed]\nqgalore_rank: 4\nqgalore_update_proj_gap: 1\n"
            "qgalore_cos_threshold: -1\nqgalore_queue_size: 2\nqgalore_proj_group_size: 64\n";
  }
  SUBCASE("lomo, every micro-batch's SGD in backward") { optimizer = "lomo"; }
  SUBCASE("adalomo, its factored moments and its count of passes") { optimizer = "adalomo"; }
  SUBCASE("adagrad, its rate decaying with each parameter's step count") {
    optimizer = "adagrad";
    extra = "optim_args: {lr_decay: 0.5}\n";
  }
  SUBCASE("adamw_torch with NEFTune's noise, drawn per step") {
    optimizer = "adamw_torch";
    extra = "neftune_noise_alpha: 5\n";
  }
  const std::string keys = "save_steps: 4\neval_steps: 4\noptimizer: " + optimizer + "\n" + extra;
  Workspace straight("straight"), resumed("resumed");
  Run a = run_train(straight.config("max_steps: 8\n" + keys));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  // Width 32 at sequence_len 32: 5 / sqrt(32 x 32).
  if (contains(extra, "neftune"))
    CHECK(contains(a.output, "neftune_noise_alpha 5: uniform noise within +-0.1562 on the embeddings"));
  Run b1 = run_train(resumed.config("max_steps: 4\n" + keys));
  REQUIRE_MESSAGE(b1.exit_code == 0, b1.output);
  Run b2 = run_train("--resume " + resumed.out("step_000004") + " --max_steps 8");
  REQUIRE_MESSAGE(b2.exit_code == 0, b2.output);
  CHECK(b2.output.find("resumed from") != std::string::npos);
  std::vector<std::string> la = train_records(straight.out("metrics.jsonl"));
  std::vector<std::string> lb = train_records(resumed.out("metrics.jsonl"));
  REQUIRE(la.size() == 8);
  CHECK(la == lb);
  check_same_model(straight.out("step_000008"), resumed.out("step_000008"));
}

// A checkpoint's config names its files and output_dir by absolute paths, so `--resume` from
// another directory goes on where the run wrote; a resume through YAML's resume_from_checkpoint
// with keys edited since the save goes on with them (as HF's Trainer) and names each in one line.
TEST_CASE("resume: from another directory with relative paths; edited keys in YAML are named") {
  Workspace ws("resume_paths");
  std::string yaml = read_file(ws.config("max_steps: 2\nsave_steps: 2\n"));
  for (const char* name : {"corpus.txt", "prepared", "out"}) {
    const std::string absolute = (ws.dir / name).string();
    yaml.replace(yaml.find(absolute), absolute.size(), name);
  }
  write_file((ws.dir / "relative.yaml").string(), yaml);
  const std::string in_dir = "cd " + ws.dir.string() + " && ";
  Run a = run_train("relative.yaml", in_dir);
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train("--resume " + ws.out("step_000002") + " --max_steps 4", "cd " + fs::temp_directory_path().string() + " && ");
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK(fs::exists(ws.out("step_000004/model.bin")));
  CHECK(!contains(b.output, "differs from the config"));
  write_file((ws.dir / "edited.yaml").string(), yaml + "seed: 8\nlearning_rate: 0.001\nmax_steps: 6\n"
                                                "resume_from_checkpoint: " + ws.out("step_000004") + "\n");
  Run c = run_train("edited.yaml", in_dir);
  REQUIRE_MESSAGE(c.exit_code == 0, c.output);
  CHECK_MESSAGE(contains(c.output, "edited.yaml differs from the config this checkpoint was saved with in "
                                   "learning_rate (0.003 -> 0.001), seed (7 -> 8): the run goes on from step 4 with "
                                   "the new settings"), c.output);
  // constant_with_warmup's rates do not depend on max_steps; a cosine's do once past its warmup.
  CHECK(!contains(c.output, "the schedule now spans"));
  std::string cosine = yaml;
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"constant_with_warmup", "cosine"},
                                 {"output_dir: out", "output_dir: cosine_out"}, {"max_steps: 2", "max_steps: 4"}})
    cosine.replace(cosine.find(from), from.size(), to);
  write_file((ws.dir / "cosine.yaml").string(), cosine);
  REQUIRE(run_train("cosine.yaml", in_dir).exit_code == 0);
  Run d = run_train("--resume " + (ws.dir / "cosine_out" / "step_000004").string() + " --max_steps 6");
  REQUIRE_MESSAGE(d.exit_code == 0, d.output);
  CHECK_MESSAGE(contains(d.output, "max_steps 4 -> 6: the schedule now spans 6 steps, and its rates from step 4 on "
                                   "are not those of the saved 4-step schedule: from step 4 the run is neither"),
                d.output);
}

TEST_CASE("tokenizer_config: trains on a small tiktoken ranks file or tokenizer.json; the model grows to hold its ids") {
  Workspace ws("bpe");
  write_file((ws.dir / "tokenizer.model").string(), small_ranks_text());
  const std::string tokenizer = "tokenizer_config: " + ws.dir.string() + "\n";
  Run r = run_train(ws.config(tokenizer + "vocab_size: " + std::to_string(kRanks + 256) + "\nmax_steps: 2\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("tokenizer: tiktoken 268+256 #") != std::string::npos);
  CHECK(train_records(ws.out("metrics.jsonl")).size() == 2);
  // A tokenizer larger than the model (the tiny preset's 259 ids): embed_tokens grows to it, as
  // Axolotl's _resize_token_embeddings grows it whatever made the tokenizer larger.
  Run small_vocab = run_train(ws.config(tokenizer + "max_steps: 2\n"));
  REQUIRE_MESSAGE(small_vocab.exit_code == 0, small_vocab.output);
  CHECK(small_vocab.output.find("vocabulary: the tokenizer's 524 ids outgrow the model's 259: embed_tokens and lm_head "
                                "get 265 new rows") != std::string::npos);
  CHECK(read_hf_config(ws.out("config.json")).vocab_size == 524);
  // The same vocabulary as HF's tokenizer.json (tools/make_hf_tokenizer_json.py), four specials.
  const std::string hf = (fs::path(__FILE__).parent_path() / "data" / "hf_tokenizer").string();
  Run json = run_train(ws.config("tokenizer_config: " + hf + "\nvocab_size: 272\nmax_steps: 2\n"
                                  "special_tokens:\n  pad_token: <|end_of_text|>\n"));
  REQUIRE_MESSAGE(json.exit_code == 0, json.output);
  CHECK(json.output.find("tokenizer: hf-bpe 268+4 #") != std::string::npos);
  // The export carries the tokenizer, the config's pad_token recorded as Axolotl's saves do.
  CHECK(json.output.find("safetensors, generation_config.json, tokenizer.json, tokenizer_config.json)") != std::string::npos);
  BpeTokenizer saved(ws.out("tokenizer.json"));
  CHECK(saved.bos() == kRanks);
  CHECK(saved.eos() == kRanks + 3);
  CHECK(saved.pad() == kRanks + 1);
}

TEST_CASE("tf32 on the CPU: the run says once that it has no effect") {
  Workspace ws("tf32");
  Run r = run_train(ws.config("tf32: true\nmax_steps: 1\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::string note = "tf32: no effect on the CPU";
  REQUIRE(r.output.find(note) != std::string::npos);
  CHECK(r.output.find(note) == r.output.rfind(note));
}

// An untrained model samples any bytes through the byte tokenizer, most of them no UTF-8 and
// some control characters: the printed samples replace the first as HF's decode does and spell
// out the others, so the output stays text (grep reads it as text) and each sample one line.
TEST_CASE("the samples at the end of a run are UTF-8 text, one line each") {
  Workspace ws("samples_text");
  Run r = run_train(ws.config("max_steps: 1\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(decode_utf8_replacing(r.output) == r.output);
  const size_t at = r.output.find("samples:\n");
  REQUIRE(at != std::string::npos);
  std::istringstream samples(r.output.substr(at + 9));
  int lines = 0;
  for (std::string line; std::getline(samples, line); lines++) {
    CHECK(line.rfind("  > ", 0) == 0);
    CHECK(std::none_of(line.begin(), line.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }));
  }
  CHECK(lines == 3);
}

TEST_CASE("num_epochs below 1: Axolotl's ceil(rows x num_epochs / batch) steps") {
  Workspace ws("epoch_share");
  Run r = run_train(ws.config("num_epochs: 0.5\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const size_t at = r.output.find("schedule: ");
  REQUIRE(at != std::string::npos);
  const int64_t steps = std::stoll(r.output.substr(at + 10));
  const size_t rows_at = r.output.find("rows: ");
  REQUIRE(rows_at != std::string::npos);
  const int64_t rows = std::stoll(r.output.substr(rows_at + 6));
  CHECK(steps == (rows + 7) / 8);  // ceil(rows x 0.5 / (micro-batches of 2 x accumulation 2))
  CHECK(train_records(ws.out("metrics.jsonl")).size() == static_cast<size_t>(steps));
}

TEST_CASE("loss watchdog: stops once the logged loss stayed above the threshold, as Axolotl's") {
  Workspace ws("watchdog");
  // Every loss is above 0.01. Step 1 ends with no log yet; steps 2 and 3 see the previous
  // step's line above it: the second violation stops the run after step 3, saved and exported.
  Run r = run_train(ws.config("max_steps: 20\nloss_watchdog_threshold: 0.01\nloss_watchdog_patience: 2\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("loss watchdog: the logged loss was above loss_watchdog_threshold 0.01 at 2 step ends") !=
        std::string::npos);
  CHECK(train_records(ws.out("metrics.jsonl")).size() == 3);
  CHECK(!fs::exists(ws.out("step_000001")));
  CHECK(fs::exists(ws.out("step_000003/model.bin")));
  CHECK(fs::exists(ws.out("model.safetensors")));
  // An evaluation logged after the loss line hides it from the watchdog (HF's log history).
  Workspace evaluated("watchdog_eval");
  Run e = run_train(evaluated.config("max_steps: 20\neval_steps: 1\nloss_watchdog_threshold: 0.01\nsave_first_step: true\n"));
  REQUIRE_MESSAGE(e.exit_code == 0, e.output);
  CHECK(fs::exists(evaluated.out("step_000001/model.bin")));  // save_first_step
  CHECK(e.output.find("loss watchdog: the logged loss") == std::string::npos);
  CHECK(train_records(evaluated.out("metrics.jsonl")).size() == 20);
}

TEST_CASE("SIGTERM finishes the step, writes a checkpoint that resumes exactly, exits 0") {
  Workspace ws("sigterm"), ref("sigterm_ref");
  std::string cfg = ws.config("max_steps: 100000\n");
  const std::string log = (ws.dir / "run.log").string();
  pid_t pid = spawn_train({cfg}, log);
  // Wait for a few logged steps, then ask it to stop.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (train_records(ws.out("metrics.jsonl")).size() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  std::vector<std::string> ckpts = list_checkpoints(ws.out());
  REQUIRE(ckpts.size() == 1);
  int64_t k = *checkpoint_step(ckpts[0]);
  CHECK(read_file(log).find("stopped by signal") != std::string::npos);

  Run resumed = run_train("--resume " + ckpts[0] + " --max_steps " + std::to_string(k + 3));
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  Run straight = run_train(ref.config("max_steps: " + std::to_string(k + 3) + "\n"));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  std::vector<std::string> a = train_records(ws.out("metrics.jsonl")), b = train_records(ref.out("metrics.jsonl"));
  CHECK(a == b);
}

TEST_CASE("s2_attention pads every row to sequence_len and says so; an odd group of 5 trains") {
  Workspace ws("s2");
  Run r = run_train(ws.config("s2_attention: true\nsequence_len: 20\nmax_steps: 2\nval_set_size: 0\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("s2_attention: every row padded to sequence_len 20 (pad_to_sequence_len on)") != std::string::npos);
  CHECK(train_records(ws.out("metrics.jsonl")).size() == 2);
  Run padded = run_train(ws.config("s2_attention: true\npad_to_sequence_len: true\nmax_steps: 1\nval_set_size: 0\n"));
  REQUIRE_MESSAGE(padded.exit_code == 0, padded.output);
  CHECK(padded.output.find("every row padded") == std::string::npos);
}

TEST_CASE("s2_attention evaluates in its groups, as Axolotl's patched attention does") {
  // The same weights at step 0, evaluated over the same padded rows: S2's groups against full causal.
  auto first_eval_loss = [](const std::string& name, const std::string& attention) {
    Workspace ws(name);
    Run r = run_train(ws.config(attention + "pad_to_sequence_len: true\nsequence_len: 20\nmax_steps: 1\n"
                                            "eval_steps: 1\nval_set_size: 0.2\n"));
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    return number_after(read_file(ws.out("metrics.jsonl")), "\\{\"step\": 0, \"eval_loss\":");
  };
  const double s2 = first_eval_loss("s2_eval", "s2_attention: true\n");
  const double full = first_eval_loss("s2_eval_full", "flash_attention: true\n");
  CHECK(std::abs(s2 - full) > 1e-6 * full);
  // test_datasets' rows of a longer eval_sequence_len take groups of their own length's share (6 of
  // 24 here; sequence_len 20's groups of 5 would not divide them), as Axolotl's patch takes them.
  Workspace ws("s2_eval_len");
  Run r = run_train(ws.config("s2_attention: true\nsequence_len: 20\nmax_steps: 1\neval_steps: 1\nval_set_size: 0\n"
                              "eval_sequence_len: 24\ntest_datasets: [{path: " + (ws.dir / "corpus.txt").string() +
                              ", type: completion}]\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(read_file(ws.out("metrics.jsonl")).find("{\"step\": 1, \"eval_loss\"") != std::string::npos);
}

TEST_CASE("bad configs: one line naming the file and key, exit code 2") {
  Workspace ws("badcfg");
  struct Case {
    std::string extra, expect;
  };
  for (const Case& c : {Case{"max_steps: many\n", "max_steps"},
                        Case{"flash_attention: true\nattn_implementation: sdpa\n", "attention"},
                        Case{"s2_attention: true\nsample_packing: true\n", "sample_packing"},
                        Case{"early_stopping_patience: 2\nval_set_size: 0\n", "early_stopping_patience"},
                        Case{"optimizer: lamb\n", "optimizer"},
                        Case{"learning_rate: -1\n", "learning_rate"},
                        Case{"datasets:\n  - path: /no/such/dir\n    type: completion\n", "/no/such/dir"}}) {
    CAPTURE(c.extra);
    Run r = run_train(ws.config(c.extra));
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("config.yaml") != std::string::npos);
    CHECK(r.output.find(c.expect) != std::string::npos);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  }
  if (device_count(DeviceType::cuda) == 0) {  // CI: `device: cuda` without a GPU is bad input
    Run no_gpu = run_train(ws.config() + " --device cuda");
    CHECK(no_gpu.exit_code == 2);
    CHECK(no_gpu.output.find("device: cuda") != std::string::npos);
  }
  const std::string fifo = (ws.dir / "config.fifo").string();  // reading it would block forever
  REQUIRE(mkfifo(fifo.c_str(), 0644) == 0);
  Run fifo_run = run_train(fifo);
  CHECK(fifo_run.exit_code == 2);
  CHECK(fifo_run.output == "error: " + fifo + ": expected a YAML config file, got a FIFO\n");
  // The files a config names, and the run's metrics log, likewise.
  Run fifo_deepspeed = run_train(ws.config("deepspeed: " + fifo + "\n"));
  CHECK(fifo_deepspeed.exit_code == 2);
  CHECK(contains(fifo_deepspeed.output, ": deepspeed: expected a readable DeepSpeed JSON config, got '" + fifo + "', a FIFO"));
  fs::create_directories(ws.out());
  REQUIRE(mkfifo(ws.out("metrics.jsonl").c_str(), 0644) == 0);
  Run fifo_metrics = run_train(ws.config("max_steps: 1\noverwrite_output_dir: false\n"));
  CHECK(fifo_metrics.exit_code == 2);
  CHECK_MESSAGE(contains(fifo_metrics.output, "metrics.jsonl: expected the run's metrics log (a file), got a FIFO"),
                fifo_metrics.output);
  fs::remove(ws.out("metrics.jsonl"));
  // JSON nested thousands deep (written back in a message, it would overflow the stack).
  write_file((ws.dir / "deep.json").string(), std::string(100000, '[') + std::string(100000, ']'));
  Run deep = run_train(ws.config("deepspeed: " + (ws.dir / "deep.json").string() + "\n"));
  CHECK(deep.exit_code == 2);
  CHECK(contains(deep.output, "deep.json', which is not one"));
  Run missing = run_train((ws.dir / "nope.yaml").string());
  CHECK(missing.exit_code == 2);
  CHECK(missing.output.find("nope.yaml") != std::string::npos);
  Run cli = run_train(ws.config() + " --max_step 3");
  CHECK(cli.exit_code == 2);
  CHECK(cli.output.find("--max_step: expected a config key llm_train knows (did you mean --max_steps?)") != std::string::npos);
}

TEST_CASE("damaged checkpoints are refused on --resume, naming the file and tensor, exit 2") {
  Workspace ws("badckpt");
  REQUIRE(run_train(ws.config("max_steps: 2\nsave_steps: 1\n")).exit_code == 0);
  std::string ckpt = ws.out("step_000002");
  std::string model = ckpt + "/model.bin";
  std::string pristine = read_file(model);

  fs::resize_file(model, pristine.size() / 2);  // truncated
  Run r = run_train("--resume " + ckpt);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("model.bin") != std::string::npos);
  CHECK(r.output.find("truncated") != std::string::npos);

  std::string flipped = pristine;  // one flipped byte in the last tensor's data
  flipped[flipped.size() - 7] ^= 0x10;
  write_file(model, flipped);
  r = run_train("--resume " + ckpt);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("checksum") != std::string::npos);
  CHECK(r.output.find("model.norm.weight") != std::string::npos);

  std::string bad_version = pristine;  // bytes [8, 12): the format version, little-endian
  bad_version[8] = 2;
  write_file(model, bad_version);
  r = run_train("--resume " + ckpt);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("version") != std::string::npos);

  std::string bad_magic = pristine;
  bad_magic[0] = 'X';
  write_file(model, bad_magic);
  r = run_train("--resume " + ckpt);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("magic") != std::string::npos);

  write_file(model, pristine);  // a checkpoint of another model shape
  r = run_train("--resume " + ckpt + " --output_dir " + ws.out("other"));
  CHECK(r.exit_code == 0);
  std::string cfg_path = ckpt + "/config.yaml";
  const std::string pristine_cfg = read_file(cfg_path);
  std::string cfg = pristine_cfg;
  auto at = cfg.find("hidden_size: 32");
  REQUIRE(at != std::string::npos);
  cfg.replace(at, 15, "hidden_size: 64");
  write_file(cfg_path, cfg);
  r = run_train("--resume " + ckpt);  // the manifest seals the config: edited is refused
  CHECK(r.exit_code == 2);
  const std::string edited_error = error_text(r);
  CHECK(edited_error.find(cfg_path + ": checksum ") != std::string::npos);
  CHECK(std::count(edited_error.begin(), edited_error.end(), '\n') == 1);
  const std::string manifest = read_file(ckpt + "/manifest.json");
  fs::remove(ckpt + "/manifest.json");  // unsealed (legacy): the model's shapes disagree
  r = run_train("--resume " + ckpt);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("model.embed_tokens.weight") != std::string::npos);

  // auto-resume falls back past the damaged newest checkpoint to the previous one.
  write_file(cfg_path, pristine_cfg);
  write_file(ckpt + "/manifest.json", manifest);
  write_file(model, bad_magic);
  r = run_train(ws.config("max_steps: 3\nsave_steps: 1\nauto_resume_from_checkpoints: true\n"));
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("resumed from " + ws.out("step_000001")) != std::string::npos);
}

TEST_CASE("non-finite losses: updates are skipped and counted, and 5 in a row stop the run with a clear message") {
  Workspace ws("nonfinite");
  Run r = run_train(ws.config("max_steps: 50\nlearning_rate: 1.0e+30\nmax_grad_norm: 0\nwarmup_steps: 0\n"));
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("update skipped") != std::string::npos);
  CHECK(r.output.find("5 steps in a row had a non-finite loss or gradient norm") != std::string::npos);
  // A run that ends before 5 goes on to its end, as HF's, and its last line counts them.
  Run short_run = run_train(ws.config("max_steps: 3\nlearning_rate: 1.0e+30\nmax_grad_norm: 0\nwarmup_steps: 0\n"));
  CHECK(short_run.exit_code == 0);
  CHECK_MESSAGE(contains(short_run.output, "done: 3 steps (2 of this run's with a non-finite loss or gradient norm)"),
                short_run.output);
  // Updated in backward (LOMO): a parameter whose gradient is not finite keeps its weights.
  Run lomo = run_train(ws.config("max_steps: 50\nlearning_rate: 1.0e+30\nwarmup_steps: 0\noptimizer: lomo\n"));
  CHECK(lomo.exit_code == 1);
  CHECK(lomo.output.find("the parameters with a non-finite gradient kept their weights (the others were updated in "
                         "backward)") != std::string::npos);
  CHECK(lomo.output.find("5 steps in a row had a non-finite loss or gradient norm") != std::string::npos);
}
