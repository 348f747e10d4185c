// defines: llm_bench kernel — every op a training step runs, at a Llama 3 preset's layer shapes:
// validated against the CPU reference, then timed (median of --repeats, cold caches, CUDA events
// on a GPU), printed with the bytes it must move and the FLOPs it must do, and the share of the
// device's roofline it reaches (Backend::peaks: its memory bandwidth and dense bf16 TFLOP/s, e.g.
// 3.35 TB/s and 989 on an H100 SXM). On the CPU it times the CPU backend, which is itself the
// reference (no check, no roofline: the CPU has no stated peak).
#include <fmt/core.h>
#include <fmt/os.h>

#include <map>
#include <memory>
#include <set>

#include "engine/autograd.h"
#include "engine/check.h"
#include "engine/communicator.h"
#include "engine/int8.h"
#include "engine/nf4.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "model/llama_config.h"
#include "tools/bench_args.h"
#include "tools/bench_kernel_cases.h"
#include "tools/bench_util.h"

namespace llm {

namespace {

Tensor ids(int64_t n, int64_t vocab, std::mt19937& rng) {
  std::vector<int32_t> v(n);
  for (int32_t& x : v) x = static_cast<int32_t>(rng() % vocab);
  return Tensor::from_ints(v, {n});
}

// The upstream gradient of the output a case's backward starts from: ones (the seed the fused
// loss expects, so it rescales nothing), made before the timer starts, as a training step's
// arrives made. The first run of a case (untimed) makes its own and leaves the shape for the
// harness's prepare to make the next one.
struct Upstream {
  bool known = false;  // the last output's shape, dtype and device
  Shape shape;
  DType dtype = DType::f32;
  Device device = Device::cpu();
  Tensor ready;  // for the next run, made by make_next_upstream
};
Upstream upstream;

Tensor take_upstream(const Tensor& out) {
  Tensor seed = std::move(upstream.ready);
  upstream = {true, out.shape(), out.dtype(), out.device(), Tensor()};
  const bool fits = seed.defined() && seed.shape() == out.shape() && seed.dtype() == out.dtype() &&
                    seed.device() == out.device();
  return fits ? seed : Tensor::full(out.shape(), 1.0f, out.dtype(), out.device());
}

void make_next_upstream() {
  if (upstream.known) upstream.ready = Tensor::full(upstream.shape, 1.0f, upstream.dtype, upstream.device);
}

// The backward of `out` from the upstream gradient; the gradients of `grads` returned.
std::vector<Tensor> with_backward(const Tensor& out, std::vector<Tensor*> grads, bool run_bwd) {
  std::vector<Tensor> result{out};
  if (!run_bwd) return result;
  backward(out, take_upstream(out));
  for (Tensor* t : grads) result.push_back(t->grad());
  return result;
}

// The device's collectives in a group of one (this process), made at first use: NCCL on a GPU.
DeviceCollectives& one_rank_collectives(Device device) {
  static std::map<DeviceType, std::unique_ptr<DeviceCollectives>> made;
  std::unique_ptr<DeviceCollectives>& c = made[device.type];
  if (!c) {
    const DeviceCollectivesFactory* factory = find_device_collectives(device.type);
    LLM_CHECK(factory, "llm_bench kernel: no collectives registered for " + device.str());
    c = factory->create(device, 0, 1, factory->make_id());
  }
  return *c;
}

// loss_chunks: the fused loss's rows per chunk, one case each (0: its default).
std::vector<Case> make_cases(const LlamaConfig& m, int64_t T, double e, const std::vector<int64_t>& loss_chunks,
                             std::mt19937& rng) {
  const int64_t C = m.hidden_size, F = m.intermediate_size, V = m.vocab_size;
  const int64_t H = m.num_attention_heads, Hkv = m.num_key_value_heads, D = m.head_dim();
  std::vector<Case> cases;
  // The linear layers: x (T, in) @ W^T (out, in). Backward: dX and dW, twice the forward.
  auto linear_case = [&](const std::string& name, int64_t out, int64_t in) {
    Case c{"matmul " + name, fmt::format("({}, {}) x ({}, {})^T", T, in, out, in),
           {randn({T, in}, 1.0f, rng), randn({out, in}, 0.02f, rng)},
           [](std::vector<Tensor>& x, bool bwd) {
             return with_backward(linear(x[0], x[1]), {&x[0], &x[1]}, bwd);
           }};
    c.flops_fwd = 2.0 * T * out * in;
    c.bytes_fwd = e * (T * in + out * in + T * out);
    c.flops_bwd = 2 * c.flops_fwd;
    c.bytes_bwd = 2 * c.bytes_fwd;
    cases.push_back(c);
  };
  linear_case("q_proj", H * D, C);
  linear_case("k_proj", Hkv * D, C);
  linear_case("o_proj", C, H * D);
  linear_case("gate_proj", F, C);
  linear_case("down_proj", C, F);

  Case norm{"rmsnorm", fmt::format("({}, {})", T, C), {randn({T, C}, 1.0f, rng), randn({C}, 1.0f, rng)},
            [eps = m.rms_norm_eps](std::vector<Tensor>& x, bool bwd) {
              return with_backward(rmsnorm(x[0], x[1], eps), {&x[0], &x[1]}, bwd);
            }};
  norm.flops_fwd = 4.0 * T * C;
  norm.bytes_fwd = e * 2 * T * C;
  norm.flops_bwd = 8.0 * T * C;
  norm.bytes_bwd = e * 3 * T * C;
  cases.push_back(norm);

  // The residual add fused with the norm after it (each block has two): x and r read, the sum and
  // the normed rows written, 4 T x C where add then rmsnorm move 5. Backward: h, dy and the sum's
  // own gradient read, d(x) written, 4 where rmsnorm's backward and autograd's add move 6. Timed
  // with the normed rows alone used, so the sum's gradient arrives as autograd's zeros.
  Case add_norm{"add_rmsnorm", fmt::format("({}, {})", T, C),
                {randn({T, C}, 1.0f, rng), randn({T, C}, 1.0f, rng), randn({C}, 1.0f, rng)},
                [eps = m.rms_norm_eps](std::vector<Tensor>& x, bool bwd) {
                  return with_backward(add_rmsnorm(x[0], x[1], x[2], eps).normed, {&x[0], &x[2]}, bwd);
                }};
  add_norm.flops_fwd = 5.0 * T * C;
  add_norm.bytes_fwd = e * 4 * T * C;
  add_norm.flops_bwd = 9.0 * T * C;
  add_norm.bytes_bwd = e * 4 * T * C;
  cases.push_back(add_norm);

  std::vector<int32_t> pos(T);
  for (int64_t i = 0; i < T; i++) pos[i] = static_cast<int32_t>(i);
  Case rot{"rope", fmt::format("(1, {}, {}, {})", T, H, D),
           {randn({1, T, H, D}, 1.0f, rng), Tensor::from_ints(pos, {1, T})},
           [rc = m.rope](std::vector<Tensor>& x, bool bwd) {
             return with_backward(rope(x[0], x[1], rc), {&x[0]}, bwd);
           }};
  rot.flops_fwd = rot.flops_bwd = 3.0 * T * H * D;
  rot.bytes_fwd = rot.bytes_bwd = e * 2 * T * H * D;
  cases.push_back(rot);

  Case glu{"swiglu", fmt::format("({}, {})", T, F), {randn({T, F}, 1.0f, rng), randn({T, F}, 1.0f, rng)},
           [](std::vector<Tensor>& x, bool bwd) {
             return with_backward(swiglu(x[0], x[1]), {&x[0], &x[1]}, bwd);
           }};
  glu.flops_fwd = 6.0 * T * F;
  glu.bytes_fwd = e * 3 * T * F;
  glu.flops_bwd = 10.0 * T * F;
  glu.bytes_bwd = e * 5 * T * F;
  cases.push_back(glu);

  Case emb{"embedding", fmt::format("{} ids into ({}, {})", T, V, C),
           {ids(T, V, rng), randn({V, C}, 0.02f, rng)},
           [](std::vector<Tensor>& x, bool bwd) {
             return with_backward(embedding(x[0], x[1]), {&x[1]}, bwd);
           }};
  emb.bytes_fwd = e * 2 * T * C + 4.0 * T;
  emb.bytes_bwd = e * T * C + e * V * C;  // the table's gradient (its dtype) is zeroed, then rows added
  cases.push_back(emb);

  // Logits and loss: one GEMM, h and lm_head read. With gradients wanted the forward also computes
  // them chunk by chunk (two GEMMs more there, none after, d(h) and d(lm_head) written in the
  // inputs' dtype): counted as the backward's, which they replace. (Until 2026-11-30 the forward
  // row counted all three: 102% of the H200's peak; until 2026-12-06 its bytes counted the
  // gradients' too, as f32.) Larger chunks make fewer passes of d(lm_head) through its GEMM (beta
  // 1) for more logits held at once.
  const std::vector<Tensor> lce_inputs{randn({T, C}, 1.0f, rng), randn({V, C}, 0.02f, rng), ids(T, V, rng)};
  for (int64_t chunk : loss_chunks) {
    Case lce{chunk ? fmt::format("linear_cross_entropy/{}", chunk) : "linear_cross_entropy",
             fmt::format("({}, {}) x ({}, {})^T", T, C, V, C), lce_inputs,
             [chunk](std::vector<Tensor>& x, bool bwd) {
               return with_backward(linear_cross_entropy(x[0], x[1], x[2], kIgnoreIndex, chunk), {&x[0], &x[1]}, bwd);
             }};
    lce.reference = "linear_cross_entropy";  // any chunking: the same inputs, the same loss
    lce.flops_fwd = 2.0 * T * V * C;
    lce.flops_bwd = 4.0 * T * V * C;
    lce.bytes_fwd = e * (T * C + V * C) + 4.0 * T;
    lce.bytes_bwd = e * (T * C + V * C);
    cases.push_back(lce);
  }

  // DoRA (peft_use_dora): the output features scaled by magnitude / weight norm (the factors f32
  // whatever the compute dtype), and the norms of the adapted weight's rows (f32, no gradient).
  Case dora{"scale_columns", fmt::format("({}, {}) x ({})", T, F, F), {randn({T, F}, 1.0f, rng), randn({F}, 1.0f, rng)},
            [](std::vector<Tensor>& x, bool bwd) {
              const Tensor s = x[1].dtype() == DType::f32 ? x[1] : cast(x[1], DType::f32);
              return with_backward(scale_columns(x[0], s), {&x[0], &x[1]}, bwd);
            }};
  dora.flops_fwd = 1.0 * T * F;
  dora.bytes_fwd = e * 2 * T * F + 4.0 * F;
  dora.flops_bwd = 3.0 * T * F;
  dora.bytes_bwd = e * 4 * T * F + 4.0 * F;  // dy read twice (dx, the column sums) with x; dx written
  cases.push_back(dora);
  Case row_norms{"row_inverse_norms", fmt::format("({}, {})", F, C), {randn({F, C}, 1.0f, rng)},
                 [](std::vector<Tensor>& x, bool) { return std::vector<Tensor>{row_inverse_norms(x[0])}; }, false};
  row_norms.flops_fwd = 2.0 * F * C;
  row_norms.bytes_fwd = 4.0 * (F * C + F);
  cases.push_back(row_norms);

  // NEFTune (neftune_noise_alpha): the embeddings' uniform noise; its gradient passes through.
  Case noise{"add_uniform_noise", fmt::format("({}, {})", T, C), {randn({T, C}, 1.0f, rng)},
             [](std::vector<Tensor>& x, bool bwd) { return with_backward(add_uniform_noise(x[0], 0.01f, 7), {&x[0]}, bwd); }};
  noise.flops_fwd = 3.0 * T * C;
  noise.bytes_fwd = e * 2 * T * C;
  cases.push_back(noise);

  // LoRA's dropout (lora_dropout) on a targeted linear's input; the backward draws the same mask.
  Case drop{"dropout", fmt::format("({}, {})", T, C), {randn({T, C}, 1.0f, rng)},
            [](std::vector<Tensor>& x, bool bwd) { return with_backward(dropout(x[0], 0.05f, 7), {&x[0]}, bwd); }};
  drop.flops_fwd = 1.0 * T * C;
  drop.bytes_fwd = e * 2 * T * C;
  drop.flops_bwd = 1.0 * T * C;
  drop.bytes_bwd = e * 2 * T * C;
  cases.push_back(drop);

  // QLoRA's and 8-bit LoRA's frozen base (engine/quant_weight.h): an MLP weight's codes into the
  // compute dtype (bf16 on a GPU) before each of its GEMMs, forward and backward. Not
  // differentiable: the codes and scales travel as they are, the weight put back together per run.
  auto dequantize_case = [&](const char* name, QuantWeight q, double bytes) {
    Case c{name, fmt::format("({}, {})", F, C), {q.codes, q.absmax}, nullptr, false};
    if (q.double_quant()) c.inputs.push_back(q.absmax_scale);
    c.run = [q](std::vector<Tensor>& x, bool) {
      QuantWeight on = q;
      on.codes = x[0], on.absmax = x[1];
      if (q.double_quant()) on.absmax_scale = x[2];
      return std::vector<Tensor>{dequantize(on, x[0].device().is_cpu() ? DType::f32 : DType::bf16)};
    };
    c.bytes_fwd = bytes;
    cases.push_back(c);
  };
  const double n = 1.0 * F * C;
  dequantize_case("nf4_dequantize", nf4_quantize(randn({F, C}, 0.02f, rng), true),
                  n / 2 + n / kNf4Block + 4 * n / (kNf4Block * kNf4AbsmaxBlock) + e * n);
  dequantize_case("int8_dequantize", int8_quantize(randn({F, C}, 0.02f, rng)), n + 4.0 * F + e * n);

  // Not differentiable: what the optimizer step runs over every parameter (one MLP weight here).
  Case to_bf16{"cast f32->bf16", fmt::format("({}, {})", F, C), {randn({F, C}, 1.0f, rng)},
               [](std::vector<Tensor>& x, bool) { return std::vector<Tensor>{cast(x[0], DType::bf16)}; },
               false};
  to_bf16.bytes_fwd = 6.0 * F * C;
  cases.push_back(to_bf16);

  Case norm2{"sum_squares", fmt::format("({}, {})", F, C), {randn({F, C}, 1.0f, rng)},
             [](std::vector<Tensor>& x, bool) {
               return std::vector<Tensor>{Tensor::full({}, static_cast<float>(sum_squares(x[0])),
                                                       DType::f32, Device::cpu())};
             },
             false};
  norm2.flops_fwd = 2.0 * F * C;
  norm2.bytes_fwd = 4.0 * F * C;
  cases.push_back(norm2);
  // The global gradient norm over one block's nine gradients at once (the step's reads this for
  // every block, and the embedding's): each tensor's first pass, one second pass for all.
  const std::vector<Shape> block_shapes{{H * D, C}, {Hkv * D, C}, {Hkv * D, C}, {C, H * D}, {F, C},
                                        {F, C},     {C, F},       {C},          {C}};
  std::vector<Tensor> block_grads;
  int64_t block_elements = 0;
  for (const Shape& shape : block_shapes) {
    block_grads.push_back(randn(shape, 1e-3f, rng));
    block_elements += block_grads.back().numel();
  }
  Case global_norm{"global_norm", fmt::format("a block: {} tensors, {}", block_shapes.size(), block_elements),
                   block_grads,
                   [](std::vector<Tensor>& x, bool) {
                     return std::vector<Tensor>{
                         Tensor::full({}, static_cast<float>(sum_squares(x)), DType::f32, Device::cpu())};
                   },
                   false};
  global_norm.flops_fwd = 2.0 * block_elements;
  global_norm.bytes_fwd = 4.0 * block_elements;
  cases.push_back(global_norm);

  // Data parallel's gradient all-reduce of one bucket (ddp_bucket_cap_mb's default 25 MiB of
  // f32), in place, as the trainer issues it (the communication stream, then the compute stream
  // waits), in a group of one: what a bucket costs beyond moving its bytes between GPUs, which
  // one rank has none of (so no roofline). On the CPU a group of one reduces nothing: the
  // identity, which is also the reference.
  const int64_t bucket = 25 * 1048576 / 4;
  Case reduce{"all_reduce", fmt::format("({}) f32 bucket, 1 rank", bucket), {randn({bucket}, 1.0f, rng)},
              [](std::vector<Tensor>& x, bool) {
                if (!x[0].device().is_cpu()) {
                  DeviceCollectives& c = one_rank_collectives(x[0].device());
                  c.allreduce_sum(x[0]);
                  c.wait();
                }
                return std::vector<Tensor>{x[0]};
              },
              false};
  cases.push_back(reduce);

  add_optimizer_cases(cases, F, C, rng);
  return cases;
}

// `t` (contiguous) copied to `offset` elements into a buffer of its own: with offset 1 no row
// starts on a word, and the kernels that otherwise load a word (4 or 8 elements) at a time take
// their element-wise form (cuda/vec.cuh). The two rows time one kernel's two variants in one run.
Tensor at_offset(const Tensor& t, int64_t offset) {
  if (offset == 0) return t;
  Tensor view = Tensor::empty({t.numel() + offset}, t.dtype(), t.device()).narrow(0, offset, t.numel());
  view.copy_from(t.reshape({t.numel()}));
  return view.reshape(t.shape());
}

// The case's inputs on `device`: float inputs of differentiable ops in the compute dtype and
// needing gradients when the backward runs; the rest (ids, optimizer state) as they are. Float
// and byte (quantised codes, 8-bit states) inputs start `offset` elements into their buffers.
// Always copies: AdamW updates its inputs in place, and every run (the CPU's reference too)
// starts from the case's own values.
std::vector<Tensor> place(const Case& c, Device device, DType dtype, bool bwd, int64_t offset) {
  std::vector<Tensor> x;
  for (const Tensor& t : c.inputs) {
    Tensor d = t.device() == device ? t.clone() : t.to(device);
    if (t.dtype() == DType::f32) {
      if (c.differentiable) d = d.to(dtype);
      d = at_offset(d, offset);
      if (c.differentiable) d.set_requires_grad(bwd);
    } else if (t.dtype() == DType::u8) {
      d = at_offset(d, offset);
    }
    x.push_back(d);
  }
  return x;
}

// The largest difference between the device's outputs and the CPU's, relative to the largest
// CPU value (so one threshold serves outputs of any scale).
double relative_error(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
  double worst = 0;
  for (size_t i = 0; i < want.size(); i++) {
    std::vector<float> w = want[i].to_floats();
    float scale = 1e-30f;
    for (float v : w) scale = std::max(scale, std::fabs(v));
    worst = worse_error(worst, static_cast<double>(max_abs_diff(got[i].to(Device::cpu()), want[i])) / scale);
  }
  return worst;
}

}  // namespace

int bench_kernel(int argc, char** argv) {
  const Device device = device_count(DeviceType::cuda) > 0 ? Device::cuda(0) : Device::cpu();
  // The kernels by name: `llm_bench kernel NAME[,NAME...]|all`, or --name.
  const bool positional = argc > 2 && std::string(argv[2]).rfind("--", 0) != 0;
  BenchArgs args(argc, argv, positional ? 3 : 2,
                 {{"name", positional ? argv[2] : "all"}, {"preset", device.is_cpu() ? "tiny" : "llama3-1b"},
                  {"tokens", device.is_cpu() ? "512" : "4096"}, {"pass", "fwd,fwd_bwd"},
                  {"repeats", "5"}, {"tolerance", "0.02"}, {"check", "auto"}, {"json", ""}, {"offset", "0"},
                  {"loss-chunks", "0"}});
  const std::optional<LlamaConfig> preset = llama_preset(args.str("preset"));
  if (!preset) throw std::invalid_argument("unknown --preset '" + args.str("preset") + "'");
  const int64_t T = args.num("tokens"), repeats = args.num("repeats");
  if (T < 1 || repeats < 1) throw std::invalid_argument("--tokens and --repeats must be >= 1");
  const double tolerance = std::stod(args.str("tolerance"));
  const DType dtype = device.is_cpu() ? DType::f32 : DType::bf16;
  std::mt19937 rng(1);
  std::vector<int64_t> loss_chunks;
  for (const std::string& c : split_list(args.str("loss-chunks"))) {
    loss_chunks.push_back(std::stoll(c));
    if (loss_chunks.back() < 0) throw std::invalid_argument("--loss-chunks must be >= 0 (0: the default), got " + c);
  }
  std::vector<Case> cases = make_cases(*preset, T, dtype_size(dtype), loss_chunks, rng);
  const std::vector<std::string> names = split_list(args.str("name")), passes = split_list(args.str("pass"));
  std::vector<int64_t> offsets;
  for (const std::string& o : split_list(args.str("offset"))) {
    offsets.push_back(std::stoll(o));
    if (offsets.back() < 0) throw std::invalid_argument("--offset must be >= 0, got " + o);
  }
  // A case answers to its whole name ("matmul q_proj") and to its first word ("matmul").
  auto first_word = [](const std::string& name) { return name.substr(0, name.find_first_of(" /")); };
  auto wanted = [&](const Case& c, const std::string& name) {
    return name == "all" || name == c.name || name == first_word(c.name);
  };
  std::string known;  // "matmul, rmsnorm, ..."
  std::set<std::string> listed;
  for (const Case& c : cases)
    if (listed.insert(first_word(c.name)).second) known += (known.empty() ? "" : ", ") + first_word(c.name);
  for (const std::string& name : names)
    if (std::none_of(cases.begin(), cases.end(), [&](const Case& c) { return wanted(c, name); }))
      throw std::invalid_argument("no kernel named '" + name + "'; expected all or some of " + known);

  Backend& be = backend(device);
  const DevicePeaks peaks = be.peaks();
  const bool checked = args.str("check") == "1" || (args.str("check") == "auto" && !device.is_cpu());
  fmt::print("llm_bench kernel: {} {}, {} shapes, {} tokens, median of {}{}\n", device.str(),
             dtype_name(dtype), args.str("preset"), T, repeats,
             device.is_cpu() ? fmt::format(" (the CPU is the reference: {}, no roofline)",
                                           checked ? "checked against itself" : "no check")
                             : fmt::format("; roofline {}: {:.0f} GB/s, {:.1f} dense bf16 TFLOP/s ({})",
                                           peaks.device, peaks.memory_gb_per_s, peaks.bf16_tflops,
                                           peaks.bf16_from_spec ? "stated" : "estimated"));
  fmt::print("{:<28}  {:<30} {:<8} {:>9} {:>9} {:>9} {:>7} {:>9}\n", "kernel", "shape", "pass", "ms",
             "GB/s", "TFLOP/s", "%roof", "rel_err");
  std::string json;
  int failures = 0;
  // The CPU's result for the case (or cases sharing it) under way, per pass: computed once for all
  // its offsets and chunkings (the fused loss's takes seconds at llama3 shapes even on many cores).
  std::string reference_of;
  std::map<bool, std::vector<Tensor>> reference;
  for (Case& c : cases) {
    if (std::none_of(names.begin(), names.end(), [&](const std::string& n) { return wanted(c, n); })) continue;
    for (int64_t offset : offsets)
    for (const std::string& pass : passes) {
      const bool bwd = pass == "fwd_bwd";
      if (bwd && !c.differentiable) continue;
      if (pass != "fwd" && pass != "fwd_bwd")
        throw std::invalid_argument("unknown --pass '" + pass + "' (fwd, fwd_bwd)");
      const std::string name = offset ? fmt::format("{} @+{}", c.name, offset) : c.name;
      upstream = Upstream{};  // this row's output's, once a run shows it (each run takes what prepare made)
      // Two spaces after the name, so that a name longer than its column stays apart from the shape.
      const std::string row = fmt::format("{:<28}  {:<30} {:<8}", name, c.shape, pass);
      std::string check = "-";
      // On a GPU, the same inputs through the CPU reference. `--check 1` on the CPU runs the
      // comparison against itself: it proves the harness (ctest does), not the kernels.
      if (checked) {
        const std::string group = c.reference.empty() ? c.name : c.reference;
        if (group != reference_of) reference.clear();
        reference_of = group;
        GradModeGuard grad(bwd);
        if (!reference.count(bwd)) {
          std::vector<Tensor> on_cpu = place(c, Device::cpu(), DType::f32, bwd, 0);
          reference[bwd] = c.run(on_cpu, bwd);
        }
        std::vector<Tensor> on_device = place(c, device, dtype, bwd, offset);
        const double err = relative_error(c.run(on_device, bwd), reference[bwd]);
        check = fmt::format("{:.1e}", err);
        const double limit = c.tolerance > 0 ? c.tolerance : tolerance;
        if (!(err <= limit)) {
          fmt::print("{} FAIL: relative error {} above {}\n", row, check, limit);
          json += (json.empty() ? "" : ",\n ") +
                  fmt::format("{{\"kernel\": \"{}\", \"shape\": \"{}\", \"pass\": \"{}\", \"ms\": null, "
                              "\"rel_error\": {}, \"note\": \"FAIL: relative error {} above {}\"}}",
                              name, c.shape, pass, std::isfinite(err) ? check : "null", check, limit);
          failures++;
          continue;
        }
      }
      std::vector<Tensor> x = place(c, device, dtype, bwd, offset);
      auto prepare = [&] {
        for (Tensor& t : x)
          if (t.requires_grad()) t.zero_grad();
        make_next_upstream();
      };
      const double ms = median_ms(
          be,
          [&] {
            GradModeGuard grad(bwd);
            c.run(x, bwd);
          },
          repeats, prepare);
      const double flops = c.flops_fwd + (bwd ? c.flops_bwd : 0);
      const double bytes = c.bytes_fwd + (bwd ? c.bytes_bwd : 0);
      const double gbs = bytes / (ms * 1e-3) / 1e9, tflops = flops / (ms * 1e-3) / 1e12;
      // The roofline: the time the device needs at best, whichever of memory and math binds.
      const double best_ms =
          std::max(bytes / (peaks.memory_gb_per_s * 1e9), flops / (peaks.bf16_tflops * 1e12)) * 1e3;
      const std::string roof =
          device.is_cpu() || best_ms == 0 ? "-" : fmt::format("{:.1f}", 100 * best_ms / ms);
      fmt::print("{} {:>9.4f} {:>9.1f} {:>9.3f} {:>7} {:>9}\n", row, ms, gbs, tflops, roof, check);
      json += (json.empty() ? "" : ",\n ") +
              fmt::format("{{\"kernel\": \"{}\", \"shape\": \"{}\", \"pass\": \"{}\", \"ms\": {:.5f}, "
                          "\"bytes\": {:.0f}, \"flops\": {:.0f}, \"gb_per_s\": {:.2f}, "
                          "\"tflops\": {:.4f}, \"roofline_pct\": {}, \"rel_error\": {}}}",
                          name, c.shape, pass, ms, bytes, flops, gbs, tflops,
                          roof == "-" ? "null" : roof, check == "-" ? "null" : check);
    }
  }
  if (!args.str("json").empty()) {
    auto out = fmt::output_file(args.str("json"));
    out.print("{{\"device\": \"{}\", \"dtype\": \"{}\", \"preset\": \"{}\", \"tokens\": {}, "
              "\"peak_gb_per_s\": {}, \"peak_tflops\": {}, \"rows\": [\n {}\n]}}\n",
              device.str(), dtype_name(dtype), args.str("preset"), T, peaks.memory_gb_per_s,
              peaks.bf16_tflops, json);
  }
  return failures ? 1 : 0;
}

}  // namespace llm
