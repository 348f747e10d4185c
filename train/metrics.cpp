// defines: MetricsLog (metrics.jsonl writer)
#include "train/metrics.h"

#include <fmt/core.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "engine/user_error.h"
#include "io/json_text.h"
#include "io/special_file.h"

namespace llm {

namespace {
// The step of one record line; nullopt when the line is not a JSON object with an integer step
// (a line cut by a crash, or edited by hand; one holding a NUL byte, where nlohmann would stop).
std::optional<int64_t> record_step(const std::string& line) {
  const nlohmann::json record = parse_json_or_discarded(line);
  if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer())
    return std::nullopt;
  return record["step"].get<int64_t>();
}

// The log's text so far; "" where there is none yet.
std::string existing_log(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec) ? read_whole_file(path, "the run's metrics log (a file)") : "";
}
}  // namespace

std::string json_number(double value) { return std::isfinite(value) ? fmt::format("{:.9g}", value) : "null"; }

double python_round(double value, int digits) {
  return std::strtod(fmt::format("{:.{}f}", value, digits).c_str(), nullptr);
}

std::string perplexity_json(const char* name, double loss) {
  const double ppl = std::exp(loss);
  if (!std::isfinite(ppl)) return fmt::format(", \"{}\": null", name);
  // Written in the shortest form that reads as that double, as Python's repr.
  return fmt::format(", \"{}\": {}", name, python_round(ppl, 5));
}

MetricsLog::MetricsLog(const std::string& path, std::optional<int64_t> resumed_step,
                       const std::optional<std::string>& history, const std::function<void(const std::string&)>& warn)
    : path_(path) {
  if (std::optional<std::string> kind = special_file_kind(path))
    throw UserError(path + ": expected the run's metrics log (a file), got " + *kind);
  std::string kept;
  if (resumed_step) {
    const std::string source = history ? *history : existing_log(path);
    const std::string from = history ? "the checkpoint's metrics.jsonl" : path;
    std::istringstream in(source);
    int64_t line_number = 0, skipped = 0, first_skipped = 0;
    for (std::string line; std::getline(in, line);) {
      line_number++;
      if (line.empty()) continue;
      const std::optional<int64_t> step = record_step(line);
      if (!step && skipped++ == 0) first_skipped = line_number;
      if (step && *step <= *resumed_step) kept += line + '\n';
    }
    // One bad line must not block every resume: it is dropped, and said once.
    if (skipped > 0)
      warn(fmt::format("{}: skipped {} line(s) that are not metrics records with an integer \"step\" "
                       "(first: line {})", from, skipped, first_skipped));
  }
  file_ = std::fopen(path.c_str(), "w");
  if (!file_) throw UserError(path + ": cannot open the metrics log for writing");
  std::fputs(kept.c_str(), file_);
  std::fflush(file_);
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::train(int64_t step, double epoch, float loss, double lr, double grad_norm,
                       double tokens_per_s, const std::string& extra) {
  const std::string record =
      fmt::format("{{\"step\": {}, \"epoch\": {:.6g}, \"loss\": {}, \"lr\": {:.9g}, \"grad_norm\": {}, "
                  "\"tokens_per_s\": {:.1f}{}}}\n",
                  step, epoch, json_number(loss), lr, json_number(grad_norm), tokens_per_s, extra);
  write(record);
}

std::string MetricsLog::contents() const { return existing_log(path_); }

void MetricsLog::eval(int64_t step, float eval_loss, const std::string& extra) {
  const std::string record = fmt::format("{{\"step\": {}, \"eval_loss\": {}{}}}\n", step, json_number(eval_loss), extra);
  write(record);
}

void MetricsLog::also_to_tensorboard(const std::string& dir) { tensorboard_ = std::make_unique<TensorBoardWriter>(dir); }

void MetricsLog::write(const std::string& record) {
  std::fputs(record.c_str(), file_);
  std::fflush(file_);
  if (!tensorboard_) return;
  const nlohmann::json fields = nlohmann::json::parse(record);
  const int64_t step = fields.at("step").get<int64_t>();
  for (const auto& [key, value] : fields.items()) {
    if (key == "step" || !value.is_number()) continue;  // null: NaN or infinite, which JSON cannot hold
    const std::string tag = key.rfind("eval_", 0) == 0 ? "eval/" + key.substr(5)
                            : key == "lr"              ? "train/learning_rate"
                                                       : "train/" + key;
    tensorboard_->scalar(tag, value.get<double>(), step);
  }
  tensorboard_->flush();
}

}  // namespace llm
