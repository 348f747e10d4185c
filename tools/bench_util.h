// Helpers shared by llm_bench's subcommands: list options, random inputs, errors between two
// results, and the median time of a run with cold caches.
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/tensor.h"

namespace llm {

// "a,b,c" -> {a, b, c}, empty items dropped.
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> items;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) items.push_back(item);
  return items;
}

// Normal(0, stddev) values on the host, f32.
inline Tensor randn(const Shape& shape, float stddev, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> x(shape_numel(shape));
  for (float& e : x) e = dist(rng);
  return Tensor::from_floats(x, shape);
}

// The larger of two errors, NaN once either is: a check `err <= limit` then fails on a kernel that
// gives NaN, where std::max(err, NaN) would drop it.
template <typename T>
T worse_error(T a, T b) {
  return std::isnan(b) ? b : std::max(a, b);
}

inline float max_abs_diff(const Tensor& got, const Tensor& want) {
  std::vector<float> a = got.to_floats(), b = want.to_floats();
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); i++) m = worse_error(m, std::fabs(a[i] - b[i]));
  return m;
}

// An even count's median is the mean of the two middle values (as Python's statistics.median,
// which bench_torch_sdpa.py's rows use).
inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// One warm-up, then `repeats` runs of `work`, each after `prepare` (untimed: e.g. zeroing
// gradients) and after the backend evicts its caches (as a training step finds its inputs),
// timed where it runs (CUDA events on a GPU); the median ms.
inline double median_ms(Backend& be, const std::function<void()>& work, int64_t repeats,
                        const std::function<void()>& prepare = {}) {
  std::unique_ptr<DeviceTimer> timer = be.make_timer();
  auto run = [&] {
    if (prepare) prepare();
    be.flush_caches();
    timer->start();
    work();
    return timer->stop_ms();
  };
  run();
  std::vector<double> ms;
  for (int64_t r = 0; r < repeats; r++) ms.push_back(run());
  return median(ms);
}

}  // namespace llm
