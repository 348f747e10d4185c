// The split of a training step by op on a GPU (llm_bench step; Backend::set_op_split). While it
// is on, each op records a CUDA event on the backend's stream after its launches (check_op, and
// the GEMM and cuDNN calls, which have no launch check of their own). An op's time is the device
// time from the event before it to its own: its kernels, plus any time the GPU sat waiting for the
// host to queue them, so a host-bound stretch shows up as time of the op after it. Events are
// recorded, never waited for, until stop(): the host runs ahead as it does in training. Off, an op
// pays one branch.
#pragma once
#include <cuda_runtime.h>

#include <map>
#include <string>

#include "engine/op_timer.h"

namespace llm::op_split {

void start(cudaStream_t stream);  // the reference event: the split's time starts here
void mark(const char* op);        // after op's launches; nothing while the split is off
// Waits for the stream, then adds each op's seconds and one call per mark under its name; off again.
void stop(std::map<std::string, OpTimer::Total>& totals);

}  // namespace llm::op_split
