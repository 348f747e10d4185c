// defines: ShapeClass, VariantTrial, VariantChoice: how flash attention picks its kernel variant
// on a device (cuda/attention/flash_variants.cpp supplies the real trials): once per shape class
// (head_dim, causal, mask kind), each candidate that runs on the device is validated against the
// reference and timed; the fastest that passed (a preferred one within 10% of it keeps its place)
// is used from then on, for the whole process. A
// variant that fails, or that cannot run, is never chosen; when none passes, the fallback is.
// Plain C++ without CUDA, so test_attention_variants checks the decisions with fake variants.
#pragma once
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace llm {

enum class MaskKind { plain, documents, s2 };  // plain: none, or causal alone

struct ShapeClass {
  int64_t head_dim;
  bool causal;
  MaskKind kind;
  bool operator<(const ShapeClass& o) const {
    return std::tie(head_dim, causal, kind) < std::tie(o.head_dim, o.causal, o.kind);
  }
};

// One candidate, as the device answers for it (each asked at most once per shape class).
struct VariantTrial {
  std::string name;
  std::function<bool()> available;  // runs on this device and takes this class at all
  std::function<bool()> validate;   // matches the reference on a validation problem
  std::function<double()> time_ms;  // one call of the real shape (asked only after validate)
};

class VariantChoice {
 public:
  // A later trial displaces the preferred one that passed only when it is this much faster:
  // variants round differently, so a choice that flipped with timing noise would give another
  // process (a resume) or another rank other numerics for the same shapes.
  static constexpr double kDisplace = 0.9;

  explicit VariantChoice(std::string fallback) : fallback_(std::move(fallback)) {}

  // The variant for `key`: decided on the first call (trials in order of preference, which also
  // decides between variants within kDisplace of each other) and logged once as one line, then
  // cached.
  std::string choose(const ShapeClass& key, const std::vector<VariantTrial>& trials,
                     const std::function<void(const std::string&)>& log) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = chosen_.find(key);
    if (it != chosen_.end()) return it->second;
    std::string best = fallback_, report;
    double best_ms = 0;
    bool passed_any = false;
    for (const VariantTrial& t : trials) {
      std::string verdict;
      if (!t.available()) {
        verdict = "n/a";
      } else if (!t.validate()) {
        verdict = "FAIL";
      } else {
        const double ms = t.time_ms();
        verdict = std::to_string(ms) + " ms";
        if (!passed_any || ms < kDisplace * best_ms) best = t.name, best_ms = ms, passed_any = true;
      }
      report += (report.empty() ? "" : ", ") + t.name + " " + verdict;
    }
    log(best + " (" + report + ")");
    return chosen_.emplace(key, best).first->second;
  }

 private:
  std::string fallback_;
  std::mutex mutex_;
  std::map<ShapeClass, std::string> chosen_;
};

}  // namespace llm
