// What the losses mean on several ranks, through mpirun (Open MPI, 2 ranks on the CPU): the
// token-weighted training loss and Axolotl's per-rank mean (average_tokens_across_devices false),
// eval_loss as accelerate serves and gathers the eval batches (unpacked and packed), and the best
// checkpoint every rank loads at the end.
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "test/train_fixture.h"

using namespace llm::testing;

namespace {
// The step-0 eval_loss of `texts` as the test_datasets of one step's run on `ranks`, `extra` keys beside.
double first_eval_loss(const std::string& name, const std::vector<std::string>& texts, int ranks,
                       const std::string& extra) {
  Workspace ws(name);
  std::string jsonl;
  for (const std::string& text : texts) jsonl += "{\"text\": \"" + text + "\"}\n";
  write_file((ws.dir / "eval.jsonl").string(), jsonl);
  Run run = run_train(ws.config("max_steps: 1\nval_set_size: 0\neval_steps: 1\nshuffle_merged_datasets: false\n" +
                                extra + "test_datasets:\n  - path: " + (ws.dir / "eval.jsonl").string() +
                                "\n    type: completion\n"),
                      ranks > 1 ? mpirun(ranks) : "");
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  return number_after(read_file(ws.out("metrics.jsonl")), "\"eval_loss\":");
}
}  // namespace

// Every rank must take rank 0's best checkpoint for this run's: the final read is collective (each
// rank drew a run id of its own until 2026-12-06, and rank 0 then waited alone in it forever).
TEST_CASE("load_best_model_at_end on 2 ranks of a fresh run: the best checkpoint loaded, the run ends") {
  Workspace ws("dp_load_best");
  Run r = run_train(ws.config("max_steps: 6\neval_steps: 1\nsave_steps: 2\nlearning_rate: 0.3\n"
                              "load_best_model_at_end: true\n"),
                    "timeout -k 5 120 " + mpirun(2));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK_MESSAGE(contains(r.output, "load_best_model_at_end: the final model is the weights of "), r.output);
  CHECK(contains(r.output, "done: "));
}

// accelerate's even_batches: on 2 ranks, 5 eval rows A..E in batches of 2 are served AB | CD and
// E filled with A on the second round; gather_for_metrics drops A's copy, so eval_loss is
// (2 l(AB) + 2 l(CD) + l(EA)) / 5 with l(EA) the mean over E's and A's tokens, not one rank's.
TEST_CASE("eval_loss on 2 ranks: the last round filled with the first rows, as accelerate serves it") {
  const std::vector<std::string> texts = {"alpha beta gamma", "delta epsilon", "zeta eta theta iota",
                                          "kappa lambda", "mu nu xi omicron pi"};
  auto eval_loss = [&](const std::string& name, const std::vector<int>& rows, int ranks) {
    std::vector<std::string> chosen;
    for (int r : rows) chosen.push_back(texts[r]);
    return first_eval_loss(name, chosen, ranks, "");
  };
  const double ab = eval_loss("dp_eval_ab", {0, 1}, 1), cd = eval_loss("dp_eval_cd", {2, 3}, 1),
               ea = eval_loss("dp_eval_ea", {4, 0}, 1), two = eval_loss("dp_eval_all", {0, 1, 2, 3, 4}, 2);
  CHECK(two == doctest::Approx((2 * ab + 2 * cd + ea) / 5).epsilon(1e-6));
}

// Packed: Axolotl's eval multipack sampler serves whole rounds of one bin a rank, and accelerate
// cuts the last round's gathered losses after (examples % ranks) copies, counting examples, not
// bins. Three examples in bins AB | C on 2 ranks: 3 % 2 = 1 copy, rank 0's, so eval_loss is bin
// AB's alone (the mean of the two bins before 2026-12-06).
TEST_CASE("packed eval_loss on 2 ranks: accelerate's remainder of examples cuts the last round") {
  const std::vector<std::string> texts = {"alpha beta gamma delta eps", "zeta eta theta iota kappa",
                                          "lambda mu nu xi omicron pi"};
  auto eval_loss = [&](const std::string& name, int examples, int ranks) {
    return first_eval_loss(name, std::vector<std::string>(texts.begin(), texts.begin() + examples), ranks,
                           "sample_packing: true\nflash_attention: true\n");
  };
  const double ab = eval_loss("dp_packed_ab", 2, 1), abc = eval_loss("dp_packed_abc", 3, 1),
               two = eval_loss("dp_packed_two", 3, 2);
  CHECK(two == doctest::Approx(ab).epsilon(1e-6));
  CHECK(std::abs(abc - ab) > 1e-4);  // one rank counts both bins: the cut is what differs
}

namespace {
// Alpaca examples whose responses differ in length, so micro-batches hold different numbers of
// targets: the case where averaging per-micro-batch means (the old rule) is not transformers'
// token-weighted loss.
std::string uneven_alpaca(const Workspace& ws) {
  std::string rows;
  for (int i = 0; i < 48; i++)
    rows += "{\"instruction\": \"count " + std::to_string(i) + "\", \"input\": \"\", \"output\": \"" +
            std::string(1 + (i * 7) % 23, static_cast<char>('a' + i % 26)) + "\"}\n";
  const std::string path = (ws.dir / "uneven.jsonl").string();
  write_file(path, rows);
  return "datasets:\n  - path: " + path + "\n    type: alpaca\nsequence_len: 256\nmax_steps: 4\n"
         "val_set_size: 0\n";
}
}  // namespace

TEST_CASE("token-weighted loss: micro 2 x accumulation 1 == micro 1 x accumulation 2 == 2 ranks") {
  Workspace a("tw_micro2"), b("tw_accum2"), c("tw_ranks2");
  Run ra = run_train(a.config(uneven_alpaca(a) + "micro_batch_size: 2\ngradient_accumulation_steps: 1\n"));
  REQUIRE_MESSAGE(ra.exit_code == 0, ra.output);
  Run rb = run_train(b.config(uneven_alpaca(b) + "micro_batch_size: 1\ngradient_accumulation_steps: 2\n"));
  REQUIRE_MESSAGE(rb.exit_code == 0, rb.output);
  Run rc = run_train(c.config(uneven_alpaca(c) + "micro_batch_size: 1\ngradient_accumulation_steps: 1\n"),
                     mpirun(2));
  REQUIRE_MESSAGE(rc.exit_code == 0, rc.output);
  check_losses_close(a.out("metrics.jsonl"), b.out("metrics.jsonl"), 1e-5);
  check_losses_close(a.out("metrics.jsonl"), c.out("metrics.jsonl"), 1e-5);
}

// Axolotl sets HF's average_tokens_across_devices false: each rank divides its token losses by its
// own targets and DDP averages the ranks. Rows of 40 and 8 ids, one a rank: the first step's loss is
// the mean of the two rows' own mean token losses (one rank, one row a step, at a learning rate too
// small to move the weights between its two steps), not their pooled mean (HF's default).
TEST_CASE("average_tokens_across_devices false (Axolotl's): each rank's own mean, averaged over ranks") {
  Workspace ws("per_rank_mean");
  std::string rows;
  for (int r = 0; r < 4; r++) {
    std::string ids;
    for (int i = 0; i < (r % 2 == 0 ? 40 : 8); i++) ids += (ids.empty() ? "" : ", ") + std::to_string(65 + (i * 7 + r) % 26);
    rows += "{\"input_ids\": [" + ids + "]}\n";
  }
  write_file((ws.dir / "rows.jsonl").string(), rows);
  const auto config = [&](const std::string& name, const std::string& extra) {
    const std::string path = (ws.dir / (name + ".yaml")).string();
    write_file(path, kSmallModel + "datasets:\n  - path: " + (ws.dir / "rows.jsonl").string() +
                         "\n    type: pretokenized\ndataset_prepared_path: " + (ws.dir / "prepared").string() +
                         "\noutput_dir: " + (ws.dir / name).string() +
                         "\nsequence_len: 64\nmicro_batch_size: 1\ngradient_accumulation_steps: 1\nlearning_rate: 1e-12\n"
                         "lr_scheduler: constant\nlogging_steps: 1\nseed: 7\nval_set_size: 0\ncurriculum_sampling: true\n"
                         "shuffle_merged_datasets: false\nsave_strategy: 'no'\n" + extra);
    return path;
  };
  const auto losses = [&](const std::string& name) {
    std::vector<double> out;
    for (const std::string& record : train_records((ws.dir / name / "metrics.jsonl").string()))
      out.push_back(number_after(record, "\"loss\": "));
    return out;
  };
  const Run one = run_train(config("one", "max_steps: 2\n"));
  REQUIRE_MESSAGE(one.exit_code == 0, one.output);
  const Run per_rank = run_train(config("per_rank", "max_steps: 1\n"), mpirun(2));
  REQUIRE_MESSAGE(per_rank.exit_code == 0, per_rank.output);
  const Run pooled = run_train(config("pooled", "max_steps: 1\naverage_tokens_across_devices: true\n"), mpirun(2));
  REQUIRE_MESSAGE(pooled.exit_code == 0, pooled.output);
  const std::vector<double> rows_mean = losses("one");
  REQUIRE(rows_mean.size() == 2);
  const double mean_of_means = (rows_mean[0] + rows_mean[1]) / 2;
  const double pooled_mean = (rows_mean[0] * 39 + rows_mean[1] * 7) / 46;  // each row's targets: its ids less one
  CHECK(losses("per_rank").at(0) == doctest::Approx(mean_of_means).epsilon(1e-5));
  CHECK(losses("pooled").at(0) == doctest::Approx(pooled_mean).epsilon(1e-5));
  CHECK(std::fabs(mean_of_means - pooled_mean) > 1e-4 * mean_of_means);  // ten times the tolerance
}
