// output_dir/metrics.jsonl: one JSON object per line, train and eval records, losses with
// full float precision (%.9g) so two runs can be compared exactly.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace llm {

// A JSON number with full float precision (%.9g), or null for NaN and the infinities, which JSON
// has no words for (a record stays readable by any JSON parser).
std::string json_number(double value);

class MetricsLog {
 public:
  // Opens `path` for appending. keep_up_to_step >= 0 first drops records of later steps (a
  // resumed run rewrites what the interrupted one logged after its checkpoint), and lines that
  // are not records, which `warn` is told about in one line.
  MetricsLog(const std::string& path, int64_t keep_up_to_step,
             const std::function<void(const std::string&)>& warn);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // extra: more fields of the record, as JSON members (", \"name\": value" each), or "".
  void train(int64_t step, double epoch, float loss, double lr, double grad_norm, double tokens_per_s,
             const std::string& extra = "");
  void eval(int64_t step, float eval_loss, const std::string& extra = "");

 private:
  std::FILE* file_ = nullptr;
};

}  // namespace llm
