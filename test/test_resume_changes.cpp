// Resumes under changed settings, through the llm_train binary: the data continues at the saved
// step's place in the new batches (another accumulation or micro-batch size, as HF's Trainer
// skips whole steps), other data, thread count or base weights go on saying so, and another
// optimizer is refused.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "model/hf_checkpoint.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {
// The loss metrics.jsonl logged at `step` (at lr 1e-12 it names the micro-batches the step read).
double loss_at(const std::string& metrics_path, int64_t step) {
  for (const std::string& record : train_records(metrics_path))
    if (contains(record, "{\"step\": " + std::to_string(step) + ",")) return number_after(record, "\"loss\": ");
  FAIL("no step " << step << " in " << metrics_path);
  return 0.0;
}
}  // namespace

// 40 one-line examples, micro-batches of 2 (20 an epoch) at a rate too small to move the weights:
// a step's loss says which rows it read. HF's Trainer resumes step s of a run whose accumulation
// or micro-batch size changed at s's place in the new epochs: epoch s / (updates an epoch), skipping
// s % (updates an epoch) x accumulation micro-batches; so does llm_train (before 2026-12-06 it went on
// at the saved micro-batch, and refused a saved place past the new, shorter epoch).
TEST_CASE("a resume with another accumulation or micro-batch size goes on at the step's place in the new batches") {
  const std::string keys = "learning_rate: 1e-12\nlr_scheduler: constant\nval_set_size: 0\nlogging_steps: 1\n";
  auto workspace = [](const std::string& name) {
    auto ws = std::make_unique<Workspace>(name);
    std::string corpus;
    for (int i = 0; i < 40; i++) corpus += "row " + std::to_string(i) + ": a quick fox " + std::to_string(i % 7) + "\n";
    write_file((ws->dir / "corpus.txt").string(), corpus);
    return ws;
  };
  // Accumulation 1 -> 2 at step 4: step 5 reads micro-batches 8 and 9, as a fresh run with 2 does.
  auto saved = workspace("resume_accumulation"), fresh = workspace("resume_accumulation_fresh");
  REQUIRE(run_train(saved->config(keys + "gradient_accumulation_steps: 1\nmax_steps: 8\nsave_steps: 4\n")).exit_code == 0);
  REQUIRE(run_train(fresh->config(keys + "gradient_accumulation_steps: 2\nmax_steps: 8\n")).exit_code == 0);
  Run r = run_train(saved->config(keys + "gradient_accumulation_steps: 2\nmax_steps: 8\nresume_from_checkpoint: " +
                                  saved->out("step_000004") + "\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(contains(r.output, "gradient_accumulation_steps (1 -> 2)"));
  CHECK(loss_at(saved->out("metrics.jsonl"), 5) == doctest::Approx(loss_at(fresh->out("metrics.jsonl"), 5)).epsilon(1e-7));
  CHECK(loss_at(saved->out("metrics.jsonl"), 5) != doctest::Approx(loss_at(fresh->out("metrics.jsonl"), 3)).epsilon(1e-7));
  // Micro-batches 2 -> 4 at step 30 (epoch 1, micro-batch 10 of 20): step 31 opens epoch 3 of the
  // new 10 a epoch, as a fresh run with 4 does.
  auto batches = workspace("resume_micro_batch"), wider = workspace("resume_micro_batch_fresh");
  const std::string one = "gradient_accumulation_steps: 1\nmax_steps: 32\n";
  REQUIRE(run_train(batches->config(keys + one + "save_steps: 30\n")).exit_code == 0);
  REQUIRE(run_train(wider->config(keys + one + "micro_batch_size: 4\n")).exit_code == 0);
  r = run_train(batches->config(keys + one + "micro_batch_size: 4\nresume_from_checkpoint: " + batches->out("step_000030") + "\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(loss_at(batches->out("metrics.jsonl"), 31) == doctest::Approx(loss_at(wider->out("metrics.jsonl"), 31)).epsilon(1e-7));
}

TEST_CASE("a resume on other data than its checkpoint trained on goes on, saying so") {
  Workspace ws("resume_other_data");
  REQUIRE(run_train(ws.config("max_steps: 4\nsave_steps: 2\n")).exit_code == 0);
  const std::string two = ws.out("step_000002");
  const std::string warning = "the datasets (their files, or the settings they are read with) differ";
  Run r = run_train("--resume " + two);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(!contains(r.output, warning));
  std::ofstream((ws.dir / "corpus.txt").string(), std::ios::app) << "one more line of other text\n";
  r = run_train("--resume " + two);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(contains(r.output, "warning: " + two + ": " + warning));
}

TEST_CASE("a resume on another thread count (or GPU model) goes on, saying it is not bit for bit") {
  Workspace ws("arithmetic");
  REQUIRE(run_train(ws.config("max_steps: 2\nsave_steps: 1\n"), "OMP_NUM_THREADS=1 ").exit_code == 0);
  const std::string one = ws.out("step_000001");
  const std::string saved = read_tensor_file(one + "/trainer.bin").require_metadata("arithmetic");
  CHECK(saved == "the CPU with 1 OpenMP thread");
  Run r = run_train("--resume " + one, "OMP_NUM_THREADS=1 ");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(!contains(r.output, "sums split differently"));
  r = run_train("--resume " + one, "OMP_NUM_THREADS=2 ");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(contains(r.output, "warning: " + one + ": trained on the CPU with 1 OpenMP thread, resumed on the CPU with 2 "
                           "OpenMP threads: sums split differently, so the run goes on close to the saved one, not bit "
                           "for bit\n"));
}

// Lion's momentum has AdamW's first moment's name: without the optimizer named in optimizer.bin
// an AdamW checkpoint would resume as Lion's state.
TEST_CASE("a resume with another optimizer than the checkpoint's is refused in one line") {
  Workspace ws("resume_other_optimizer");
  REQUIRE(run_train(ws.config("max_steps: 2\nsave_steps: 2\n")).exit_code == 0);
  Run r = run_train(ws.config("max_steps: 4\noptimizer: lion_32bit\nresume_from_checkpoint: " + ws.out("step_000002") + "\n"));
  CHECK(r.exit_code != 0);
  CHECK_MESSAGE(contains(r.output, ws.out("step_000002") + "/optimizer.bin: written by the optimizer AdamW, but this "
                                   "run's is Lion; expected the optimizer that wrote it"),
                r.output);
}

TEST_CASE("an adapter run resumed on other base weights goes on, saying so") {
  Workspace ws("resume_other_base");
  LlamaConfig shape;  // the tiny preset's vocabulary, kSmallModel's shape
  shape.hidden_size = 32, shape.intermediate_size = 64, shape.num_hidden_layers = 2;
  shape.num_attention_heads = 4, shape.num_key_value_heads = 2;
  const std::string base = (ws.dir / "base").string();
  LlamaModel first(shape, Device::cpu(), 11), second(shape, Device::cpu(), 12);
  save_hf_model(first, base, DType::bf16, {256, 257});
  const std::string model = "base_model: " + base + "\nadapter: lora\nlora_r: 2\nlora_target_linear: true\n";
  REQUIRE(run_train(ws.config("max_steps: 2\nsave_steps: 1\n", model)).exit_code == 0);
  const std::string one = ws.out("step_000001");
  const std::string warning = "warning: " + one + ": base_model " + base + " holds other weights than the ones";
  Run r = run_train("--resume " + one);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(!contains(r.output, warning));
  // The same shapes from another seed: the adapters would go on over other weights.
  save_hf_model(second, base, DType::bf16, {256, 257});
  r = run_train("--resume " + one);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(contains(r.output, warning));
}
