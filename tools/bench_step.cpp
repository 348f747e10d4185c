// defines: llm_bench step — times training steps of a Llama model (forward, backward, clipping,
// AdamW) on the CPU or a GPU, and splits a step by op (Backend::set_op_split): on the CPU each
// op's wall clock during the timed steps; on a GPU, whose ops run asynchronously, the device time
// between consecutive ops' CUDA events, over as many steps again after the timed ones (the events
// stay out of the step's time).
#include <fmt/core.h>
#include <fmt/os.h>

#include <chrono>
#include <optional>
#include <random>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/op_timer.h"
#include "engine/ops/head_weight.h"
#include "engine/optimizer.h"
#include "model/llama.h"
#include "tools/bench_args.h"

namespace llm {

int bench_step(int argc, char** argv) {
  BenchArgs args(argc, argv, 2,
                 {{"preset", "tiny"}, {"layers", "0"}, {"dim", "0"}, {"seq", "256"}, {"batch", "4"},
                  {"steps", "5"}, {"recompute", "0"}, {"device", "cpu"}, {"bf16", "0"}, {"bfloat16", "0"},
                  {"attention", "eager"}, {"optimizer", "adamw_torch"}, {"loss-chunk-rows", "0"}, {"json", ""}});
  const LlamaConfig c = bench_model(args);
  const Device device = args.str("device") == "cuda" ? Device::cuda(0) : Device::cpu();
  const int64_t B = args.num("batch"), S = args.num("seq"), steps = args.num("steps");
  LlamaModel model(c, device, 1);
  // --bfloat16 1: the config key's bf16 weights and moments, no master copy (a GPU computes in bf16).
  const bool bf16_weights = args.num("bfloat16") != 0;
  if (bf16_weights) model.store_weights_in_bf16();
  const bool bf16 = args.num("bf16") != 0 || (bf16_weights && !device.is_cpu());
  std::vector<OptimParam> params;
  std::vector<Tensor*> tensors;
  for (auto& p : model.parameters()) {
    params.push_back({p.name, p.tensor, !LlamaModel::is_norm_weight(p.name)});
    tensors.push_back(p.tensor);
  }
  if (args.str("optimizer") != "adamw_torch" && args.str("optimizer") != "adamw_8bit")
    throw std::invalid_argument("--optimizer expects adamw_torch or adamw_8bit, got '" + args.str("optimizer") + "'");
  AdamW opt(params, {}, args.str("optimizer") == "adamw_8bit" ? AdamWState::blockwise_8bit : AdamWState::f32);
  std::mt19937 rng(1);
  std::vector<int32_t> ids(B * S), pos(B * S);
  for (int64_t i = 0; i < B * S; i++) {
    ids[i] = static_cast<int32_t>(rng() % c.vocab_size);
    pos[i] = static_cast<int32_t>(i % S);
  }
  Tensor x = Tensor::from_ints(ids, {B, S}, device), p = Tensor::from_ints(pos, {B, S}, device);
  std::vector<int32_t> next(ids.begin() + 1, ids.end());
  next.push_back(0);
  Tensor y = Tensor::from_ints(next, {B * S}, device);
  ForwardOptions fwd;
  fwd.recompute_every_n_layers = args.num("recompute");
  fwd.attention = attention_named(args.str("attention"));
  fwd.s2_group_size = S / 4;  // LongLoRA's ratio, with --attention s2
  fwd.compute_dtype = bf16 ? DType::bf16 : DType::f32;
  fwd.targets_host = Tensor::from_ints(next, {B * S});  // as the trainer's batches: no device read
  fwd.loss_chunk_rows = args.num("loss-chunk-rows");
  if (fwd.loss_chunk_rows < 0)
    throw std::invalid_argument("--loss-chunk-rows must be >= 0 (0: the default), got " + args.str("loss-chunk-rows"));

  Backend& be = backend(device);
  auto step = [&] {
    for (Tensor* t : tensors) t->zero_grad();
    Tensor loss = model.loss(x, y, p, fwd);
    backward(loss);
    opt.step(1e-4f, 1.0);
  };
  step();  // warm-up: fills the allocator's cache
  be.synchronize();
  be.allocator().reset_peak();
  OpTimer::totals().clear();
  const bool split_while_timed = device.is_cpu();
  be.set_op_split(split_while_timed);
  const uint64_t reads_before = host_reads();
  const double read_seconds_before = host_read_seconds();
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; i++) step();
  const auto enqueued = std::chrono::steady_clock::now();
  be.synchronize();
  const auto t1 = std::chrono::steady_clock::now();
  const double reads_per_step = static_cast<double>(host_reads() - reads_before) / steps;
  double total = std::chrono::duration<double>(t1 - t0).count() / steps;
  // The host's own work: the steps' time less what it spent waiting on the device (inside host
  // reads, and for the queue left after the last step).
  const double waits = host_read_seconds() - read_seconds_before + std::chrono::duration<double>(t1 - enqueued).count();
  const double host_work = total - waits / steps;
  be.set_op_split(false);
  if (!split_while_timed) {
    be.set_op_split(true);
    for (int64_t i = 0; i < steps; i++) step();
    be.set_op_split(false);
  }

  const double flops = model.training_flops_per_token(S) * B * S;
  fmt::print("llm_bench step: {} layers, dim {}, seq {}, batch {}, {:.1f}M parameters ({:.1f}M multiplied: the N of "
             "model TFLOP/s and MFU, 6 N + 12 L C S a token), {}, {}, {} attention\n",
             c.num_hidden_layers, c.hidden_size, S, B, c.num_parameters() / 1e6, model.multiplied_parameters() / 1e6,
             device.str(),
             std::string(bf16 ? "bf16" : "f32") + (bf16_weights ? " (bfloat16: bf16 weights and moments)" : ""),
             args.str("attention"));
  // Shares of the timed step on the CPU (the rest, "other", is the host's own work between ops);
  // on a GPU of the split's steps, whose device time the ops account for whole.
  double accounted = 0;
  for (auto& [name, total_of_op] : OpTimer::totals()) accounted += total_of_op.seconds / steps;
  const double whole = split_while_timed ? total : accounted;
  // Calls: on a GPU each is at least one kernel launch (an op's launch check marks the split).
  fmt::print("{:<32} {:>10} {:>8} {:>11}\n", split_while_timed ? "op" : "op (device time)", "ms/step", "share",
             "calls/step");
  for (auto& [name, t] : OpTimer::totals())
    fmt::print("{:<32} {:>10.2f} {:>7.1f}% {:>11.1f}\n", name, t.seconds / steps * 1e3,
               100 * t.seconds / steps / whole, static_cast<double>(t.calls) / steps);
  if (split_while_timed)
    fmt::print("{:<32} {:>10.2f} {:>7.1f}%\n", "other", (total - accounted) * 1e3, 100 * (total - accounted) / total);
  else
    fmt::print("{:<32} {:>10.2f} ms (the split's steps, events after every op)\n", "split step", accounted * 1e3);
  fmt::print("{:<32} {:>10.2f} ms\n", "step", total * 1e3);
  // Each read waits for the device's queue to drain (engine/backend.h: host_reads).
  fmt::print("host reads of device data per step: {:.0f}\n", reads_per_step);
  // Near the step's time, the host's launches (and autograd's bookkeeping) pace the device.
  fmt::print("host's own work per step: {:.2f} ms (the step less its waits on the device)\n", host_work * 1e3);
  // In use: the tensors' bytes; reserved: what the allocator held from the system (the device's).
  const double peak = be.allocator().stats().peak_bytes / 1048576.0;
  const double peak_reserved = be.allocator().stats().peak_reserved_bytes / 1048576.0;
  // What gradient checkpointing saves: the bytes one forward leaves in use for its backward (each
  // block's saved activations, or with --recompute each segment's input; also the gradients the
  // fused loss computes in its forward, split out below). The allocator counts on the host, when
  // ops allocate.
  for (Tensor* t : tensors) t->zero_grad();
  const double in_use_before = static_cast<double>(be.allocator().stats().in_use_bytes);
  Tensor loss = model.loss(x, y, p, fwd);
  const double forward_kept = (static_cast<double>(be.allocator().stats().in_use_bytes) - in_use_before) / 1048576.0;
  backward(loss);
  // Not activations, and no recompute changes them: the fused loss forms its backward's two
  // gradients in the forward (engine/ops/linear_cross_entropy.cpp), d(hidden) in the compute dtype
  // and d(lm_head) (V x C) in the dtype its gradient is kept in (engine/ops/head_weight.h: f32 from
  // an f32 master or under bfloat16). Not activations either, but recompute frees them: the block
  // linears' weights cast to the compute dtype (master_linear) keep for the backward's d(input)
  // GEMM. The activations are the rest. (The 2026-12-04 GPU run printed the f32 d(lm_head) and the
  // casts as activations: 4737 MiB against 637 with recompute, which are 2380 against 136.)
  DType head_grad_dtype = fwd.compute_dtype;
  double weight_copies = 0;
  for (const OptimParam& param : params) {
    if (param.name == (c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"))
      head_grad_dtype = head_weight_for(*param.param, fwd.compute_dtype).grad_dtype;
    if (fwd.recompute_every_n_layers == 0 && param.name.find("layers.") != std::string::npos &&
        param.param->dim() == 2 && param.param->dtype() != fwd.compute_dtype)
      weight_copies += static_cast<double>(param.param->numel()) * dtype_size(fwd.compute_dtype) / 1048576.0;
  }
  const double loss_gradients =
      (static_cast<double>(c.vocab_size) * dtype_size(head_grad_dtype) + static_cast<double>(B * S) * dtype_size(fwd.compute_dtype)) *
      static_cast<double>(c.hidden_size) / 1048576.0;
  const double activations_kept = forward_kept - loss_gradients - weight_copies;
  fmt::print("forward kept for backward {:.1f} MiB: activations {:.1f}, the block linears' weights in {} {:.1f}, "
             "the fused loss's d(lm_head) and d(hidden) {:.1f}\n",
             forward_kept, activations_kept, dtype_name(fwd.compute_dtype), weight_copies, loss_gradients);
  const DevicePeaks peaks = be.peaks();  // dense bf16: MFU's denominator (0 on the CPU: no MFU)
  const double mfu = peaks.bf16_tflops > 0 ? 100.0 * flops / total / (peaks.bf16_tflops * 1e12) : 0.0;
  fmt::print("tokens/s {:.0f}, model TFLOP/s {:.3f}{}, peak memory {:.1f} MiB (reserved {:.1f})\n", B * S / total,
             flops / total / 1e12, peaks.bf16_tflops > 0 ? fmt::format(", MFU {:.1f}% of {:.0f}", mfu, peaks.bf16_tflops) : "", peak,
             peak_reserved);
  if (!args.str("json").empty()) {
    auto out = fmt::output_file(args.str("json"));
    out.print("{{\"device\": \"{}\", \"layers\": {}, \"dim\": {}, \"seq\": {}, \"batch\": {}, "
              "\"step_ms\": {:.4f}, \"tokens_per_s\": {:.1f}, \"mfu_percent\": {:.2f}, "
              "\"peak_mib\": {:.2f}, \"peak_reserved_mib\": {:.2f}, \"forward_kept_mib\": {:.2f}, "
              "\"activations_kept_mib\": {:.2f}, \"weight_copies_kept_mib\": {:.2f}, \"kernels_ms\": {{",
              device.str(), c.num_hidden_layers, c.hidden_size, S, B, total * 1e3, B * S / total, mfu, peak, peak_reserved,
              forward_kept, activations_kept, weight_copies);
    auto print_per_op = [&](auto value_of) {
      const char* sep = "";
      for (auto& [name, t] : OpTimer::totals()) {
        out.print("{}\"{}\": {:.4f}", sep, name, value_of(t));
        sep = ", ";
      }
    };
    print_per_op([&](const OpTimer::Total& t) { return t.seconds / steps * 1e3; });
    out.print("}}, \"calls_per_step\": {{");
    print_per_op([&](const OpTimer::Total& t) { return static_cast<double>(t.calls) / steps; });
    out.print("}}}}\n");
  }
  return 0;
}

}  // namespace llm
