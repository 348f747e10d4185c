// defines: the op split's events (cuda/op_split.h).
#include "cuda/op_split.h"

#include <vector>

#include "cuda/cuda_check.h"

namespace llm::op_split {
namespace {

struct State {
  bool on = false;
  cudaStream_t stream = nullptr;
  std::vector<cudaEvent_t> events;  // created as needed, kept for the next split
  size_t recorded = 0;              // events[0 .. recorded) hold this split's marks
  std::vector<std::string> names;   // names[i]: the op whose launches end at events[i + 1]
};

State& state() {
  static State s;
  return s;
}

void record(State& s) {
  if (s.recorded == s.events.size()) {
    cudaEvent_t event;
    CUDA_CHECK(cudaEventCreate(&event));
    s.events.push_back(event);
  }
  CUDA_CHECK(cudaEventRecord(s.events[s.recorded++], s.stream));
}

}  // namespace

void start(cudaStream_t stream) {
  State& s = state();
  s.on = true;
  s.stream = stream;
  s.recorded = 0;
  s.names.clear();
  record(s);
}

void mark(const char* op) {
  State& s = state();
  if (!s.on) return;
  record(s);
  s.names.emplace_back(op);
}

void stop(std::map<std::string, OpTimer::Total>& totals) {
  State& s = state();
  if (!s.on) return;
  s.on = false;
  CUDA_CHECK(cudaStreamSynchronize(s.stream));
  for (size_t i = 0; i < s.names.size(); i++) {
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, s.events[i], s.events[i + 1]));
    totals[s.names[i]].add(ms * 1e-3);
  }
}

}  // namespace llm::op_split
