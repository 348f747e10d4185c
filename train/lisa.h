// LISA (Axolotl's lisa_n_layers / lisa_step_interval; arXiv 2403.17919): every interval of
// optimizer steps trains only a random few decoder layers, beside the embedding, the final norm
// and lm_head, which always train. Axolotl's callback picks the layers of the steps from s on (s
// a multiple of the interval) with numpy's legacy generator seeded by s:
// np.random.seed(s); np.random.choice(range(layers), n, replace=False). lisa_layers reproduces
// that draw exactly, so a run picks Axolotl's layers and a resume picks the uninterrupted run's.
#pragma once
#include <cstdint>
#include <vector>

namespace llm {

// numpy's RandomState(seed).choice(range(total), n, replace=False): the first n of a Fisher-Yates
// permutation of 0..total-1 drawn by MT19937 (seeded as numpy seeds an integer) through numpy's
// masked rejection sampling of each swap index.
std::vector<int64_t> lisa_layers(int64_t total, int64_t n, uint32_t seed);

// The first step of the interval that step `steps_done` + 1 falls in: the draw's seed.
inline int64_t lisa_interval_start(int64_t steps_done, int64_t interval) { return steps_done - steps_done % interval; }

}  // namespace llm
