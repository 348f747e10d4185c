// defines: MetricsLog (metrics.jsonl writer)
#include "train/metrics.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "engine/user_error.h"

namespace llm {

namespace {
// The step of one record line, or -1 when it has none.
int64_t record_step(const std::string& line) {
  auto at = line.find("\"step\": ");
  return at == std::string::npos ? -1 : std::stoll(line.substr(at + 8));
}
}  // namespace

MetricsLog::MetricsLog(const std::string& path, int64_t keep_up_to_step) {
  if (keep_up_to_step >= 0) {
    std::vector<std::string> kept;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && record_step(line) <= keep_up_to_step) kept.push_back(line);
    in.close();
    std::ofstream out(path, std::ios::trunc);
    for (const std::string& line : kept) out << line << '\n';
  }
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) throw UserError(path + ": cannot open the metrics log for writing");
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::train(int64_t step, double epoch, float loss, double lr, double grad_norm,
                       double tokens_per_s) {
  std::fprintf(file_,
               "{\"step\": %lld, \"epoch\": %.6g, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, "
               "\"tokens_per_s\": %.1f}\n",
               static_cast<long long>(step), epoch, loss, lr, grad_norm, tokens_per_s);
  std::fflush(file_);
}

void MetricsLog::eval(int64_t step, float eval_loss) {
  std::fprintf(file_, "{\"step\": %lld, \"eval_loss\": %.9g}\n", static_cast<long long>(step), eval_loss);
  std::fflush(file_);
}

}  // namespace llm
