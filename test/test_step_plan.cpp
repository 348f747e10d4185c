// The run's step arithmetic (train/step_plan.h): Axolotl's total steps over the Trainer's epochs,
// Axolotl's warmup and logging defaults with their int() roundings and its warmup of 1 made 2,
// and its evals_per_epoch / saves_per_epoch as shares of the total steps.
#include <doctest/doctest.h>

#include "train/best_model.h"
#include "train/step_plan.h"

using namespace llm;

namespace {

TrainConfig batches(int64_t micro, int64_t accumulation, double epochs) {
  TrainConfig c;
  c.micro_batch_size = micro;
  c.gradient_accumulation_steps = accumulation;
  c.num_epochs = epochs;
  return c;
}

// One rank, no dataloader_drop_last: ceil(rows / micro) micro-batches an epoch.
StepPlan plan_for(const TrainConfig& c, int64_t rows, bool evaluates = false) {
  return plan_steps(c, {(rows + c.micro_batch_size - 1) / c.micro_batch_size, rows, c.micro_batch_size, 1}, evaluates);
}

}  // namespace

TEST_CASE("total steps: Axolotl's estimate, ceil(rows x num_epochs / batch), over the Trainer's epochs") {
  // 10 rows in micro-batches of 2, 2 a step: the Trainer's epochs of 3 steps (2, 2 and 1
  // micro-batches), but Axolotl hands it max_steps ceil(10 x 2 / 4) = 5, so the second epoch
  // stops before its short step.
  StepPlan p = plan_for(batches(2, 2, 2), 10);
  CHECK(p.updates_per_epoch == 3);
  CHECK(p.total_steps == 5);
  CHECK(plan_for(batches(2, 2, 0.5), 10).total_steps == 2);  // ceil(1.25)
  CHECK(plan_for(batches(4, 1, 1), 2).total_steps == 1);
  // Every rank's rows over every rank's batch: 4 ranks of micro-batches of 2, 25 rows.
  CHECK(plan_steps(batches(2, 1, 1), {4, 25, 2, 4}, false).total_steps == 4);  // ceil(25 / 8)
  TrainConfig c = batches(2, 2, 2);
  c.max_steps = 7;
  CHECK(plan_for(c, 10).total_steps == 7);
  // Its warmup and logging count the smaller of the estimate and max_steps (its SFT loader's
  // total_num_steps); rl's count the estimate alone.
  c = batches(1, 1, 1);
  c.max_steps = 1000;
  CHECK(plan_for(c, 100).warmup_steps == 3);  // int(0.03 x 100), not of 1000
  c.rl = "dpo";
  CHECK(plan_for(c, 100).warmup_steps == 3);
  c.max_steps = 50;
  CHECK(plan_for(c, 100).warmup_steps == 3);  // rl: still int(0.03 x 100)
  c.rl.clear();
  CHECK(plan_for(c, 100).warmup_steps == 2);  // int(0.03 x 50) = 1, made 2
}

TEST_CASE("total steps with sample_packing: floor(num_epochs x max(1, bins // (accumulation x ranks)))") {
  TrainConfig c = batches(2, 3, 2);
  c.data.sample_packing = true;
  // 20 bins an epoch, one a micro-batch: 20 // 3 = 6 steps an epoch, 12 in all (the Trainer's
  // epochs are of 7: the seventh, of 2 micro-batches, only in the first).
  StepPlan p = plan_steps(c, {20, 20, 1, 1}, false);
  CHECK(p.updates_per_epoch == 7);
  CHECK(p.total_steps == 12);
  c.num_epochs = 1.5;
  CHECK(plan_steps(c, {20, 20, 1, 1}, false).total_steps == 9);
  c.data.dataloader_drop_last = true;  // an epoch less: 9 - ceil(1.5)
  CHECK(plan_steps(c, {20, 20, 1, 1}, false).total_steps == 7);
  c = batches(2, 3, 1);
  c.data.sample_packing = true;  // 2 ranks, bins of sequence_len 2 a micro-batch: 41 bins make
  c.data.multipack_real_batches = true;  // 20 micro-batches, 20 // (3 x 2) = 3 steps
  CHECK(plan_steps(c, {10, 41, 2, 2}, false).total_steps == 3);
  CHECK(plan_steps(c, {1, 4, 2, 2}, false).total_steps == 1);  // at least one an epoch
}

TEST_CASE("warmup: int() of the ratio or of 3% (at most 100), 1 made 2, none with the constant schedule") {
  TrainConfig c = batches(1, 1, 1);
  CHECK(plan_for(c, 20).warmup_steps == 0);     // int(0.6)
  CHECK(plan_for(c, 50).warmup_steps == 2);     // int(1.5) = 1, made 2
  CHECK(plan_for(c, 100).warmup_steps == 3);
  CHECK(plan_for(c, 10000).warmup_steps == 100);
  c.warmup_ratio = 0.25;
  CHECK(plan_for(c, 10).warmup_steps == 2);     // int(2.5), where HF's own ratio rounds up to 3
  c.warmup_ratio = 0.15;
  CHECK(plan_for(c, 10).warmup_steps == 2);     // int(1.5) = 1, made 2
  c.warmup_ratio = -1;
  c.warmup_steps = 1;
  CHECK(plan_for(c, 10).warmup_steps == 2);
  c.warmup_steps = 0;
  CHECK(plan_for(c, 10).warmup_steps == 0);
  c.warmup_steps = 5;
  c.lr_scheduler = "constant";
  CHECK(plan_for(c, 10).warmup_steps == 0);
}

TEST_CASE("logging_steps: given, else max(min(int(0.005 x total), 10), 1)") {
  TrainConfig c = batches(1, 1, 1);
  CHECK(plan_for(c, 100).logging_steps == 1);
  CHECK(plan_for(c, 1000).logging_steps == 5);
  CHECK(plan_for(c, 5000).logging_steps == 10);
  c.logging_steps = 3;
  CHECK(plan_for(c, 5000).logging_steps == 3);
}

TEST_CASE("evals and saves: a count per epoch is Axolotl's share 1 / (count x num_epochs) of the total steps") {
  TrainConfig c = batches(4, 1, 1);  // 40 rows: 10 steps an epoch
  c.evals_per_epoch = 3;             // ceil(10 x 1/3) = 4, where 10 / 3 would give 3
  c.saves_per_epoch = 2;
  StepPlan p = plan_for(c, 40, true);
  CHECK(p.eval_steps == 4);
  CHECK(p.save_steps == 5);
  CHECK(plan_for(c, 40, false).eval_steps == 0);  // no eval set
  c.num_epochs = 2;                                  // 20 steps: every ceil(20 / 6) = 4, ceil(20 / 4) = 5
  p = plan_for(c, 40, true);
  CHECK(p.eval_steps == 4);
  CHECK(p.save_steps == 5);
  c.num_epochs = 1;
  c.evals_per_epoch = 1;  // a share of 1 is no share: once an epoch
  CHECK(plan_for(c, 40, true).eval_steps == 10);
  c.saves_per_epoch = 3;
  c.save_strategy = "epoch";  // Axolotl's builder saves by the share all the same: ceil(10 / 3)
  CHECK(plan_for(c, 40, true).save_steps == 4);
  c.saves_per_epoch = 0;  // the strategy alone: once an epoch
  CHECK(plan_for(c, 40, true).save_steps == 10);
  // A share of 1 or more sets no count in Axolotl: the strategy decides as if none were given
  // (half an epoch with 2 a epoch: once at the epoch's end, not every 10 / 2 steps).
  c = batches(4, 1, 1);
  c.num_epochs = 0.5;
  c.evals_per_epoch = c.saves_per_epoch = 2;
  p = plan_for(c, 40, true);
  CHECK(p.eval_steps == 10);
  CHECK(p.save_steps == 10);
  CHECK(!p.eval_on_start);
  c.eval_strategy = "steps";  // HF's eval_steps default: logging_steps
  c.logging_steps = 2;
  p = plan_for(c, 40, true);
  CHECK(p.eval_steps == 2);
  CHECK(p.eval_on_start);
  c = batches(4, 1, 1);
  c.eval_steps = 0.25;  // HF's share: ceil(0.25 x 10)
  c.save_steps = 4;
  p = plan_for(c, 40, true);
  CHECK(p.eval_steps == 3);
  CHECK(p.save_steps == 4);
  c = batches(4, 1, 1);  // neither: Axolotl's default, once an epoch; strategy "no": never
  CHECK(plan_for(c, 40, true).eval_steps == 10);
  c.save_strategy = "no";
  CHECK(plan_for(c, 40, true).save_steps == 0);
  // "steps" without a count: HF's TrainingArguments evaluate every logging_steps and save every 500.
  c = batches(4, 1, 1);
  c.eval_strategy = c.save_strategy = "steps";
  c.logging_steps = 3;
  p = plan_for(c, 40, true);
  CHECK(p.eval_steps == 3);
  CHECK(p.save_steps == 500);
}

TEST_CASE("lr_schedule: each schedule's floor from the key Axolotl or HF reads it from") {
  TrainConfig c = batches(2, 2, 1);
  c.learning_rate = 1e-3;
  c.cosine_min_lr_ratio = 0.1;
  const StepPlan plan = plan_for(c, 40);
  CHECK(lr_schedule(c, plan).min_lr_ratio == 0.1);  // Axolotl's cosine floor
  c.lr_scheduler = "rex";                          // its RexLR reads the same key
  CHECK(lr_schedule(c, plan).min_lr_ratio == 0.1);
  c.lr_scheduler = "linear";                       // no floor: the key is Axolotl's cosine's
  CHECK(lr_schedule(c, plan).min_lr_ratio == 0.0);
  c.lr_scheduler = "cosine_with_min_lr";           // HF's min_lr, a share of learning_rate
  c.lr_scheduler_kwargs.min_lr = 2e-5;
  CHECK(lr_schedule(c, plan).min_lr_ratio == doctest::Approx(0.02));
  c.lr_scheduler_kwargs = {};
  c.lr_scheduler_kwargs.min_lr_rate = 0.3;
  CHECK(lr_schedule(c, plan).min_lr_ratio == 0.3);
  c.lr_scheduler = "warmup_stable_decay";
  c.lr_scheduler_kwargs = {};
  c.lr_scheduler_kwargs.num_decay_steps = 4;
  const LrSchedule wsd = lr_schedule(c, plan);
  CHECK(wsd.min_lr_ratio == 0.0);
  CHECK(wsd.num_decay_steps == 4);
  CHECK(wsd.decay_type == "cosine");  // HF's defaults
  CHECK(wsd.warmup_type == "linear");
}

// The rates and betas themselves are held to torch's OneCycleLR in test_hf_trajectory.
TEST_CASE("lr_schedule one_cycle: torch's defaults, the warmup's share, and a phase of no steps refused") {
  TrainConfig c = batches(2, 2, 1);
  c.learning_rate = 1e-3;
  c.lr_scheduler = "one_cycle";
  c.warmup_steps = 2;
  const LrSchedule s = lr_schedule(c, plan_for(c, 40));  // 10 steps
  CHECK(s.lr(0) == doctest::Approx(1e-3 / 25));             // from max_lr / div_factor
  CHECK(s.lr(1) == doctest::Approx(1e-3));                  // the top at the warmup's end (pct_start 0.2)
  CHECK(s.lr(9) == doctest::Approx(1e-3 / 25 / 1e4));      // down to that / final_div_factor at the last
  CHECK(*s.beta1(0) == doctest::Approx(0.95));
  CHECK(*s.beta1(1) == doctest::Approx(0.85));
  CHECK(!lr_schedule(batches(2, 2, 1), plan_for(c, 40)).beta1(0).has_value());  // the other schedules keep beta1
  c.lr_scheduler_kwargs.cycle_momentum = false;
  CHECK(!lr_schedule(c, plan_for(c, 40)).beta1(3).has_value());
  // pct_start 0.1 of 10 steps: the first phase ends at step 0, where torch divides 0 by 0.
  c.lr_scheduler_kwargs.pct_start = 0.1;
  c.source = "cfg.yaml";
  CHECK_THROWS_WITH(lr_schedule(c, plan_for(c, 40)),
                    "cfg.yaml: lr_scheduler one_cycle: expected phases that span steps, got an empty one at step 0 of 10 "
                    "(pct_start 0.1); change warmup_steps or lr_scheduler_kwargs.pct_start");
}

// Axolotl's causal builder turns load_best_model_at_end on from its cfg.eval_steps and
// cfg.save_steps as set (or the per-epoch shares its normalize_config puts there), never from the
// intervals an epoch strategy or HF's defaults make.
TEST_CASE("load_best_model_at_end: Axolotl's check on the configured eval_steps and save_steps") {
  TrainConfig c;
  c.load_best_model_at_end = true;
  auto with = [&](double eval, double save) {
    c.eval_steps = eval, c.save_steps = save;
    return loads_best_model_at_end(c, true);
  };
  CHECK(with(2, 6));
  CHECK(!with(4, 6));
  CHECK(with(0.0625, 0.125));   // 0.125 % 0.0625 == 0 in floats
  CHECK(!with(0.1, 0.3));       // 0.3 % 0.1 is not 0 in floats
  CHECK(!with(0, 6));           // eval_strategy steps with HF's eval_steps (logging_steps): unset here
  CHECK(!loads_best_model_at_end(c = TrainConfig{}, true));  // not asked for
  c.load_best_model_at_end = true;
  c.evals_per_epoch = 4, c.saves_per_epoch = 2;  // shares 0.25 and 0.5
  CHECK(loads_best_model_at_end(c, true));
  CHECK(!loads_best_model_at_end(c, false));  // no eval set
  c.saves_per_epoch = 1;  // a share of 1 sets nothing: saves by the epoch strategy
  CHECK(!loads_best_model_at_end(c, true));
  c = TrainConfig{};
  c.early_stopping_patience = 3;  // early stopping turns it on, as Axolotl's builder does
  CHECK(with(2, 4));
}

// What the reference stops on is refused before the run, one line naming the warmup.
TEST_CASE("lr_schedule: warmups the reference stops on (polynomial's whole run, rex's and one_cycle's longer one)") {
  TrainConfig c = batches(2, 2, 1);  // 40 rows: 10 steps
  c.source = "cfg.yaml";
  c.lr_scheduler = "polynomial";
  c.warmup_steps = 10;  // transformers' lambda divides by the decay steps, 0, after the last update
  CHECK_THROWS_WITH(lr_schedule(c, plan_for(c, 40)),
                    "cfg.yaml: warmup_steps (or warmup_ratio): expected fewer than the run's steps (transformers divides "
                    "by the decay steps, 0) with lr_scheduler polynomial, got 10 warmup steps of 10");
  c.warmup_steps = 11;  // never reaches the division: trains in warmup
  CHECK_NOTHROW(lr_schedule(c, plan_for(c, 40)));
  for (const char* kind : {"rex", "one_cycle"}) {
    c.lr_scheduler = kind;
    CHECK_THROWS_WITH(lr_schedule(c, plan_for(c, 40)),
                      doctest::Contains("warmup_steps (or warmup_ratio): expected at most the run's steps"));
  }
  c.lr_scheduler = "rex";  // the whole run warming up: RexLR takes it (one_cycle's empty phase does not)
  c.warmup_steps = 10;
  CHECK_NOTHROW(lr_schedule(c, plan_for(c, 40)));
}

// torch's ReduceLROnPlateau.step; the Trainer's use of it (min, rel) is held to HF in
// test_hf_trajectory.
TEST_CASE("ReduceOnPlateau: torch's better-than-best, patience, cooldown, floor and eps") {
  ReduceOnPlateau p;
  p.lr = 1.0, p.factor = 0.5, p.patience = 1, p.cooldown = 1, p.min_lr = 0.2;
  p.observe(10.0);  // the first sets the best
  p.observe(9.5);   // better by over 1e-4 of the best (torch's rel threshold)
  CHECK(*p.best == 9.5);
  p.observe(9.5);  // a tie: 1 bad, within patience
  CHECK(p.lr == 1.0);
  p.observe(9.6);  // 2 bad > patience 1: halved, then a cooldown of one evaluation
  CHECK(p.lr == 0.5);
  p.observe(9.7);  // in cooldown: counts nothing
  p.observe(9.7);
  CHECK(p.lr == 0.5);
  p.observe(9.7);  // 2 bad again
  CHECK(p.lr == 0.25);
  p.observe(9.8), p.observe(9.8), p.observe(9.8);
  CHECK(p.lr == 0.2);  // not below min_lr
  p.observe(9.8), p.observe(9.8), p.observe(9.8);
  CHECK(p.lr == 0.2);  // a change under eps is skipped
  ReduceOnPlateau up;  // mode max, threshold_mode abs: better means more than best + threshold
  up.lr = 1.0, up.maximize = true, up.relative_threshold = false, up.threshold = 0.5, up.patience = 0;
  up.observe(1.0);
  up.observe(1.4);  // not 0.5 above
  CHECK(up.lr == doctest::Approx(0.1));
  up.observe(1.6);
  CHECK(*up.best == 1.6);
  CHECK(up.lr == doctest::Approx(0.1));
}

TEST_CASE("lr_plateau: reduce_lr_on_plateau's kwargs, and no run without evaluations") {
  TrainConfig c;
  c.source = "cfg.yaml";
  c.learning_rate = 2e-3;
  CHECK(!lr_plateau(c, true).has_value());
  c.lr_scheduler = "reduce_lr_on_plateau";
  c.lr_scheduler_kwargs.patience = 3;
  c.lr_scheduler_kwargs.mode = "max";
  const ReduceOnPlateau p = *lr_plateau(c, true);
  CHECK(p.lr == 2e-3);
  CHECK(p.patience == 3);
  CHECK(p.maximize);
  CHECK(p.factor == 0.1);  // torch's default
  CHECK_THROWS_WITH(lr_plateau(c, false),
                    "cfg.yaml: lr_scheduler reduce_lr_on_plateau: expected evaluations (an eval set from val_set_size "
                    "or test_datasets, and an eval_strategy other than no), as HF's Trainer steps it with eval_loss; "
                    "got none");
  c.eval_strategy = "no";
  CHECK_THROWS(lr_plateau(c, true));
}
