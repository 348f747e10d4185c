// declares: PEFT's LoRA inits that start from the base weight and change it (init_lora_weights
// pissa, pissa_niter_K and olora): the adapter's first A and B, and the residual the base then holds
#pragma once
#include <cstdint>
#include <string>

#include "engine/linalg.h"

namespace llm {

// An init that starts from the base weight W (out x in): A (r x in), B (out x r) and the residual
// W - scale (B A) the frozen base keeps, so the untrained adapter leaves the model as it was.
struct LoraFromBase {
  HostMatrix a, b, residual;
};

// init_lora_weights values this builds: pissa, pissa_niter_K, olora.
bool lora_init_from_base(const std::string& init);
// K of pissa_niter_K; -1 for pissa (the exact SVD).
int pissa_power_iterations(const std::string& init);

// PiSSA (Meng et al., PEFT's pissa_init): W's r largest singular values s and vectors u, v;
// A = diag(sqrt(s / scale)) v^T, B = u diag(sqrt(s / scale)). Exact (torch.linalg.svd) for pissa,
// torch.svd_lowrank from the standard normal `draws` (min(out, in) x r) for pissa_niter_K.
LoraFromBase pissa_init(const HostMatrix& w, int64_t r, float scale, int niter, const HostMatrix& draws);
// OLoRA (Büyükakyüz, PEFT's olora_init): W = Q R; A = R's first r rows, B = Q's first r columns.
LoraFromBase olora_init(const HostMatrix& w, int64_t r, float scale);

}  // namespace llm
