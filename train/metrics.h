// output_dir/metrics.jsonl: one JSON object per line, train and eval records, losses with
// full float precision (%.9g) so two runs can be compared exactly.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "io/tensorboard.h"

namespace llm {

// A JSON number with full float precision (%.9g), or null for NaN and the infinities, which JSON
// has no words for (a record stays readable by any JSON parser).
std::string json_number(double value);

// Python's round(value, digits): the exact binary value rounded to that many decimals (as printf's
// %.Nf), read back as the nearest double.
double python_round(double value, int digits);

// `, "NAME": exp(loss)` rounded to 5 decimals, as AxolotlTrainer.log adds ppl and eval_ppl
// (round(math.exp(loss), 5)); null where it overflows or the loss is not a number.
std::string perplexity_json(const char* name, double loss);

class MetricsLog {
 public:
  // Opens `path` for appending. A new run (no resumed_step) starts it empty. A resumed run starts
  // it with the records up to resumed_step of `history`, the log its checkpoint carries (as HF's
  // trainer_state.json carries log_history, so a resume into another output_dir keeps the curve
  // whole), or of the file itself when the checkpoint carries none (written before 2026-12-06):
  // what the interrupted run logged after its checkpoint is rewritten. Lines that are not records
  // are dropped, which `warn` is told about in one line.
  MetricsLog(const std::string& path, std::optional<int64_t> resumed_step, const std::optional<std::string>& history,
             const std::function<void(const std::string&)>& warn);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // extra: more fields of the record, as JSON members (", \"name\": value" each), or "".
  void train(int64_t step, double epoch, float loss, double lr, double grad_norm, double tokens_per_s,
             const std::string& extra = "");
  void eval(int64_t step, float eval_loss, const std::string& extra = "");
  // Axolotl's use_tensorboard: from now on every record's numbers are TensorBoard scalars too,
  // in an event file in `dir`, tagged as HF's TensorBoardCallback tags its logs: eval_NAME as
  // eval/NAME, any other as train/NAME (lr as train/learning_rate, HF's name), at the record's step.
  void also_to_tensorboard(const std::string& dir);

  // Every record so far, as the file holds them (what a checkpoint carries).
  std::string contents() const;

 private:
  void write(const std::string& record);  // one line, and its scalars
  std::string path_;
  std::FILE* file_ = nullptr;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

}  // namespace llm
