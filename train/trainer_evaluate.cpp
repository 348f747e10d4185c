// defines: Trainer::evaluate_model (Axolotl's `evaluate` command: a model measured on the
// training and validation rows without training, and its eval_summary.csv)
#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <map>

#include "io/durable_file.h"
#include "train/metrics.h"
#include "train/preference_metrics.h"
#include "train/trainer_impl.h"

namespace llm {
namespace {

// Python's str() of a float, as Axolotl's csv writer writes it: the shortest repr, ".0" on a
// whole number.
std::string python_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// Axolotl's eval_summary.csv: one row per metric name without its prefix (train_, eval_), sorted,
// each set's value or nothing.
std::string summary_csv(const EvaluationSummary& s) {
  std::map<std::string, std::pair<std::string, std::string>> rows;
  for (const auto& [name, value] : s.training) rows[name.substr(name.find('_') + 1)].first = python_float(value);
  for (const auto& [name, value] : s.validation) rows[name.substr(name.find('_') + 1)].second = python_float(value);
  std::string out = "metric,training,validation\r\n";  // Python's csv writer ends its rows in CRLF
  for (const auto& [name, values] : rows) out += name + "," + values.first + "," + values.second + "\r\n";
  return out;
}

}  // namespace

EvaluationSummary Trainer::Impl::evaluate_sets() {
  const TrainConfig& c = config;
  optimizer->set_training(false);  // HF's evaluation_loop calls optimizer.eval()
  // HF's evaluate: the set's loss, its wall time, and the examples (pairs, KTO rows) and batches a
  // second, over every rank's (steps: ceil(examples / (eval_batch_size x ranks))); Axolotl's log
  // adds eval_ppl to the validation set's, TRL's PRMTrainer its token accuracy, TRL's preference
  // trainers their logs (as their evaluation logs them, here under the set's prefix).
  const auto measure = [&](const std::vector<Row>& rows, const std::string& prefix) {
    std::vector<std::pair<std::string, double>> out, logged;
    if (rows.empty()) return out;
    val_batches = evaluation_batches(rows);
    if (eval_filler.rows.empty())  // for_each_eval_batch's spare batch under ZeRO-3 (and KTO)
      eval_filler = eval_batches(*data.examples, rows, data.val_layout, eval_batch_rows(), 0, 1).front();
    const auto start = std::chrono::steady_clock::now();
    double loss = 0;
    if (preference()) {
      const PreferenceMetrics m = evaluate_preference();
      loss = m.loss;
      for (const auto& [name, value] : preference_values(m, preference_log())) logged.push_back({name, value});
      if (logs_num_tokens())  // TRL's count of training tokens: none here
        logged.push_back({"num_tokens", static_cast<double>(state.input_tokens)});
    } else {
      loss = evaluate();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double runtime = python_round(seconds, 4);
    int64_t examples = 0;
    for (const Row& row : rows) examples += preference() ? 1 : static_cast<int64_t>(row.size());
    const double steps = std::ceil(static_cast<double>(examples) /
                                   static_cast<double>(c.eval_micro_batch_size() * comm.world_size()));
    out = {{prefix + "_loss", loss},
           {prefix + "_runtime", runtime},
           {prefix + "_samples_per_second", python_round(static_cast<double>(examples) / runtime, 3)},
           {prefix + "_steps_per_second", python_round(steps / runtime, 3)}};
    if (eval_token_accuracy) out.push_back({prefix + "_accuracy", *eval_token_accuracy});
    if (prefix == "eval" && supervised()) out.push_back({"eval_ppl", python_round(std::exp(loss), 5)});
    for (const auto& [name, value] : logged) out.push_back({prefix + "_" + name, value});
    return out;
  };
  // The training set as its dataset orders it, packed as the validation rows are with
  // eval_sample_packing (preference rows are never packed).
  const std::vector<Row> train_rows = preference()           ? data.train_rows
                                      : data.val_layout.packed ? multipack(*data.examples, data.split.train,
                                                                           data_settings.multipack_options())
                                                               : one_example_per_row(data.split.train);
  EvaluationSummary out;
  out.training = measure(train_rows, "train");
  out.validation = measure(data.val_rows, "eval");
  out.csv_path = c.output_dir + "/eval_summary.csv";
  if (comm.is_main()) write_text_atomically(out.csv_path, summary_csv(out));
  return out;
}

EvaluationSummary Trainer::evaluate_model(TrainConfig config) {
  return Impl(std::move(config), Impl::Purpose::evaluate).evaluate_sets();
}

}  // namespace llm
