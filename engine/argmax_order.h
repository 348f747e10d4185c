// defines: argmax_precedes, torch.argmax's order of a row's entries, shared by the CPU and CUDA
// argmax_hits (an accuracy counts a row whose target's logit comes first in it).
#pragma once
#include <cstdint>

#include "engine/host_device.h"

namespace llm {

// Whether argmax picks entry (a, i) over entry (b, j) of one row: a NaN over any number (torch
// propagates it), a larger value over a smaller one, and of equal values (or two NaNs) the
// lower index.
template <class Real>
LLM_HOST_DEVICE bool argmax_precedes(Real a, int64_t i, Real b, int64_t j) {
  const bool a_nan = a != a, b_nan = b != b;
  if (a_nan || b_nan) return a_nan && (!b_nan || i < j);
  return a > b || (a == b && i < j);
}

}  // namespace llm
