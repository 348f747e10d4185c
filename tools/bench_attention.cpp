// defines: llm_bench attention — checks each attention implementation against eager attention,
// then times it per shape and pass (median of --repeats after a warm-up), FLOPs by
// FlashAttention's convention. The check comes first and runs at the row's shape, or at seq
// kValidateSeq where eager's scores would not fit: an implementation whose error exceeds the
// tolerance prints FAIL and is not timed, so one run compares validated kernels only.
#include <fmt/core.h>
#include <fmt/os.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <sstream>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "tools/bench_args.h"
#include "tools/bench_util.h"

namespace llm {

namespace {

constexpr int64_t kS2GroupDivisor = 4;        // LongLoRA's default s2_group_size_ratio 1/4
constexpr double kEagerLimitBytes = 1 << 30;  // eager's probabilities above this: not run
constexpr int64_t kValidateSeq = 1024;        // the check's seq where the row's is too long
const char* const kImpls[] = {"flash",    "flash_simt", "flash_v2",      "flash_v3", "flash_v4",
                               "flash_v5", "flash_v6",   "flash_v7",      "flash_v8", "mem_efficient",
                               "s2",       "cudnn",      "eager"};
// An error above this fraction of the reference's largest value fails the check: bf16 kernels
// stay well under it, a wrong layout or mask errs by the size of the values.
double tolerance(DType dtype) { return dtype == DType::bf16 ? 5e-2 : 1e-3; }

// Flash attention's kernel variants, picked by an environment variable while the impl runs:
// flash_simt holds it on the CUDA-core kernels (LLM_ATTENTION_SIMT=1), flash_v2 ... v8 on
// those tensor-core kernels (LLM_ATTENTION_KERNEL, cuda/attention/flash_variants.h), to compare
// them with what flash chooses on the device.
struct KernelVariant {
  explicit KernelVariant(const std::string& impl)
      : var(impl == "flash_simt"               ? "LLM_ATTENTION_SIMT"
            : impl.rfind("flash_v", 0) == 0 ? "LLM_ATTENTION_KERNEL"
                                               : nullptr) {
    if (var) setenv(var, impl == "flash_simt" ? "1" : impl.substr(6).c_str(), 1);
  }
  ~KernelVariant() {
    if (var) unsetenv(var);
  }
  const char* var;
};

std::vector<int64_t> int_list(const BenchArgs& args, const std::string& key, int64_t min) {
  std::vector<int64_t> values;
  for (const std::string& item : split_list(args.str(key))) {
    char* end = nullptr;
    const long long x = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || x < min)
      throw std::invalid_argument("--" + key + " expects integers of at least " +
                                  std::to_string(min) + " like 512,1024; got '" + item + "'");
    values.push_back(x);
  }
  return values;
}

struct Problem {
  int64_t B, S, H, Hkv, D;
  bool causal, backward;
  int64_t docs = 1;  // equal documents packed in each row (sample packing's block-diagonal mask)
};

// FlashAttention's convention: forward 4 B H S^2 D (two GEMMs), backward 2.5x the forward, causal
// half of each. S2 counts what it computes: a query sees at most its group of G = S / 4 tokens,
// so the causal count times G / S, a quarter. Packed documents likewise: `docs` attentions of
// S / docs tokens each.
double flops(const Problem& p, const std::string& impl) {
  double f = 4.0 * p.B * p.H * p.S * p.S * p.D * (p.backward ? 3.5 : 1.0) / p.docs;
  if (p.causal) f /= 2;
  return impl == "s2" ? f / kS2GroupDivisor : f;
}

struct Inputs {
  Tensor q, k, v, dout;
};
struct Outputs {
  Tensor out, dq, dk, dv;
};

// Eager attention over tokens [t0, t0 + len) cut into groups of `group` tokens (a reshape of the
// contiguous (B, S, H, D) layout; each group an independent attention), keeping the output of
// query heads [h0, h1). Gradients flow from those heads only, so pieces add up: S2 is four pieces
// (plain heads in groups; shifted heads in a half group, groups, a half group), the rest one.
struct Piece {
  int64_t t0, len, group, h0, h1;
};

Outputs eager_reference(const Inputs& in, const std::vector<Piece>& pieces, const Problem& p) {
  std::vector<float> out(in.q.numel()), dq(in.q.numel()), dk(in.k.numel()), dv(in.k.numel());
  // dst (B, S, heads, D) += src (B, len, heads, D) at tokens from t0, heads [h0, h1).
  auto add = [&](const Tensor& src, std::vector<float>& dst, const Piece& c, int64_t heads,
                 int64_t h0, int64_t h1) {
    std::vector<float> s = src.to_floats();
    for (int64_t b = 0; b < p.B; b++)
      for (int64_t t = 0; t < c.len; t++)
        for (int64_t h = h0; h < h1; h++)
          for (int64_t d = 0; d < p.D; d++)
            dst[((b * p.S + c.t0 + t) * heads + h) * p.D + d] +=
                s[((b * c.len + t) * heads + h) * p.D + d];
  };
  for (const Piece& c : pieces) {
    if (c.len == 0) continue;
    auto cut = [&](const Tensor& t) {
      return t.narrow(1, c.t0, c.len).contiguous().reshape({p.B * c.len / c.group, c.group,
                                                            t.size(2), p.D});
    };
    Tensor q = cut(in.q), k = cut(in.k), v = cut(in.v);
    std::vector<float> seed = cut(in.dout).to_floats();
    for (size_t e = 0; e < seed.size(); e++) {
      const int64_t h = static_cast<int64_t>(e) / p.D % p.H;
      if (h < c.h0 || h >= c.h1) seed[e] = 0.0f;
    }
    GradModeGuard grad(p.backward);
    for (Tensor* t : {&q, &k, &v}) t->set_requires_grad(p.backward);
    Tensor o = attention(q, k, v, p.causal);
    add(o, out, c, p.H, c.h0, c.h1);
    if (!p.backward) continue;
    backward(o, Tensor::from_floats(seed, o.shape()).to(o.device()).to(o.dtype()));
    add(q.grad(), dq, c, p.H, 0, p.H);
    add(k.grad(), dk, c, p.Hkv, 0, p.Hkv);
    add(v.grad(), dv, c, p.Hkv, 0, p.Hkv);
  }
  auto host = [](const std::vector<float>& x, const Tensor& like) {
    return Tensor::from_floats(x, like.shape());
  };
  return {host(out, in.q), host(dq, in.q), host(dk, in.k), host(dv, in.k)};
}

std::vector<Piece> pieces_for(const std::string& impl, const Problem& p) {
  if (impl != "s2") return {{0, p.S, p.S / p.docs, 0, p.H}};  // each document on its own
  const int64_t G = p.S / kS2GroupDivisor, half = G / 2, H2 = p.H / 2;
  return {{0, p.S, G, 0, H2},
          {0, half, half, H2, p.H},
          {half, p.S - G, G, H2, p.H},
          {p.S - G + half, G - half, G - half, H2, p.H}};
}

// The biggest eager probability tensor the pieces materialise.
double eager_bytes(const std::vector<Piece>& pieces, const Problem& p) {
  double most = 0;
  for (const Piece& c : pieces) most = std::max(most, 4.0 * p.B * p.H * c.len * c.group);
  return most;
}

// The largest error of any output, and the largest as a fraction of its reference's largest
// value.
struct Error {
  float abs, rel;
};
Error max_error(const Outputs& got, const Outputs& want, bool backward) {
  Error e{0, 0};
  auto add = [&](const Tensor& g, const Tensor& w) {
    const float d = max_abs_diff(g, w);
    const float scale = max_abs_diff(w, Tensor::zeros(w.shape(), w.dtype()));
    e.abs = worse_error(e.abs, d);
    e.rel = worse_error(e.rel, scale > 0 ? d / scale : d);
  };
  add(got.out, want.out);
  if (backward) add(got.dq, want.dq), add(got.dk, want.dk), add(got.dv, want.dv);
  return e;
}

using AttnFn = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;

// Document ids (B, S) on `device`: token t of a row in document t / (S / docs).
Tensor doc_ids_for(const Problem& p, Device device) {
  std::vector<int32_t> ids(p.B * p.S);
  for (int64_t i = 0; i < p.B * p.S; i++) ids[i] = static_cast<int32_t>(i % p.S / (p.S / p.docs));
  return Tensor::from_ints(ids, {p.B, p.S}).to(device);
}

AttnFn impl_fn(const std::string& impl, const Problem& p, Device device) {
  const bool causal = p.causal;
  // Packed documents: flash attention trains them on the memory-efficient tiles with the
  // document mask, as the model does (model/llama.cpp: attend).
  if (p.docs > 1) {
    const Tensor doc_ids = doc_ids_for(p, device);
    return [=](auto& q, auto& k, auto& v) { return mem_efficient_attention(q, k, v, causal, Tensor(), doc_ids); };
  }
  if (impl.rfind("flash", 0) == 0)
    return [=](auto& q, auto& k, auto& v) { return flash_attention(q, k, v, causal); };
  if (impl == "mem_efficient")
    return [=](auto& q, auto& k, auto& v) { return mem_efficient_attention(q, k, v, causal); };
  if (impl == "cudnn")
    return [=](auto& q, auto& k, auto& v) { return cudnn_attention(q, k, v, causal); };
  if (impl == "s2") {
    const int64_t G = p.S / kS2GroupDivisor;
    return [=](auto& q, auto& k, auto& v) { return s2_attention(q, k, v, G); };
  }
  return [=](auto& q, auto& k, auto& v) { return attention(q, k, v, causal); };
}

// Why impl cannot run this problem here, or "" when it can.
std::string unavailable(const std::string& impl, const Problem& p, Device device) {
  // The CPU would run the flash tiles under cuDNN's name: nothing of cuDNN's to time.
  if (impl == "cudnn" && device.is_cpu()) return "n/a on cpu: cuDNN is GPU-only";
  if (impl.rfind("flash_v", 0) == 0 && (device.is_cpu() || (p.D != 64 && p.D != 128)))
    return "n/a: " + impl.substr(6) + " is a CUDA kernel for bf16 at head_dim 64 and 128";
  if (impl == "s2" && p.S % kS2GroupDivisor != 0) return "n/a: seq not a multiple of 4";
  if (p.docs > 1 && impl != "flash" && impl != "mem_efficient")  // eager: the check's reference
    return "n/a: packed documents train on flash or mem_efficient";
  if (p.S % p.docs != 0 || std::min(p.S, kValidateSeq) % p.docs != 0)
    return fmt::format("n/a: seq (and the check's) not a multiple of --docs {}", p.docs);
  if (impl == "eager" && 4.0 * p.B * p.H * p.S * p.S >= kEagerLimitBytes)
    return fmt::format("skipped: scores need {:.1f} GiB", 4.0 * p.B * p.H * p.S * p.S / (1 << 30));
  return "";
}

// The problem an implementation is checked on: the row's, or its first kValidateSeq tokens where
// eager's scores would not fit.
Problem checked_problem(const Problem& p, const std::string& impl) {
  Problem c = p;
  if (eager_bytes(pieces_for(impl, p), p) >= kEagerLimitBytes) c.S = std::min(p.S, kValidateSeq);
  return c;
}
Inputs prefix(const Inputs& in, int64_t S) {
  auto cut = [&](const Tensor& t) { return t.narrow(1, 0, S).contiguous(); };
  return {cut(in.q), cut(in.k), cut(in.v), cut(in.dout)};
}

struct Timing {
  double ms, peak_mib;
  Outputs outputs;  // of the last run
};

// Warm-up, then `repeats` timed runs; the median. Each run starts with cold caches (the backend
// evicts its L2) and is timed where it runs (CUDA events on a GPU), as kernel benchmarks do.
Timing time_impl(const AttnFn& fn, const Inputs& in, const Problem& p, int64_t repeats) {
  Tensor q = in.q.detach(), k = in.k.detach(), v = in.v.detach();
  for (Tensor* t : {&q, &k, &v}) t->set_requires_grad(p.backward);
  Backend& be = backend(q.device());
  Tensor out;
  auto zero_grads = [&] {
    for (Tensor* t : {&q, &k, &v}) t->zero_grad();
  };
  auto run = [&] {
    GradModeGuard grad(p.backward);
    out = fn(q, k, v);
    if (p.backward) backward(out, in.dout);
  };
  zero_grads();
  run();  // the allocator's cache filled before the peak is measured
  out = Tensor();
  zero_grads();  // each timed run starts without the gradients, so they count in its peak
  const size_t before = be.allocator().stats().in_use_bytes;
  be.allocator().reset_peak();
  const double ms = median_ms(be, run, repeats, zero_grads);
  const double peak = (be.allocator().stats().peak_bytes - before) / 1048576.0;
  return {ms, peak, {out.detach(), q.grad(), k.grad(), v.grad()}};
}

// Eager's outputs, by whether they are S2's and by seq.
using References = std::map<std::pair<bool, int64_t>, Outputs>;

// impl against eager at checked_problem's seq, before it is timed: its largest error, and a FAIL
// note when that is above the tolerance ("" when it passed).
struct Verdict {
  std::string err, fail;
};
Verdict check_impl(const std::string& impl, const Problem& p, const Inputs& in, DType dtype,
                   References& references) {
  const Problem vp = checked_problem(p, impl);
  const Inputs vin = prefix(in, vp.S);
  auto ref = references.find({impl == "s2", vp.S});
  if (ref == references.end())
    ref = references.emplace(std::make_pair(impl == "s2", vp.S),
                             eager_reference(vin, pieces_for(impl, vp), vp)).first;
  const Error e = max_error(time_impl(impl_fn(impl, vp, in.q.device()), vin, vp, 1).outputs, ref->second,
                            p.backward);
  Verdict v{fmt::format("{:.2e}", e.abs), ""};
  if (!(e.rel <= tolerance(dtype)))  // NaN fails too
    v.fail = fmt::format("FAIL: error {:.2e}, {:.1f}% of the reference's largest (seq {})", e.abs,
                         100 * e.rel, vp.S);
  return v;
}

}  // namespace

int bench_attention(int argc, char** argv) {
  const Device device = device_count(DeviceType::cuda) > 0 ? Device::cuda(0) : Device::cpu();
  BenchArgs args(argc, argv, 2,
                 {{"impl",
                   "flash,flash_simt,flash_v2,flash_v3,flash_v4,flash_v5,flash_v6,flash_v7,flash_v8,"
                   "mem_efficient,s2,cudnn,eager"},
                  {"seq", device.is_cpu() ? "256,1024" : "512,1024,2048,4096,8192,16384"},
                  {"head-dim", "64,128"}, {"causal", "0,1"}, {"pass", "fwd,fwd_bwd"},
                  {"batch", "1"}, {"heads", "16"}, {"kv-heads", "16"}, {"repeats", "5"},
                  {"docs", "1"}, {"json", ""}});
  const std::vector<std::string> impls = split_list(args.str("impl")),
                                 passes = split_list(args.str("pass"));
  for (const std::string& impl : impls)
    if (std::find(std::begin(kImpls), std::end(kImpls), impl) == std::end(kImpls))
      throw std::invalid_argument(
          "unknown --impl '" + impl +
          "' (flash, flash_simt, flash_v2, ..., flash_v8, mem_efficient, s2, cudnn, eager)");
  for (const std::string& pass : passes)
    if (pass != "fwd" && pass != "fwd_bwd")
      throw std::invalid_argument("unknown --pass '" + pass + "' (fwd, fwd_bwd)");
  const int64_t B = args.num("batch"), H = args.num("heads"), Hkv = args.num("kv-heads");
  const int64_t repeats = args.num("repeats"), docs = args.num("docs");
  if (B < 1 || Hkv < 1 || H % Hkv != 0 || repeats < 1 || docs < 1)
    throw std::invalid_argument("--heads must be a multiple of --kv-heads, and --batch, "
                                "--repeats and --docs at least 1");
  const DType dtype = device.is_cpu() ? DType::f32 : DType::bf16;
  const double peak_tflops = backend(device).peaks().bf16_tflops;  // %peak's denominator; 0 on the CPU
  const std::vector<int64_t> seqs = int_list(args, "seq", 1), dims = int_list(args, "head-dim", 1);
  const std::vector<int64_t> causals = int_list(args, "causal", 0);

  fmt::print("llm_bench attention: {} {}, batch {}, heads {}, kv heads {}, median of {}{}\n",
             device.str(), dtype_name(dtype), B, H, Hkv, repeats,
             docs > 1 ? fmt::format(", {} packed documents a row", docs) : "");
  fmt::print("{:<14} {:>6} {:>4} {:>6} {:<8} {:>10} {:>9} {:>6} {:>9} {:>9}\n", "impl", "seq", "d",
             "causal", "pass", "ms", "TFLOP/s", "%peak", "max_err", "peak_MiB");
  std::string json;
  std::mt19937 rng(1);
  for (int64_t S : seqs)
    for (int64_t D : dims)
      for (int64_t causal : causals)
        for (const std::string& pass : passes) {
          const Problem p{B, S, H, Hkv, D, causal != 0, pass == "fwd_bwd", docs};
          Inputs in{randn({B, S, H, D}, 0.5f, rng).to(device).to(dtype),
                    randn({B, S, Hkv, D}, 0.5f, rng).to(device).to(dtype),
                    randn({B, S, Hkv, D}, 1.0f, rng).to(device).to(dtype),
                    randn({B, S, H, D}, 1.0f, rng).to(device).to(dtype)};
          References references;
          for (const std::string& impl : impls) {
            if (impl == "s2" && !p.causal) continue;  // S2 is causal only
            const std::string row = fmt::format("{:<14} {:>6} {:>4} {:>6} {:<8}", impl, S, D,
                                                causal, pass);
            const std::string why = unavailable(impl, p, device);
            std::string entry = fmt::format(
                "{{\"impl\": \"{}\", \"seq\": {}, \"head_dim\": {}, \"causal\": {}, "
                "\"pass\": \"{}\", \"batch\": {}, \"heads\": {}, \"kv_heads\": {}, \"docs\": {}, ", impl,
                S, D, causal, pass, B, H, Hkv, docs);
            if (!why.empty()) {
              fmt::print("{} {}\n", row, why);
              json += (json.empty() ? "" : ",\n ") + entry + "\"note\": \"" + why + "\"}";
              continue;
            }
            // The check, then the timing; a variant this device cannot run says why.
            Timing t;
            std::string err = "-";  // eager is the reference
            try {
              KernelVariant variant(impl);
              if (impl != "eager") {
                const Verdict v = check_impl(impl, p, in, dtype, references);
                err = v.err;
                if (!v.fail.empty()) {
                  fmt::print("{} {}\n", row, v.fail);
                  json += (json.empty() ? "" : ",\n ") + entry + "\"note\": \"" + v.fail + "\"}";
                  continue;
                }
              }
              t = time_impl(impl_fn(impl, p, device), in, p, repeats);
            } catch (const std::exception& e) {
              fmt::print("{} n/a: {}\n", row, e.what());
              json += (json.empty() ? "" : ",\n ") + entry + "\"note\": \"n/a\"}";
              continue;
            }
            const double tflops = flops(p, impl) / (t.ms * 1e-3) / 1e12;
            const std::string of_peak =
                peak_tflops > 0 ? fmt::format("{:.2f}", 100 * tflops / peak_tflops) : "-";
            fmt::print("{} {:>10.3f} {:>9.4f} {:>6} {:>9} {:>9.1f}\n", row, t.ms, tflops, of_peak,
                       err, t.peak_mib);
            json += (json.empty() ? "" : ",\n ") + entry +
                    fmt::format("\"ms\": {:.4f}, \"tflops\": {:.5f}, \"max_abs_error\": {}, "
                                "\"peak_mib\": {:.2f}}}",
                                t.ms, tflops, err == "-" ? "null" : err, t.peak_mib);
          }
        }
  if (!args.str("json").empty()) {
    auto out = fmt::output_file(args.str("json"));
    out.print("{{\"device\": \"{}\", \"peak_tflops\": {}, \"rows\": [\n {}\n]}}\n", device.str(),
              peak_tflops, json);
  }
  return 0;
}

}  // namespace llm
