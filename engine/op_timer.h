// OpTimer: wall-clock seconds per kernel name, summed while enabled. llm_bench uses it to say
// where a training step's time goes (the GEMM share, for one). Off by default: one branch.
#pragma once
#include <chrono>
#include <map>
#include <string>

namespace llm {

class OpTimer {
 public:
  explicit OpTimer(const char* name)
      : name_(enabled_flag() ? name : nullptr), start_(name_ ? clock::now() : clock::time_point()) {}
  ~OpTimer() {
    if (name_) totals()[name_] += std::chrono::duration<double>(clock::now() - start_).count();
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

  static void enable(bool on) { enabled_flag() = on; }
  static std::map<std::string, double>& totals() {
    static std::map<std::string, double> t;
    return t;
  }

 private:
  using clock = std::chrono::steady_clock;
  static bool& enabled_flag() {
    static bool on = false;
    return on;
  }
  const char* name_;
  clock::time_point start_;
};

}  // namespace llm
