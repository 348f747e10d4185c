// defines: pose_positions, PoseDraws, and io/dataset.h's add_pose_positions and
// sorted_by_last_position
#include "io/pose.h"

#include <algorithm>

#include "engine/counter_random.h"
#include "io/dataset.h"

namespace llm {

std::vector<int32_t> pose_positions(const int32_t* tokens, int64_t n, const PoseConfig& config,
                                    const std::function<int64_t(int64_t)>& draw) {
  std::vector<int64_t> splits;
  if (!config.split_on_token_ids.empty()) {
    const auto& ids = config.split_on_token_ids;
    for (int64_t i = 0; i < n; i++)
      if (std::find(ids.begin(), ids.end(), tokens[i]) != ids.end()) splits.push_back(i);
  } else {
    const int64_t chunk = n / config.chunks;
    for (int64_t c = 1; c < config.chunks; c++) splits.push_back(c * chunk);
  }
  splits.push_back(n);
  if (splits.front() < 2) splits.erase(splits.begin());
  std::vector<int32_t> positions;
  positions.reserve(static_cast<size_t>(n));
  int64_t previous = 0, skips_left = config.max_context_len - n, skipped = 0;
  for (int64_t split : splits) {
    const int64_t skip = previous != 0 && skips_left != 0 ? draw(skips_left) : 0;
    skips_left -= skip;
    skipped += skip;
    for (int64_t i = previous; i < split; i++) positions.push_back(static_cast<int32_t>(i + skipped));
    previous = split;
  }
  return positions;
}

PoseDraws::PoseDraws(uint64_t seed, int64_t example) : stream_(counter_bits(seed, example)) {}

int64_t PoseDraws::operator()(int64_t most) {
  const double u = static_cast<double>(counter_bits(stream_, next_++) >> 11) * 0x1p-53;  // [0, 1)
  return std::min(most, static_cast<int64_t>(u * static_cast<double>(most + 1)));
}

void add_pose_positions(ExampleSet& data, const ExampleSplit& split, const DataConfig& config, uint64_t seed) {
  data.positions.resize(data.tokens.size());
  for (int64_t e = 0; e < data.size(); e++)
    for (int64_t i = 0; i < data.length(e); i++) data.positions[data.offsets[e] + i] = static_cast<int32_t>(i);
  std::vector<int64_t> examples = split.train;
  if (config.eval_sample_packing) examples.insert(examples.end(), split.val.begin(), split.val.end());
  for (int64_t e : examples) {
    const std::vector<int32_t> p =
        pose_positions(data.tokens.data() + data.offsets[e], data.length(e), config.pose, PoseDraws(seed, e));
    std::copy(p.begin(), p.end(), data.positions.begin() + data.offsets[e]);
  }
}

std::vector<int64_t> sorted_by_last_position(const ExampleSet& data, std::vector<int64_t> examples) {
  const auto last = [&data](int64_t e) { return data.positions[data.offsets[e + 1] - 1]; };
  std::stable_sort(examples.begin(), examples.end(), [&](int64_t a, int64_t b) { return last(a) < last(b); });
  return examples;
}

}  // namespace llm
