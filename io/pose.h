// PoSE (Axolotl's use_pose; arXiv 2309.10400): a training example of n tokens gets position ids
// that skip ahead at a few split points, so a model trained on short rows meets the positions of
// a context up to pose_max_context_len. As Axolotl's add_pose_position_ids:
//   split points: the indices of the tokens in split_on_token_ids when given, else the multiples
//     of n / chunks below n (integer division); then n itself; a first split point below 2 is
//     dropped;
//   segments: [previous split point, split point) in order, the first starting at 0; every
//     segment but the one starting at 0 skips ahead by a uniform draw in [0, skips left], where
//     the skips left start at max_context_len - n and shrink by each draw; a segment's positions
//     are its token indices plus every skip so far.
// Axolotl then sorts the training rows by their last position id (stably), an order that only a
// fixed one (curriculum_sampling) serves as it is.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace llm {

struct PoseConfig {
  int64_t max_context_len = -1;             // pose_max_context_len (>= every example's length; < 0: unset)
  std::vector<int32_t> split_on_token_ids;  // pose_split_on_token_ids
  int64_t chunks = 2;                       // pose_num_chunks, without split_on_token_ids
};

// The position ids of tokens[0, n); draw(m) gives a uniform integer in [0, m].
std::vector<int32_t> pose_positions(const int32_t* tokens, int64_t n, const PoseConfig& config,
                                    const std::function<int64_t(int64_t)>& draw);

// Example e's draws, the k-th one floor(u (m + 1)) with u the top 53 bits of counter_bits(
// counter_bits(seed, e), k) (engine/counter_random.h): a function of (seed, e, k) alone, which
// tools/make_hf_trajectory.py computes the same way.
class PoseDraws {
 public:
  PoseDraws(uint64_t seed, int64_t example);
  int64_t operator()(int64_t most);  // the next draw, uniform in [0, most]

 private:
  uint64_t stream_;
  int64_t next_ = 0;
};

}  // namespace llm
