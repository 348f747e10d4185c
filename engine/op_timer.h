// OpTimer: wall-clock seconds and calls per op name, summed while enabled. llm_bench uses it to say
// where a training step's time goes (the GEMM share, for one) and how many launches each op makes
// (on a GPU, every call is at least one kernel: what fusing or a CUDA graph would remove). The
// names are the CUDA backend's op names (its launch checks), so a CPU split and a GPU split of the
// same step compare row by row. Off by default: one branch.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace llm {

class OpTimer {
 public:
  explicit OpTimer(const char* name)
      : name_(enabled_flag() ? name : nullptr), start_(name_ ? clock::now() : clock::time_point()) {}
  ~OpTimer() {
    if (name_) totals()[name_].add(std::chrono::duration<double>(clock::now() - start_).count());
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

  static void enable(bool on) { enabled_flag() = on; }
  struct Total {
    double seconds = 0;
    int64_t calls = 0;
    void add(double s) {
      seconds += s;
      calls++;
    }
    bool operator==(const Total& o) const { return seconds == o.seconds && calls == o.calls; }
  };
  static std::map<std::string, Total>& totals() {
    static std::map<std::string, Total> t;
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
