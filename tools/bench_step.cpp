// defines: llm_bench step — times training steps of a Llama model and splits the time by kernel
// (the GEMM share of a CPU step, for one). Prints a table; --json writes the numbers.
#include <fmt/core.h>
#include <fmt/os.h>

#include <chrono>
#include <random>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/op_timer.h"
#include "engine/optimizer.h"
#include "model/llama.h"
#include "tools/bench_args.h"

namespace llm {

int bench_step(int argc, char** argv) {
  BenchArgs args(argc, argv, 2,
                 {{"preset", "tiny"}, {"layers", "4"}, {"dim", "256"}, {"seq", "256"},
                  {"batch", "4"}, {"steps", "5"}, {"recompute", "0"}, {"json", ""}});
  LlamaConfig c = *llama_preset(args.str("preset"));
  c.num_hidden_layers = args.num("layers");
  if (c.hidden_size != args.num("dim")) {
    c.hidden_size = args.num("dim");
    c.intermediate_size = 3 * c.hidden_size;
  }
  const int64_t B = args.num("batch"), S = args.num("seq"), steps = args.num("steps");
  LlamaModel model(c, Device::cpu(), 1);
  std::vector<OptimParam> params;
  std::vector<Tensor*> tensors;
  for (auto& p : model.parameters()) {
    params.push_back({p.name, p.tensor, !LlamaModel::is_norm_weight(p.name)});
    tensors.push_back(p.tensor);
  }
  AdamW opt(params, {});
  std::mt19937 rng(1);
  std::vector<int32_t> ids(B * S), pos(B * S);
  for (int64_t i = 0; i < B * S; i++) {
    ids[i] = static_cast<int32_t>(rng() % c.vocab_size);
    pos[i] = static_cast<int32_t>(i % S);
  }
  Tensor x = Tensor::from_ints(ids, {B, S}), p = Tensor::from_ints(pos, {B, S});
  std::vector<int32_t> next(ids.begin() + 1, ids.end());
  next.push_back(0);
  Tensor y = Tensor::from_ints(next, {B * S});
  ForwardOptions fwd{args.num("recompute")};

  auto step = [&] {
    for (Tensor* t : tensors) t->zero_grad();
    Tensor loss = model.loss(x, y, p, fwd);
    backward(loss);
    clip_grad_norm(tensors, 1.0);
    opt.step(1e-4f);
  };
  step();  // warm-up: fills the allocator's cache
  backend(Device::cpu()).allocator().reset_peak();
  OpTimer::totals().clear();
  OpTimer::enable(true);
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; i++) step();
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
  OpTimer::enable(false);

  double flops = model.training_flops_per_token(S) * B * S;
  fmt::print("llm_bench step: {} layers, dim {}, seq {}, batch {}, {} parameters, cpu\n",
             c.num_hidden_layers, c.hidden_size, S, B, c.num_parameters());
  fmt::print("{:<16} {:>12} {:>8}\n", "kernel", "ms/step", "share");
  double accounted = 0;
  for (auto& [name, seconds] : OpTimer::totals()) {
    double per_step = seconds / steps;
    accounted += per_step;
    fmt::print("{:<16} {:>12.2f} {:>7.1f}%\n", name, per_step * 1e3, 100 * per_step / total);
  }
  fmt::print("{:<16} {:>12.2f} {:>7.1f}%\n", "other", (total - accounted) * 1e3,
             100 * (total - accounted) / total);
  fmt::print("{:<16} {:>12.2f} {:>7.1f}%\n", "step", total * 1e3, 100.0);
  double peak = backend(Device::cpu()).allocator().stats().peak_bytes / 1048576.0;
  fmt::print("tokens/s {:.0f}, model GFLOP/s {:.1f}, peak memory {:.1f} MiB\n", B * S / total,
             flops / total / 1e9, peak);
  if (!args.str("json").empty()) {
    auto out = fmt::output_file(args.str("json"));
    out.print("{{\"layers\": {}, \"dim\": {}, \"seq\": {}, \"batch\": {}, \"step_ms\": {:.4f}, "
              "\"tokens_per_s\": {:.1f}, \"peak_mib\": {:.2f}, \"kernels_ms\": {{",
              c.num_hidden_layers, c.hidden_size, S, B, total * 1e3, B * S / total, peak);
    const char* sep = "";
    for (auto& [name, seconds] : OpTimer::totals()) {
      out.print("{}\"{}\": {:.4f}", sep, name, seconds / steps * 1e3);
      sep = ", ";
    }
    out.print("}}}}\n");
  }
  return 0;
}

}  // namespace llm
