// The backend interface: every op's kernels, per device. The CPU backend (engine/cpu/) is the
// reference and implements everything; the CUDA backend (cuda/) registers itself at start-up.
// Kernels receive contiguous tensors (the ops in engine/ops/ make them so) and allocated outputs.
#pragma once
#include <array>
#include <chrono>
#include <memory>
#include <string>

#include "engine/adamw_math.h"
#include "engine/adafactor_math.h"
#include "engine/came_math.h"
#include "engine/ademamix_math.h"
#include "engine/adopt_math.h"
#include "engine/lion_math.h"
#include "engine/schedule_free_math.h"
#include "engine/torch_optim_math.h"
#include "engine/torchao_adamw_math.h"
#include "engine/allocator.h"
#include "engine/fp8_math.h"
#include "engine/quant_weight.h"
#include "engine/tensor.h"

namespace llm {

// C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b] for b < batch, all row-major; op = transpose
// when the flag is set. Leading dimensions and batch strides are in elements; a batch stride of
// 0 broadcasts that operand.
struct GemmArgs {
  const void* a = nullptr;
  const void* b = nullptr;
  void* c = nullptr;
  DType dtype = DType::f32;    // of A and B; accumulation is always f32
  DType c_dtype = DType::f32;  // of C: dtype, or f32 with bf16 A and B (a weight's f32 gradient)
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  float alpha = 1.0f, beta = 0.0f;
};

// Tiled attention (flash_attention, s2_attention, mem_efficient_attention in engine/ops.h): every
// backend follows FlashAttention-2's tiling, so the CPU version tests the CUDA kernels' logic. A
// tile is kAttnBlockM query rows (one thread block's rows) by kAttnBlockN key columns.
constexpr int64_t kAttnBlockM = 64;
constexpr int64_t kAttnBlockN = 64;

// Which keys a query of the tiled attention sees; every field narrows the set.
struct AttentionMask {
  bool causal = false;
  // S2 group size G (0: none). Query heads h < H/2 see keys of their group [nG, nG + G); heads
  // h >= H/2 see keys of groups shifted by G/2: [0, G/2), [G/2, 3G/2), ..., [S - G/2, S).
  int64_t s2_group = 0;
  Tensor bias;     // f32 (B or 1, H or 1, S, S) added to the scaled scores, or undefined
  Tensor doc_ids;  // i32 (B, S), non-decreasing: keys of the query's own document; or undefined
};

class DeviceTimer {
 public:
  virtual ~DeviceTimer() = default;
  virtual void start() = 0;
  virtual double stop_ms() = 0;  // waits for the timed work; its milliseconds
};

// A factored running mean (Adafactor's and CAME's moments): a matrix's per row (R) and per column
// (C), or a vector's per element in `row` (col undefined).
struct FactoredMoment {
  Tensor row, col;
};

// A device's peaks, the roofline llm_bench measures kernels and MFU against; 0 where there is no
// stated peak (the CPU).
struct DevicePeaks {
  std::string device;             // e.g. "NVIDIA H100 80GB HBM3"
  double memory_gb_per_s = 0.0;   // from the memory clock and bus width
  double bf16_tflops = 0.0;       // dense
  bool bf16_from_spec = false;    // the vendor's figure for a known part, else an estimate
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual CachingAllocator& allocator() = 0;
  // Whether bf16 compute is worth using here (`bf16: auto`): sm_80 and newer. The CPU computes
  // in f32 only.
  virtual bool fast_bf16() const { return false; }
  // `tf32: true`: f32 GEMMs may round their inputs to TF32 on tensor cores (CUDA). Off by
  // default so f32 results match the CPU reference; a backend without TF32 ignores it.
  virtual void set_tf32(bool) {}
  // Bytes of memory the device can still give now; 0 where the system does not say. The start-up
  // memory check (train/preflight.h) compares the plan's peak with it. The CPU reads
  // /proc/meminfo (MemAvailable: free plus what the kernel can reclaim); CUDA asks cudaMemGetInfo
  // for its device, where blocks our caching allocator holds count as used.
  virtual uint64_t available_memory() = 0;
  virtual DevicePeaks peaks() const { return {name()}; }
  // What fixes the order of this device's sums, so that a resume can tell whether it continues
  // bit for bit: the GPU's model (cuBLAS picks its kernels, and their split of a sum, by it); the
  // CPU's thread count (each OpenMP thread sums its share of a reduction).
  virtual std::string arithmetic() const { return peaks().device; }

  // Memory movement.
  virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_strided(const Tensor& src, Tensor& dst) = 0;  // dst contiguous, same dtype
  virtual void synchronize() {}

  // Benchmarking (llm_bench). A timer measures the work queued between start() and stop_ms()
  // where it runs: CUDA events on the GPU's stream; the wall clock around a synchronize here.
  virtual std::unique_ptr<DeviceTimer> make_timer();
  // Evicts the inputs of the next timed run from the last-level cache, as a training step finds
  // them: the GPU writes a buffer twice its L2's size. The CPU does nothing: the tensors we time
  // there are far larger than its caches.
  virtual void flush_caches() {}
  // llm_bench step's split of a step by op, into OpTimer::totals() (seconds and calls per op name): here
  // each op's wall clock (OpTimer); CUDA the device time between consecutive ops' ends
  // (cuda/op_split.h). Turning it off waits for the device and adds what was recorded.
  virtual void set_op_split(bool on);

  // Elementwise and reductions.
  virtual void cast(const Tensor& src, Tensor& dst) = 0;  // same shape, dtypes differ
  virtual void fill(Tensor& dst, float value) = 0;
  virtual void axpby(float a, const Tensor& x, float b, const Tensor& y, Tensor& out) = 0;
  virtual void mul(const Tensor& x, const Tensor& y, Tensor& out) = 0;
  // x *= keep in place, keep u8 (0 or 1) of x's shape: sparse fine-tuning's masks (w * mask, as
  // torch multiplies by a bool mask: a kept NaN stays NaN, a dropped value becomes a signed 0).
  virtual void multiply_by_mask(Tensor& x, const Tensor& keep) = 0;
  virtual void scale(Tensor& x, float s) = 0;                    // in place
  // In place, x *= s / expected with s an f32 scalar (numel 1) on x's device: a factor the device
  // computed (an upstream gradient), applied without the host reading it. Where s equals
  // `expected` nothing is written: a gradient formed already scaled by the seed its caller said it
  // would give (linear_cross_entropy's grad_seed) costs no pass over it.
  virtual void scale_by(Tensor& x, const Tensor& s, float expected) = 0;
  virtual void sum(const Tensor& x, Tensor& out) = 0;            // out: f32[1]
  // acc += the sum of x^2 over every element of every x (contiguous), in f64 where acc (f32 (2),
  // the two words of one f64) lives, so that the host reads the total once (see
  // require_f64_accumulator). One call for all of them: a backend may finish the sum in one pass
  // (the global gradient norm sums every gradient of the model).
  virtual void add_sum_squares(const std::vector<Tensor>& xs, Tensor& acc) = 0;
  // Per-column scaling, DoRA's magnitude over weight norm (model/lora.h): out = x * s, x and out
  // (N, C) of one dtype, s f32 (C) broadcast over the rows. column_dot is s's gradient: out f32
  // (C) = the sum over rows of a * b, in a fixed order.
  virtual void scale_columns(const Tensor& x, const Tensor& s, Tensor& out) = 0;
  virtual void column_dot(const Tensor& a, const Tensor& b, Tensor& out) = 0;
  // Per-row scaling: out = x * s, x and out (N, C) of one dtype, s f32 (N) broadcast over the
  // columns (a per-sequence upstream gradient spread over its rows' logits; out may be x).
  virtual void scale_rows(const Tensor& x, const Tensor& s, Tensor& out) = 0;
  // out f32 (R) = 1 / ||w[r, :]||, w (R, C): the inverse L2 norm of every row.
  virtual void row_inverse_norms(const Tensor& w, Tensor& out) = 0;

  virtual void gemm(const GemmArgs& args) = 0;

  // One fused AdamW update (PyTorch's semantics: engine/adamw_math.h) of f32 param, m and v.
  virtual void adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                     const AdamWArgs& args) = 0;
  // StableAdamW's sum over a tensor of stable_adamw_ratio (engine/adamw_math.h) from its f32
  // gradient and second moment (before the update), added onto the f64 accumulator `acc`.
  virtual void add_stable_adamw_ratios(const Tensor& grad, const Tensor& v, const StableRmsArgs& args, Tensor& acc) = 0;
  // One fused ADOPT update (engine/adopt_math.h) of f32 param, m and v.
  virtual void adopt(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdoptArgs& args) = 0;
  // bitsandbytes' blockwise 8-bit AdamW: m and v are u8 codes into the signed and unsigned
  // dynamic maps (engine/quant_map.h) times an f32 absmax per kQuantBlock elements. Each block
  // is dequantised, updated in f32 as adamw does, and requantised against its new absmax.
  // param f32 (n), grad f32 or bf16 (n), codes u8 (n), absmax f32 (ceil(n / kQuantBlock)).
  virtual void adamw_8bit(Tensor& param, const Tensor& grad, Tensor& m_codes, Tensor& m_absmax,
                          Tensor& v_codes, Tensor& v_absmax, const AdamWArgs& args) = 0;
  // One torchao AdamW update (engine/torchao_adamw_math.h) of f32 param: m and v f32 (m_scale and
  // v_scale undefined), or codes as args.codes says (u8 codes of the signed and unsigned dynamic
  // maps; torchao_4bit_map's, two a byte; float8_e4m3fn bytes) with an f32 scale per kQuantBlock
  // elements, requantised as torchao's OptimState8bit, OptimState4bit or OptimStateFp8
  // (TorchaoBlockQuant, TorchaoFp8BlockQuant).
  virtual void torchao_adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& m_scale, Tensor& v,
                             Tensor& v_scale, const TorchaoAdamWArgs& args) = 0;
  // One torch.optim SGD, Adagrad or RMSprop update (engine/torch_optim_math.h) of f32 param; state
  // holds the f32 tensors (param's numel) torch_optim_element's s[0..2] name, nullptr where the
  // settings use none.
  virtual void torch_optim(Tensor& param, const Tensor& grad, const std::array<Tensor*, 3>& state,
                           const TorchOptimArgs& args) = 0;
  // bitsandbytes' 8-bit RMSprop (rmsprop_bnb_8bit): torch_optim's RMSprop update (args: no momentum,
  // not centered) with square_avg as signed blockwise 8-bit codes and an f32 absmax per kQuantBlock.
  virtual void rmsprop_8bit(Tensor& param, const Tensor& grad, Tensor& codes, Tensor& absmax,
                            const TorchOptimArgs& args) = 0;
  // One fused Lion update (engine/lion_math.h) of f32 param and m; lion_8bit keeps m as
  // adamw_8bit keeps its first moment (signed map, f32 absmax per kQuantBlock elements).
  virtual void lion(Tensor& param, const Tensor& grad, Tensor& m, const LionArgs& args) = 0;
  virtual void lion_8bit(Tensor& param, const Tensor& grad, Tensor& m_codes, Tensor& m_absmax,
                         const LionArgs& args) = 0;
  // One Schedule-Free update (engine/schedule_free_math.h) of f32 y (the parameter) and z, and v
  // when args.second_moment (else null); grad f32 (bf16 too on CUDA).
  virtual void schedule_free(Tensor& y, const Tensor& grad, Tensor& z, Tensor* v, const ScheduleFreeArgs& args) = 0;
  // a = torch's lerp(a, end, weight) (torch_lerp), f32: Schedule-Free's switch between y and x.
  virtual void lerp(Tensor& a, const Tensor& end, float weight) = 0;
  // One Adafactor update (engine/adafactor_math.h) of f32 param from grad (f32; bf16 on CUDA): a
  // matrix (R, C) keeps f32 running means per row (row, R) and per column (col, C); a vector per
  // element (row, n; col undefined).
  virtual void adafactor(Tensor& param, const Tensor& grad, Tensor& row, Tensor& col, const AdafactorArgs& args) = 0;
  // One CAME update (engine/came_math.h) of f32 param and m (n) from grad (f32; bf16 on CUDA):
  // `second` keeps the factored second moment as adafactor's row and col, `instability` the
  // factored instability of a matrix (undefined for a vector, which steps along m).
  virtual void came(Tensor& param, const Tensor& grad, Tensor& m, FactoredMoment& second, FactoredMoment& instability,
                    const CameArgs& args) = 0;
  // One fused AdEMAMix update (engine/ademamix_math.h) of f32 param and moments m1, m2, nu;
  // ademamix_8bit keeps each as adamw_8bit keeps its moments (m1 and m2 signed maps, nu unsigned).
  virtual void ademamix(Tensor& param, const Tensor& grad, Tensor& m1, Tensor& m2, Tensor& nu,
                        const AdemamixArgs& args) = 0;
  virtual void ademamix_8bit(Tensor& param, const Tensor& grad, Tensor& m1_codes, Tensor& m1_absmax, Tensor& m2_codes,
                             Tensor& m2_absmax, Tensor& nu_codes, Tensor& nu_absmax, const AdemamixArgs& args) = 0;

  // A weight in NF4 (engine/nf4.h) back in out's dtype (f32 or bf16), out shaped as w.shape:
  // each element's code value times its block's absmax (itself dequantised first when double
  // quantised), in f32 as bitsandbytes' dequantize_4bit.
  virtual void nf4_dequantize(const QuantWeight& w, Tensor& out) = 0;
  // A weight in LLM.int8's row-wise int8 (engine/int8.h) back in out's dtype, out shaped as
  // w.shape: code x its row's SCB x (1 / 127), in f32 as bitsandbytes' int8_vectorwise_dequant.
  virtual void int8_dequantize(const QuantWeight& w, Tensor& out) = 0;

  // Llama ops; shapes are documented in engine/ops.h.
  virtual void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) = 0;
  virtual void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) = 0;
  // table[index[i]] = rows[i] for each i (index i32 (n), distinct, in [0, V); rows (n, C) in the
  // table's dtype): the other rows are left as they are.
  virtual void set_rows(Tensor& table, const Tensor& index, const Tensor& rows) = 0;
  virtual void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y,
                               Tensor& rstd) = 0;
  virtual void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd,
                                const Tensor& dy, Tensor& dx, Tensor& dw) = 0;
  // A residual add and the rmsnorm after it in one pass: h = x + r, y = rmsnorm(h) * w (rstd
  // saved). Backward: dh = dh_in + rmsnorm's d(h) from dy (that part rounded to h's dtype first,
  // so the sum is bit for bit what autograd makes of the unfused ops), the whole gradient of x
  // (and of r), and dw; dh does not alias dh_in.
  virtual void add_rmsnorm_forward(const Tensor& x, const Tensor& r, const Tensor& w, float eps,
                                   Tensor& h, Tensor& y, Tensor& rstd) = 0;
  virtual void add_rmsnorm_backward(const Tensor& h, const Tensor& w, const Tensor& rstd,
                                    const Tensor& dy, const Tensor& dh_in, Tensor& dh,
                                    Tensor& dw) = 0;
  // Rotates x by angle position * inv_freq[i] (the inverse rotation when inverse is set).
  virtual void rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                    bool inverse, Tensor& y) = 0;
  // SSMax's per-query factor (Axolotl's scaling_softmax): out f32 = s * log(max(pos + 1, 2)) + b
  // for every i32 position, in f32 as torch computes it.
  virtual void ssmax_scale(const Tensor& positions, float s, float b, Tensor& out) = 0;
  virtual void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) = 0;
  virtual void swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dout,
                               Tensor& dgate, Tensor& dup) = 0;
  // out = x / (1 - p) where engine/counter_random.h keeps the element, else 0: dropout's forward
  // and, on the gradient with the same seed, its backward.
  virtual void dropout(const Tensor& x, float p, uint64_t seed, Tensor& out) = 0;
  // out = x + magnitude * (2 u - 1), u engine/counter_random.h's uniform01(seed, i): NEFTune's
  // uniform noise on the embeddings, the same on every backend.
  virtual void add_uniform_noise(const Tensor& x, float magnitude, uint64_t seed, Tensor& out) = 0;
  // Quantisation-aware training's fake quantisation (engine/fake_quantize_math.h, torchao's):
  // w (R, C), C a multiple of `group`, to int4 per group of a row; x (N, C) to int8 per row. Each
  // backward recomputes what it needs from the forward's input and writes the input's gradient.
  virtual void fake_quant_int4_forward(const Tensor& w, int64_t group, Tensor& out) = 0;
  virtual void fake_quant_int4_backward(const Tensor& w, const Tensor& dout, int64_t group, Tensor& dw) = 0;
  virtual void fake_quant_int8_forward(const Tensor& x, Tensor& out) = 0;
  virtual void fake_quant_int8_backward(const Tensor& x, const Tensor& dout, Tensor& dx) = 0;
  // x (N, C) to e4m3 per row, the row's scale from max(its largest magnitude, lower_bound); w (R,
  // C), C a multiple of `group`, to symmetric int4 per group.
  virtual void fake_quant_fp8_rows_forward(const Tensor& x, float lower_bound, Tensor& out) = 0;
  virtual void fake_quant_fp8_rows_backward(const Tensor& x, const Tensor& dout, float lower_bound, Tensor& dx) = 0;
  virtual void fake_quant_int4_symmetric_forward(const Tensor& w, int64_t group, Tensor& out) = 0;
  virtual void fake_quant_int4_symmetric_backward(const Tensor& w, const Tensor& dout, int64_t group, Tensor& dw) = 0;
  // x (..., C), C a multiple of 32, to mxfp4 per block of 32 along its rows (its gradient passes
  // straight through: no backward).
  virtual void fake_quant_mxfp4(const Tensor& x, Tensor& out) = 0;
  // Axolotl's ternary scheme, per row of x (..., C): weights to {-1, 0, 1} times the row's mean
  // magnitude, inputs to int8 times the row's largest over 127. straight_through: out = x + (q -
  // x), the value training computes with (the gradient passes straight through: no backward);
  // else q itself, the weights a finished run bakes in. int8_absmax is always the former.
  virtual void fake_quant_ternary(const Tensor& w, bool straight_through, Tensor& out) = 0;
  virtual void fake_quant_int8_absmax(const Tensor& x, Tensor& out) = 0;
  // fp8 training's cast (engine/fp8_math.h): x's values as the fp8 GEMM reads them, one scale
  // from the whole tensor's largest magnitude (computed on the device: no host read).
  virtual void fake_quant_fp8(const Tensor& x, Fp8Format format, Tensor& out) = 0;
  virtual void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                 Tensor& out, Tensor& probs) = 0;
  virtual void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& probs, const Tensor& dout, bool causal,
                                  Tensor& dq, Tensor& dk, Tensor& dv) = 0;
  // The head_dim the tiled kernels (flash, S2, memory-efficient) run a call of head_dim D at: D
  // where they take any, else a larger one the op pads to (engine/ops/attention_padding.h).
  virtual int64_t tiled_attention_head_dim(int64_t D) const { return D; }
  // Tiled attention. lse f32 (B, H, S): each query row's logsumexp of its scaled scores, +inf
  // for a row that sees no key (its output and gradients are 0). The backward recomputes the
  // probabilities from q, k and lse. flash reads mask.causal and mask.s2_group.
  virtual void flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const AttentionMask& mask, Tensor& out, Tensor& lse) = 0;
  virtual void flash_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const Tensor& out, const Tensor& lse, const Tensor& dout,
                                        const AttentionMask& mask, Tensor& dq, Tensor& dk,
                                        Tensor& dv) = 0;
  // cuDNN's fused attention (sdp_attention): the flash contract above, mask.causal only (see
  // require_cudnn_mask). CUDA runs cuDNN's graph, whose softmax "stats" (row max + log of the
  // row sum of exp) is this lse; a backend without cuDNN (the CPU) runs its flash kernels.
  virtual void cudnn_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const AttentionMask& mask, Tensor& out, Tensor& lse);
  virtual void cudnn_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const Tensor& out, const Tensor& lse, const Tensor& dout,
                                        const AttentionMask& mask, Tensor& dq, Tensor& dk,
                                        Tensor& dv);
  // Memory-efficient attention reads mask.causal, mask.bias and mask.doc_ids; dbias (the bias's
  // shape, summed over its broadcast dims) is written when defined.
  virtual void mem_efficient_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                               const AttentionMask& mask, Tensor& out,
                                               Tensor& lse) = 0;
  virtual void mem_efficient_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                const Tensor& out, const Tensor& lse,
                                                const Tensor& dout, const AttentionMask& mask,
                                                Tensor& dq, Tensor& dk, Tensor& dv,
                                                Tensor& dbias) = 0;
  virtual void cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                     int ignore_index, Tensor& loss, Tensor& lse) = 0;
  virtual void cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                      const Tensor& lse, const Tensor& dloss, int ignore_index,
                                      Tensor& dlogits) = 0;
  // EAFT's token weights (Axolotl's use_eaft), constants of the loss: weights f32 (N), row i's
  // H^alpha, H = -sum p log(p + 1e-10) over the softmax p of its k largest logits (1 <= k <=
  // kMaxEntropyTopK, k <= V); loss f32 () = sum over counted rows of weights[i] (lse[i] -
  // logits[i, target]) / their count (0 when none), lse from cross_entropy_forward.
  virtual void topk_entropy_weights(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                    int64_t k, float alpha, int ignore_index, Tensor& weights,
                                    Tensor& loss) = 0;
  // DFT's token weights (Dynamic Fine-Tuning, Axolotl's use_dft / enable_dft_loss), constants of
  // the loss: weights f32 (N), row i's probability of its target exp(logits[i, target] - lse[i])
  // (0 for an ignored row); loss f32 () = sum over counted rows of weights[i] (lse[i] -
  // logits[i, target]) / their count (0 when none), lse from cross_entropy_forward.
  virtual void target_prob_weights(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                   int ignore_index, Tensor& weights, Tensor& loss) = 0;
  // hits f32 (N): 1 where a row's target is its argmax (the first of equal largest logits, as
  // torch.argmax picks), else 0 (an ignored row too). Without gradient: an accuracy's count.
  virtual void argmax_hits(const Tensor& logits, const Tensor& targets, int ignore_index, Tensor& hits) = 0;
  // entropy and mean_logit f32 (N): row i's softmax entropy, lse[i] - sum_v softmax_v logits[i, v]
  // (lse from cross_entropy_forward; a logit of -inf adds nothing), and its mean logit. Without
  // gradient: TRL's logged entropy and logits/*.
  virtual void softmax_stats(const Tensor& logits, const Tensor& lse, Tensor& entropy, Tensor& mean_logit) = 0;
};
constexpr int64_t kMaxEntropyTopK = 64;  // a GPU thread keeps its k best in registers

// Throws unless s is an f32 scalar (scale_by's factor), or acc an f64 accumulator: f32 (2), the
// words of one f64 (the engine has no f64 dtype; add_sum_squares is its only user).
void require_scalar_factor(const char* op, const Tensor& s);
void require_f64_accumulator(const char* op, const Tensor& acc);

// Reads of device data by the host (Tensor::to_floats, to_ints, item, sum_squares' result). On a
// GPU each one waits until the device has run everything queued before it, so a training step
// should make as few as it can. Counted on every backend, the CPU included (where a read costs
// nothing), so that tests without a GPU can check how many a step makes. A HostRead spans one
// read: it counts it and adds the host's time inside it (on a GPU mostly the wait for the queue
// to drain) to host_read_seconds, so that a step's time less those seconds is the host's own work:
// when that is near the whole step, the host's launches pace the device, not its kernels.
class HostRead {
 public:
  HostRead();
  ~HostRead();
  HostRead(const HostRead&) = delete;
  HostRead& operator=(const HostRead&) = delete;

 private:
  std::chrono::steady_clock::time_point start_;
};
uint64_t host_reads();  // since the process started
double host_read_seconds();  // inside them, since the process started

// Throws unless cuDNN attention can run the mask (causal or not; no bias, documents or S2 groups),
// naming the op that can.
void require_cudnn_mask(const AttentionMask& mask);
// Throws unless codes (u8) and absmax (f32) are one blockwise quantised moment of `param` for `op`:
// a code of `code_bits` (8, or 4 packed two a byte) per element, an absmax per kQuantBlock of them.
void require_quantised_moment(const char* op, const Tensor& param, const Tensor& codes, const Tensor& absmax,
                              int code_bits = 8);

// Registry. The CPU backend is always there; another device type is there when its backend was
// linked in and found a device (device_count > 0).
using BackendFactory = std::unique_ptr<Backend> (*)(int device_index);
using DeviceCounter = int (*)();
void register_backend(DeviceType type, BackendFactory factory, DeviceCounter counter);
int device_count(DeviceType type);
Backend& backend(Device device);  // created on first use; throws if the device does not exist

}  // namespace llm
