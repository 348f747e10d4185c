// Data-parallel training on the CPU through mpirun (Open MPI, 2 or 4 ranks on this 2-core
// machine): the same global batch gives the same losses as one rank, resume is exact, one failing
// rank ends the job, a signal to one rank stops every rank together, ZeRO-1 and 2 match ZeRO-0
// with less optimizer memory per rank, 8-bit AdamW under ZeRO matches one rank's, ZeRO-3
// matches one rank with a lower peak than ZeRO-2, and LoRA and QLoRA under ZeRO-3 (the frozen
// base sharded) match one rank and ZeRO-2, and prefetching the next unit changes no bit.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <regex>
#include <thread>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "test/train_fixture.h"

using namespace llm::testing;

namespace {
// Starts `mpirun -np 2 llm_train args` writing its output to `log`; returns mpirun's pid.
pid_t spawn_mpirun(const std::string& args, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string command = "exec " + mpirun(2) + kTrainBin + " " + args + " > " + log + " 2>&1";
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// The processes whose parent is `parent`: mpirun's ranks on this machine.
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> children;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat;
    std::getline(std::ifstream(entry.path() / "stat"), stat);
    const auto comm_end = stat.rfind(')');  // "pid (comm) state ppid ...": comm may hold spaces
    if (comm_end == std::string::npos) continue;
    std::istringstream rest(stat.substr(comm_end + 1));
    char state = 0;
    pid_t ppid = 0;
    if (rest >> state >> ppid && ppid == parent) children.push_back(std::stoi(name));
  }
  return children;
}

// Bucket cap small enough that the tiny test model spans several buckets.
const std::string kDdp = "max_steps: 6\neval_steps: 3\nsave_steps: 3\nddp_bucket_cap_mb: 0.01\n";

// The two runs' weights at kDdp's last step, element by element.
void check_weights_close(const Workspace& one, const Workspace& two) {
  llm::TensorFile x = llm::read_tensor_file(one.out("step_000006/model.bin"));
  llm::TensorFile y = llm::read_tensor_file(two.out("step_000006/model.bin"));
  for (size_t i = 0; i < x.tensors.size(); i++) {
    std::vector<float> u = x.tensors[i].tensor.to_floats(), v = y.tensors[i].tensor.to_floats();
    float worst = 0.0f;
    for (size_t j = 0; j < u.size(); j++) worst = std::max(worst, std::fabs(u[j] - v[j]));
    CAPTURE(x.tensors[i].name);
    CHECK(worst <= 1e-5f);
  }
}

}  // namespace

TEST_CASE("2 ranks x micro batch 2 == 1 rank x micro batch 4: losses and weights") {
  // Plain data parallel, and ZeRO-2 (gradients reduce-scattered, each rank keeping its slices).
  std::string zero;
  SUBCASE("zero_stage 0") { zero = "zero_stage: 0\n"; }
  SUBCASE("zero_stage 2") { zero = "zero_stage: 2\n"; }
  Workspace one("dp_one"), two("dp_two");
  Run a = run_train(one.config(kDdp + "micro_batch_size: 4\n"));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(two.config(kDdp + zero), mpirun(2));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK(b.output.find("x 2 rank(s) = 8 rows") != std::string::npos);
  // Tolerance: fp32 gradient sums over 2 ranks vs one batch differ in the last bits, and six
  // AdamW steps carry that forward; 1e-5 relative is far below any real difference.
  check_losses_close(one.out("metrics.jsonl"), two.out("metrics.jsonl"), 1e-5);
  check_weights_close(one, two);
}

namespace {

// A 2-rank run's step-3 checkpoint resumed on one rank: it says the continuation is not exact
// (HF's Trainer's data skip by steps), and trains on to the end from there.
void check_resume_on_one_rank(const Workspace& resumed) {
  const Run single = run_train("--resume " + resumed.out("step_000003") + " --max_steps 6");
  REQUIRE_MESSAGE(single.exit_code == 0, single.output);
  CHECK(single.output.find("written by a run of 2 rank(s), resumed on 1: the weights, optimizer state and schedule "
                           "continue, but not exactly: a step now takes 4 rows where it took 8") != std::string::npos);
  CHECK(single.output.find("step 6/6") != std::string::npos);
  CHECK(fs::exists(resumed.out(llm::checkpoint_dir_name(6) + "/model.bin")));
}

}  // namespace

TEST_CASE("resume under 2 ranks (ZeRO-1, ZeRO-2) is exact; on another world size it goes on, saying it is not exact") {
  std::string cfg;
  SUBCASE("zero_stage 1") { cfg = kDdp + "zero_stage: 1\n"; }
  SUBCASE("zero_stage 2") { cfg = kDdp + "zero_stage: 2\n"; }
  Workspace straight("dp_straight"), resumed("dp_resumed");
  check_resume_exact(straight, resumed, cfg);
  check_resume_on_one_rank(resumed);
}

// The names, dtypes and shapes of a checkpoint's optimizer state: what a resume reads.
std::vector<std::string> state_layout(const std::string& ckpt) {
  std::vector<std::string> out;
  for (const llm::NamedTensor& t : llm::read_tensor_file(ckpt + "/optimizer.bin").tensors)
    out.push_back(t.name + " " + t.tensor.str());
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE("8-bit AdamW under ZeRO-1, 2 and 3: one rank's losses, exact resume, one state layout") {
  // The embedding (259 x 32) is the tensor with 8-bit moments: 5 blocks, split 3 + 2 between the
  // ranks by kQuantSliceAlignment; the smaller ones keep f32 moments inside the same buckets.
  const std::string cfg = kDdp + "optimizer: adamw_8bit\n";
  Workspace one("dp8_one"), zero1("dp8_zero1"), zero3("dp8_zero3"), straight("dp8_straight"), resumed("dp8_resumed");
  Run a = run_train(one.config(cfg + "micro_batch_size: 4\n"));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(zero1.config(cfg + "zero_stage: 1\n"), mpirun(2));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  Run c = run_train(zero3.config(cfg + "zero_stage: 3\n"), mpirun(2));
  REQUIRE_MESSAGE(c.exit_code == 0, c.output);
  const std::string zero2 = check_resume_exact(straight, resumed, cfg + "zero_stage: 2\n");
  // Each rank quantises the blocks one rank would, with the same arithmetic: only the gradients'
  // fp32 sums differ, as in the f32 tests, and no code flipped by that moved a loss past 1e-5.
  check_losses_close(one.out("metrics.jsonl"), zero1.out("metrics.jsonl"), 1e-5);
  check_losses_close(one.out("metrics.jsonl"), straight.out("metrics.jsonl"), 1e-5);
  check_losses_close(one.out("metrics.jsonl"), zero3.out("metrics.jsonl"), 1e-5);
  // The same tensors as one rank's AdamW writes, so the state does not depend on the world size.
  CHECK(state_layout(one.out("step_000006")) == state_layout(zero1.out("step_000006")));
  CHECK(state_layout(one.out("step_000006")) == state_layout(zero3.out("step_000006")));
  CHECK(state_layout(one.out("step_000006")) == state_layout(straight.out("step_000006")));
  const double whole = number_after(a.output, "AdamW state"), sharded = number_after(zero2, "AdamW state");
  MESSAGE("8-bit AdamW state per rank: 1 rank " << whole << " MiB, ZeRO-2 over 2 ranks " << sharded << " MiB");
  CHECK(sharded < 0.6 * whole);
}

TEST_CASE("adamc under ZeRO-1: one rank's losses, the decay's correction in every slice") {
  // A large decay, so that a slice decaying as AdamW (lr, not lr^2 / max_lr) would show.
  const std::string cfg = kDdp + "optimizer: adamc\nweight_decay: 0.5\nlearning_rate: 0.01\n";
  Workspace one("dp_adamc_one"), zero1("dp_adamc_zero1");
  Run a = run_train(one.config(cfg + "micro_batch_size: 4\n"));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  CHECK(a.output.find("AdamC (AdamW decaying by weight_decay x lr^2 / 0.01)") != std::string::npos);
  Run b = run_train(zero1.config(cfg + "zero_stage: 1\n"), mpirun(2));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK(b.output.find("AdamC (AdamW decaying by weight_decay x lr^2 / 0.01), ZeRO stage 1") != std::string::npos);
  check_losses_close(one.out("metrics.jsonl"), zero1.out("metrics.jsonl"), 1e-5);
  check_weights_close(one, zero1);
}

TEST_CASE("adapter: lora under 2 ranks and ZeRO-1: exact resume, AdamW state of the adapters only") {
  Workspace straight("dp_lora_straight"), resumed("dp_lora_resumed");
  const std::string cfg = kDdp + "zero_stage: 1\nadapter: lora\nlora_r: 4\nlora_dropout: 0.1\n"
                                 "lora_target_modules: [q_proj, v_proj, down_proj]\n";
  const std::string output = check_resume_exact(straight, resumed, cfg);
  // 2 layers x 3 targets x (A (4, in) + B (out, 4)): q 32 -> 32, v 32 -> 16, down 64 -> 32; two
  // f32 moments each, about half of them per rank.
  const double adapters = 2 * (4 * (32 + 32 + 64) + 4 * (32 + 16 + 32));
  CHECK(number_after(output, "AdamW state") <= 0.51 * adapters * 8 / 1048576);
  CHECK(number_after(output, "AdamW state") >= 0.45 * adapters * 8 / 1048576);  // printed to 3 decimals
}

TEST_CASE("a rank that fails ends the whole job, non-zero, within 10 seconds") {
  Workspace ws("dp_fail");
  auto start = std::chrono::steady_clock::now();
  Run r = run_train(ws.config("max_steps: 100000\n"), mpirun(2, "LLM_TRAIN_FAIL_RANK=1 LLM_TRAIN_FAIL_STEP=3"));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("rank 1: injected failure at step 3") != std::string::npos);
  CHECK(seconds < 10.0);
}

TEST_CASE("a config that no rank can read is said once, exit 2, with no MPI_Abort") {
  Workspace ws("dp_bad_config");
  Run r = run_train(ws.config("max_steps: -3\n"), mpirun(2));
  CHECK(r.exit_code == 2);
  const std::string line = "max_steps: expected an integer >= 1, got -3\n";
  CHECK_MESSAGE(contains(r.output, line), r.output);
  CHECK_MESSAGE(r.output.find(line) == r.output.rfind(line), r.output);
  CHECK(contains(r.output, "error: " + ws.dir.string() + "/config.yaml:"));
  CHECK(!contains(r.output, "rank 0:"));
  CHECK(!contains(r.output, "MPI_ABORT"));
}

// Rank 0 reads the datasets for every rank (the token cache): bad data ends them all alike.
TEST_CASE("data that rank 0 cannot read is said once, exit 2, with no MPI_Abort") {
  Workspace ws("dp_bad_data");
  write_file((ws.dir / "corpus.txt").string(), "caf\xe9 au lait\n");  // Latin-1, no UTF-8
  Run r = run_train(ws.config("max_steps: 2\n"), mpirun(2));
  CHECK(r.exit_code == 2);
  const std::string line = "corpus.txt:1: ";
  CHECK_MESSAGE(contains(r.output, "error: " + ws.dir.string() + "/" + line), r.output);
  CHECK_MESSAGE(r.output.find(line) == r.output.rfind(line), r.output);
  CHECK(!contains(r.output, "MPI_ABORT"));
}

// On several ranks Axolotl runs its DistMuon (dion's algorithm), not the Muon built here.
TEST_CASE("optimizer: muon on 2 ranks is refused in one line") {
  Workspace ws("dp_muon");
  Run r = run_train(ws.config("max_steps: 2\noptimizer: muon\n"), mpirun(2));
  CHECK(r.exit_code != 0);
  CHECK_MESSAGE(r.output.find("optimizer: expected one rank with muon (on several Axolotl runs its DistMuon, dion's "
                              "Muon, which is not built here), got 2 ranks") != std::string::npos, r.output);
}

// Updates made in backward come before any reduction could average the gradients.
TEST_CASE("optimizers updating in backward (galore_*_layerwise, lomo, adalomo) on 2 ranks are refused in one line") {
  Workspace ws("dp_in_backward");
  for (const std::string optimizer : {"galore_adamw_layerwise", "lomo", "adalomo"}) {
    CAPTURE(optimizer);
    Run r = run_train(ws.config("max_steps: 2\ngradient_accumulation_steps: 1\noptim_target_modules: all_linear\n"
                                "optimizer: " + optimizer + "\n"), mpirun(2));
    CHECK(r.exit_code != 0);
    CHECK_MESSAGE(r.output.find("optimizer: expected one process with " + optimizer + " (each parameter updates in "
                                "backward before a reduction could average it") != std::string::npos, r.output);
  }
}

TEST_CASE("a SIGTERM to one rank stops the whole job together: exit 0 in training, 143 in start-up") {
  // The ranks are what to signal: Open MPI's mpirun exits 1 after a signal of its own, whatever
  // the ranks do (README, Reliability).
  Workspace ws("dp_signal");
  const std::string log = (ws.dir / "run.log").string();
  std::string config, wait_for;
  int expected = 0;
  SUBCASE("during training: a checkpoint, every rank at the same step") {
    config = ws.config("max_steps: 100000\n");
    wait_for = "step 3/";
  }
  SUBCASE("during start-up: rank 0 tokenising, the other waiting for its token cache") {
    std::string corpus;
    for (int i = 0; i < 200000; i++) corpus += "document " + std::to_string(i) + ": the quick brown fox.\n";
    write_file((ws.dir / "corpus.txt").string(), corpus);
    config = ws.config("max_steps: 1\n");
    wait_for = "tokenizing 1 dataset(s)";
    expected = 128 + SIGTERM;
  }
  const pid_t job = spawn_mpirun(config, log);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::vector<pid_t> ranks;
  while ((read_file(log).find(wait_for) == std::string::npos || (ranks = children_of(job)).size() < 2) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE_MESSAGE(ranks.size() == 2, read_file(log));
  kill(ranks.back(), SIGTERM);  // one rank, whichever: the others learn it when they next agree
  int status = 0;
  waitpid(job, &status, 0);
  const std::string output = read_file(log);
  REQUIRE_MESSAGE(WIFEXITED(status), output);
  CHECK_MESSAGE(WEXITSTATUS(status) == expected, output);
  if (expected == 0) {
    CHECK(output.find("stopped by signal: checkpoint written to") != std::string::npos);
    CHECK(llm::list_checkpoints(ws.out()).size() == 1);
  } else {
    CHECK(output.find("stopped by SIGTERM during start-up (") != std::string::npos);
    CHECK(llm::list_checkpoints(ws.out()).empty());
  }
}

TEST_CASE("ZeRO-1 and ZeRO-2 give ZeRO-0's losses with less memory per rank") {
  Workspace zero0("dp_zero0"), zero1("dp_zero1"), zero2("dp_zero2");
  Run a = run_train(zero0.config(kDdp), mpirun(2));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(zero1.config(kDdp + "zero_stage: 1\n"), mpirun(2));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  Run c = run_train(zero2.config(kDdp + "zero_stage: 2\n"), mpirun(2));
  REQUIRE_MESSAGE(c.exit_code == 0, c.output);
  check_losses_close(zero0.out("metrics.jsonl"), zero1.out("metrics.jsonl"), 1e-6);
  check_losses_close(zero0.out("metrics.jsonl"), zero2.out("metrics.jsonl"), 1e-6);
  double full = number_after(a.output, "AdamW state");
  double sharded = number_after(b.output, "AdamW state");
  MESSAGE("optimizer state per rank: ZeRO-0 " << full << " MiB, ZeRO-1 " << sharded << " MiB");
  CHECK(sharded < 0.51 * full);
  // Between steps ZeRO-2 holds no full gradients and no flat buffers: the memory in use after a
  // step (the log's `mem`) drops by about the model's f32 bytes twice over.
  double in_use1 = number_after(b.output, "\\| mem"), in_use2 = number_after(c.output, "\\| mem");
  MESSAGE("memory in use after a step: ZeRO-1 " << in_use1 << " MiB, ZeRO-2 " << in_use2 << " MiB");
  CHECK(in_use2 < in_use1);
}

// ZeRO-3: 20 steps of accumulation 2; one rank takes the whole global batch of 8 rows.
const std::string kZero3 = "max_steps: 20\neval_steps: 10\nsave_steps: 10\n";

TEST_CASE("ZeRO-3 over 2 and 4 ranks gives one rank's losses over 20 steps, with and without recompute") {
  Workspace one("z3_one");
  Run a = run_train(one.config(kZero3 + "micro_batch_size: 4\n"));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  for (int ranks : {2, 4}) {
    for (const std::string checkpointing : {"false", "true"}) {
      CAPTURE(ranks);
      CAPTURE(checkpointing);
      Workspace sharded("z3_sharded");
      Run b = run_train(sharded.config(kZero3 + "zero_stage: 3\nmicro_batch_size: " + std::to_string(4 / ranks) +
                                       "\ngradient_checkpointing: " + checkpointing + "\n"),
                        mpirun(ranks));
      REQUIRE_MESSAGE(b.exit_code == 0, b.output);
      CHECK(b.output.find("ZeRO stage 3 (weights, moments and gradients sharded") != std::string::npos);
      // Same tolerance as the other stages: fp32 gradient sums in another order (here also per
      // micro-batch, as ZeRO-3 reduces each one), carried through 20 AdamW steps.
      check_losses_close(one.out("metrics.jsonl"), sharded.out("metrics.jsonl"), 1e-5);
    }
  }
}

TEST_CASE("resume under ZeRO-3 is exact, with and without recompute; on another world size it goes on") {
  std::string checkpointing;
  SUBCASE("gradient checkpointing off") { checkpointing = "false"; }
  SUBCASE("gradient checkpointing on") { checkpointing = "true"; }
  Workspace straight("z3_straight"), resumed("z3_resumed");
  check_resume_exact(straight, resumed, kDdp + "zero_stage: 3\ngradient_checkpointing: " + checkpointing + "\n");
  // The state is per-parameter tensors whatever the world size, but the data order is not.
  check_resume_on_one_rank(resumed);
}

TEST_CASE("ZeRO-3's measured peak per rank is below ZeRO-2's on a wider model") {
  // Width 256: each block's weights (2.4 MB f32) dwarf the activations of 2 x 32 tokens.
  const std::string wide = "base_model: tiny\nhidden_size: 256\nintermediate_size: 512\nnum_hidden_layers: 4\n"
                           "num_attention_heads: 4\nnum_key_value_heads: 2\n";
  const std::string cfg = "max_steps: 2\nval_set_size: 0\n";
  Workspace zero2("z3_mem2"), zero3("z3_mem3");
  Run a = run_train(zero2.config(cfg + "zero_stage: 2\n", wide), mpirun(2));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(zero3.config(cfg + "zero_stage: 3\n", wide), mpirun(2));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  const double peak2 = number_after(a.output, "\\(peak"), peak3 = number_after(b.output, "\\(peak");
  MESSAGE("allocator peak on rank 0: ZeRO-2 " << peak2 << " MiB, ZeRO-3 " << peak3 << " MiB");
  CHECK(peak3 < 0.75 * peak2);  // 33.8 (31.6 with prefetch off) against 46.4 MiB when written
}

// The largest difference between the same-named tensors of two safetensors files; `only` keeps
// the names for which it returns true.
float max_difference(const std::string& a_path, const std::string& b_path,
                     const std::function<bool(const std::string&)>& only = {}) {
  const llm::SafetensorsFile a(a_path), b(b_path);
  REQUIRE(a.entries().size() == b.entries().size());
  float worst = 0.0f;
  for (const llm::SafetensorsEntry& e : a.entries()) {
    if (only && !only(e.name)) continue;
    REQUIRE_MESSAGE(b.find(e.name), e.name);
    const std::vector<float> u = a.read(e.name, llm::DType::f32).to_floats(), v = b.read(e.name, llm::DType::f32).to_floats();
    for (size_t j = 0; j < u.size(); j++) worst = std::max(worst, std::fabs(u[j] - v[j]));
  }
  return worst;
}

const std::string kLora = "lora_r: 4\nlora_target_linear: true\n";

TEST_CASE("LoRA, QLoRA and 8-bit LoRA under ZeRO-3: one rank's losses, ZeRO-2's bit for bit, the same adapter and merge") {
  std::string adapter;
  SUBCASE("lora") { adapter = "adapter: lora\nmerge_lora: true\n"; }
  SUBCASE("qlora") { adapter = "adapter: qlora\nload_in_4bit: true\n"; }
  // The int8 codes and row scales are frozen bytes as NF4's are; the merge is onto their dequantisation.
  SUBCASE("lora, load_in_8bit") { adapter = "adapter: lora\nload_in_8bit: true\nmerge_lora: true\n"; }
  for (const std::string checkpointing : {"false", "true"}) {
    CAPTURE(adapter);
    CAPTURE(checkpointing);
    // No dropout: its masks hash each element's place in its micro-batch, which one rank's
    // micro-batches of 4 rows do not share with two ranks' of 2 (resume, below, has dropout).
    const std::string cfg = kDdp + kLora + adapter + "gradient_checkpointing: " + checkpointing + "\n";
    Workspace one("z3a_one"), zero2("z3a_zero2"), zero3("z3a_zero3");
    Run a = run_train(one.config(cfg + "micro_batch_size: 4\n"));
    REQUIRE_MESSAGE(a.exit_code == 0, a.output);
    Run b = run_train(zero2.config(cfg + "zero_stage: 2\n"), mpirun(2));
    REQUIRE_MESSAGE(b.exit_code == 0, b.output);
    Run c = run_train(zero3.config(cfg + "zero_stage: 3\n"), mpirun(2));
    REQUIRE_MESSAGE(c.exit_code == 0, c.output);
    CHECK(c.output.find("ZeRO stage 3 of the frozen base: 3 units gathered per use") != std::string::npos);
    // A quantised base (NF4 or int8) is the same seeded base's same codes at every world size, so
    // it differs from one rank exactly as LoRA does: fp32 gradient sums in another order, carried through
    // six AdamW steps; 1e-5 relative holds for both.
    check_losses_close(one.out("metrics.jsonl"), zero3.out("metrics.jsonl"), 1e-5);
    // The gathered base is the whole base bit for bit, and the adapters are sharded as ZeRO-2
    // shards them: the same arithmetic in the same order.
    CHECK(train_records(zero2.out("metrics.jsonl")) == train_records(zero3.out("metrics.jsonl")));
    check_same_model(zero2.out("step_000006"), zero3.out("step_000006"));
    const std::string peft = "adapter_model.safetensors";
    CHECK(read_file(zero2.out(peft)) == read_file(zero3.out(peft)));
    CHECK(read_file(one.out("adapter_config.json")) == read_file(zero3.out("adapter_config.json")));
    CHECK(max_difference(one.out(peft), zero3.out(peft)) <= 1e-5f);
    if (adapter.find("merge_lora") == std::string::npos) continue;
    // merge_lora gathers the base: what no adapter touches is the seeded base, bit for bit.
    const std::string merged = "merged/model.safetensors";
    CHECK(read_file(zero2.out(merged)) == read_file(zero3.out(merged)));
    CHECK(max_difference(one.out(merged), zero3.out(merged)) <= 1e-5f);
    CHECK(max_difference(one.out(merged), zero3.out(merged),
                         [](const std::string& name) { return name.find("_proj") == std::string::npos; }) == 0.0f);
  }
}

// Prefetch only moves when an all-gather runs: the same bytes arrive, so losses and checkpoints
// are the same bit for bit with it off; recompute changes backward's order of gathers.
TEST_CASE("ZeRO-3 prefetch on and off: the same losses and checkpoints, trained and LoRA, with and without recompute") {
  const std::string off = "fsdp_config:\n  fsdp_forward_prefetch: false\n  fsdp_backward_prefetch: NO_PREFETCH\n";
  for (const std::string& adapter : {std::string(), "adapter: lora\nlora_dropout: 0.1\n" + kLora}) {
    for (const std::string checkpointing : {"false", "true"}) {
      CAPTURE(adapter);
      CAPTURE(checkpointing);
      const std::string cfg = kDdp + adapter + "zero_stage: 3\ngradient_checkpointing: " + checkpointing + "\n";
      Workspace on("z3p_on"), none("z3p_off");
      Run a = run_train(on.config(cfg), mpirun(2));
      REQUIRE_MESSAGE(a.exit_code == 0, a.output);
      CHECK(a.output.find("ZeRO-3 prefetch (the next unit's all-gather while a unit computes): forward on, backward on") !=
            std::string::npos);
      Run b = run_train(none.config(cfg + off), mpirun(2));
      REQUIRE_MESSAGE(b.exit_code == 0, b.output);
      CHECK(b.output.find("forward off, backward off") != std::string::npos);
      // The same collectives; with prefetch on, every one but the passes' first (unit 0) and a
      // checkpoint's gathers was started ahead, and none was a wrong guess.
      std::smatch m;
      const std::regex counts("ZeRO-3: ([0-9]+) unit all-gathers, ([0-9]+) of them prefetched \\(([0-9]+) unused\\)");
      REQUIRE(std::regex_search(a.output, m, counts));
      const int gathers = std::stoi(m[1]), ahead = std::stoi(m[2]), unused = std::stoi(m[3]);
      CHECK(unused == 0);
      CHECK(ahead > gathers / 2);
      REQUIRE(std::regex_search(b.output, m, counts));
      CHECK(std::stoi(m[1]) == gathers);
      CHECK(std::stoi(m[2]) == 0);
      CHECK(train_records(on.out("metrics.jsonl")) == train_records(none.out("metrics.jsonl")));
      for (const std::string step : {"step_000003", "step_000006"}) check_same_model(on.out(step), none.out(step));
    }
  }
  // Four ranks, 3 blocks in recompute segments of 2 and 1: backward gathers unit 0, then block 2,
  // then blocks 0 and 1 (a segment re-runs first to last).
  const std::string three = "base_model: tiny\nhidden_size: 32\nintermediate_size: 64\nnum_hidden_layers: 3\n"
                            "num_attention_heads: 4\nnum_key_value_heads: 2\n";
  const std::string cfg = kDdp + "zero_stage: 3\nmicro_batch_size: 1\ngradient_checkpointing: true\n"
                          "gradient_checkpointing_kwargs:\n  every_n_layers: 2\n";
  Workspace on("z3p4_on"), none("z3p4_off");
  Run a = run_train(on.config(cfg, three), mpirun(4));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(none.config(cfg + off, three), mpirun(4));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK(train_records(on.out("metrics.jsonl")) == train_records(none.out("metrics.jsonl")));
  check_same_model(on.out("step_000006"), none.out("step_000006"));
}

TEST_CASE("resume under ZeRO-3 with an adapter is exact: LoRA, QLoRA and 8-bit LoRA with recompute, QLoRA with DoRA") {
  std::string adapter;
  SUBCASE("lora") { adapter = "adapter: lora\n"; }
  SUBCASE("qlora, gradient checkpointing") { adapter = "adapter: qlora\nload_in_4bit: true\ngradient_checkpointing: true\n"; }
  SUBCASE("load_in_8bit, gradient checkpointing") { adapter = "adapter: lora\nload_in_8bit: true\ngradient_checkpointing: true\n"; }
  SUBCASE("qlora with DoRA") { adapter = "adapter: qlora\nload_in_4bit: true\npeft_use_dora: true\n"; }
  Workspace straight("z3a_straight"), resumed("z3a_resumed");
  check_resume_exact(straight, resumed, kDdp + kLora + "lora_dropout: 0.1\n" + adapter + "zero_stage: 3\n");
}

TEST_CASE("ZeRO-3 with an adapter: less memory in use than ZeRO-2, and the planned peak within 10% of the measured") {
  // Width 256: the frozen base (2.5M f32 parameters) dwarfs the adapters and activations between
  // steps; a rank keeps half of it.
  const std::string wide = "base_model: tiny\nhidden_size: 256\nintermediate_size: 512\nnum_hidden_layers: 4\n"
                           "num_attention_heads: 4\nnum_key_value_heads: 2\n";
  const std::string cfg = "max_steps: 2\nval_set_size: 0\nadapter: lora\n" + kLora;
  Workspace zero2("z3a_mem2"), zero3("z3a_mem3"), rows("z3a_rows");
  // Lines of 630 bytes, each chunked into rows of 256 tokens and a shorter one: every micro-batch
  // of 4 holds a full row, so all are 4 x 256.
  std::string long_lines;
  for (int i = 0; i < 40; i++) {
    for (int k = 0; k < 14; k++) long_lines += "the quick brown fox jumps over the lazy dog. ";
    long_lines += "\n";
  }
  write_file((rows.dir / "corpus.txt").string(), long_lines);
  Run a = run_train(zero2.config(cfg + "zero_stage: 2\n", wide), mpirun(2));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(zero3.config(cfg + "zero_stage: 3\n", wide), mpirun(2));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  const double in_use2 = number_after(a.output, "\\| mem"), in_use3 = number_after(b.output, "\\| mem");
  MESSAGE("memory in use after a step on rank 0: ZeRO-2 " << in_use2 << " MiB, ZeRO-3 " << in_use3 << " MiB");
  CHECK(in_use3 < 0.65 * in_use2);
  // The log's peak counts start-up, which holds one f32 weight at a time beside the slices: both
  // peaks are in the steps, the small model's long rows making activations the larger part.
  std::vector<std::pair<std::string, std::string>> cases{
      {"wide, recompute", run_train(zero3.config(cfg + "zero_stage: 3\ngradient_checkpointing: true\n", wide),
                                    mpirun(2)).output},
      {"long rows", run_train(rows.config(cfg + "zero_stage: 3\nsequence_len: 256\nmicro_batch_size: 4\n"
                                           "gradient_accumulation_steps: 1\n"), mpirun(2)).output}};
  for (const auto& [name, output] : cases) {
    const double planned = number_after(output, "peak per rank"), measured = number_after(output, "\\(peak");
    MESSAGE(name << ": planned " << planned << " MiB, measured " << measured << " MiB");
    CHECK_MESSAGE(std::fabs(planned - measured) <= 0.10 * measured, output);
  }
}
