// defines: the LoRA inits of model/lora_init.h, in PEFT's order of f32 operations
#include "model/lora_init.h"

#include <cmath>

#include "engine/check.h"

namespace llm {

bool lora_init_from_base(const std::string& init) {
  return init == "pissa" || init == "olora" || pissa_power_iterations(init) >= 0;
}

int pissa_power_iterations(const std::string& init) {
  const std::string prefix = "pissa_niter_";
  if (init.rfind(prefix, 0) != 0 || init.size() == prefix.size() || init.size() > prefix.size() + 4) return -1;
  int niter = 0;
  for (size_t i = prefix.size(); i < init.size(); i++) {
    if (init[i] < '0' || init[i] > '9') return -1;
    niter = niter * 10 + (init[i] - '0');
  }
  return niter;
}

namespace {
// W - (scale B) A, as PEFT writes `weight - scaling * lora_B @ lora_A`.
HostMatrix residual(const HostMatrix& w, const HostMatrix& a, HostMatrix b, float scale) {
  for (float& x : b.values) x *= scale;
  HostMatrix out = host_matmul(b, a);
  for (size_t i = 0; i < out.values.size(); i++) out.values[i] = w.values[i] - out.values[i];
  return out;
}

void check_rank(const HostMatrix& w, int64_t r) {
  LLM_CHECK(r >= 1 && r <= std::min(w.rows, w.cols), "LoRA init from the base: rank " + std::to_string(r) +
                                                          " outside [1, min(out, in)] of a " + std::to_string(w.rows) +
                                                          " x " + std::to_string(w.cols) + " weight");
}
}  // namespace

LoraFromBase pissa_init(const HostMatrix& w, int64_t r, float scale, int niter, const HostMatrix& draws) {
  check_rank(w, r);
  HostMatrix u, v;  // out x r, in x r
  std::vector<float> s;
  if (niter < 0) {
    ThinSvd svd = thin_svd(w);
    u = {w.rows, r, std::vector<float>(w.rows * r)};
    v = {w.cols, r, std::vector<float>(w.cols * r)};
    for (int64_t i = 0; i < w.rows; i++)
      for (int64_t j = 0; j < r; j++) u.values[i * r + j] = svd.u.at(i, j);
    for (int64_t i = 0; i < w.cols; i++)
      for (int64_t j = 0; j < r; j++) v.values[i * r + j] = svd.vt.at(j, i);
    s.assign(svd.s.begin(), svd.s.begin() + r);
  } else {
    LowRankSvd svd = svd_lowrank(w, r, niter, draws);
    u = std::move(svd.u);
    v = std::move(svd.v);
    s = std::move(svd.s);
  }
  LoraFromBase out{{r, w.cols, std::vector<float>(r * w.cols)}, {w.rows, r, std::vector<float>(w.rows * r)}, {}};
  for (float& x : s) x = std::sqrt(x / scale);
  for (int64_t j = 0; j < r; j++)
    for (int64_t i = 0; i < w.cols; i++) out.a.values[j * w.cols + i] = s[j] * v.at(i, j);
  for (int64_t i = 0; i < w.rows; i++)
    for (int64_t j = 0; j < r; j++) out.b.values[i * r + j] = u.at(i, j) * s[j];
  out.residual = residual(w, out.a, out.b, scale);
  return out;
}

LoraFromBase olora_init(const HostMatrix& w, int64_t r, float scale) {
  check_rank(w, r);
  const ThinQr qr = thin_qr(w);
  LoraFromBase out{{r, w.cols, std::vector<float>(qr.r.values.begin(), qr.r.values.begin() + r * w.cols)},
                   {w.rows, r, std::vector<float>(w.rows * r)},
                   {}};
  for (int64_t i = 0; i < w.rows; i++)
    for (int64_t j = 0; j < r; j++) out.b.values[i * r + j] = qr.q.at(i, j);
  out.residual = residual(w, out.a, out.b, scale);
  return out;
}

}  // namespace llm
