// The Optimizer interface (the trainer holds one and never asks which), AdamW with f32 or
// bitsandbytes-style 8-bit blockwise state, and global gradient-norm clipping. ZeRO-1's sharded
// AdamW is engine/sharded_adamw.h; the learning-rate schedules engine/lr_schedule.h.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/adamw_math.h"
#include "engine/autograd.h"
#include "engine/quant_map.h"
#include "engine/tensor.h"

namespace llm {

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0.0f;
  // AdamC (Defazio 2025, Axolotl's adamc): when > 0, an update at lr decays by weight_decay x
  // lr^2 / peak_lr instead of weight_decay x lr, peak_lr being the schedule's peak. A group
  // learning at lr_scale x lr has lr_scale x peak_lr for its peak, so the factor lr / peak_lr is
  // the same for every group.
  float peak_lr = 0.0f;
  // This config for an update at schedule lr `lr`: AdamC's factor folded into the decay.
  AdamWConfig at_lr(float lr) const;
};

struct OptimParam {
  std::string name;
  Tensor* param;      // updated in place
  bool decay = true;  // false for norm weights
  float lr_scale = 1.0f;  // its learning rate is lr x this (LoRA+'s B matrices)
  // f32 state even when the optimizer's is 8-bit: transformers' Trainer registers every
  // nn.Embedding's weight with bitsandbytes for 32-bit state.
  bool f32_state = false;
};

// Elements [begin, begin + count) (row-major, as a 1-D tensor) of a restored checkpoint's tensor
// of that name, which must have that shape and dtype (it throws otherwise): a sharded optimizer
// asks for its slices only, so a rank reads no more of a checkpoint than it keeps.
using StateLookup = std::function<Tensor(const std::string& name, const Shape& shape, DType dtype, int64_t begin,
                                         int64_t count)>;

// The optimizers are Adam's family: each keeps AdamWConfig's betas, eps and weight decay.
class Optimizer {
 public:
  explicit Optimizer(AdamWConfig config) : config_(config) {}
  virtual ~Optimizer() = default;
  // beta1 from the next update on: one_cycle cycles it between updates, as torch's OneCycleLR sets
  // its groups' betas (the bias correction then takes the new beta1, as torch's does). Muon's
  // defaults hold a momentum and no betas, so OneCycleLR cycles that instead.
  virtual void set_beta1(double beta1) { config_.beta1 = static_cast<float>(beta1); }
  // The global norm of the gradients before clipping. When max_norm > 0 and the norm exceeds it,
  // the gradients are scaled to max_norm first (as torch.nn.utils.clip_grad_norm_; AdamW scales
  // them inside its update and leaves the stored gradients as they were); then, when
  // `update` is set and the norm is finite, one update at `lr` (params without a gradient are
  // skipped). Collective when the optimizer is sharded.
  virtual double step(float lr, double max_norm = 0.0, bool update = true) = 0;
  // Whether it updates each parameter in backward, as soon as its gradient is complete
  // (transformers' layer-wise GaLore, LOMO), rather than in step(). Such an optimizer hands the
  // hook that does so for one backward pass at `lr` (pass_updates: the trainer installs one for
  // each pass), which drops each gradient it has used; its step() then only returns the norm of
  // the gradients the step's updates used (nothing is clipped: no gradient is left to clip).
  virtual bool updates_in_backward() const { return false; }
  virtual LeafReadyHook pass_updates(float /*lr*/) { return {}; }
  // This rank's optimizer state in bytes, and what it would be unsharded.
  virtual size_t state_bytes() const = 0;
  virtual size_t unsharded_state_bytes() const = 0;
  virtual std::string describe() const = 0;  // for the start-up summary
  // What its saved state is, the same however it is sharded ("AdamW", "Lion 8-bit, blocks of
  // 256"): checkpoints name it, and a resume with another refuses (their tensors can share names).
  virtual std::string state_format() const = 0;
  // The whole state's tensors by name ("<param>.exp_avg", "<param>.exp_avg_sq"; 8-bit state as
  // "<param>.exp_avg.codes" and "<param>.exp_avg.absmax", ...), in the order a checkpoint lists
  // them, so it can lay out its file before a byte of the state is gathered.
  virtual std::vector<TensorEntry> state_table() const = 0;
  // Each tensor of state_table() to `put`, once, in any order, so a checkpoint can save it
  // exactly. Sharded:
  // collective; gathered one bucket's moment at a time, and only rank 0 (which writes
  // checkpoints) gets them, so a save holds one gathered bucket, never the whole state.
  virtual void export_state(const TensorSink& put) = 0;
  // Takes the state back from whole per-parameter tensors (asking for this rank's parts when
  // sharded). By default each tensor export_state hands out is filled in place: right for an
  // optimizer whose state tensors are its own, whole (AdamW, ADOPT).
  virtual void import_state(const StateLookup& find);

  // Schedule-Free's weights are one point while training and another while evaluating: the
  // trainer says which comes next, as transformers' Trainer calls optimizer.train() before each
  // training step and optimizer.eval() before an evaluation. The others have one point.
  virtual void set_training(bool /*training*/) {}
  // Scalars of its state beyond the step count (metadata key -> text), which a checkpoint keeps
  // beside its tensors; restore_scalar_state takes them back and throws std::runtime_error
  // naming the key when one is missing or malformed.
  virtual std::map<std::string, std::string> scalar_state() const { return {}; }
  virtual void restore_scalar_state(const std::map<std::string, std::string>& /*metadata*/) {}

  int64_t steps_taken() const { return t_; }
  void set_steps_taken(int64_t t) { t_ = t; }
  // Per parameter, the updates it missed for want of a gradient (LISA's frozen layers), in the
  // order it was given its parameters; empty when none missed any. Its own count of updates is
  // steps_taken() minus that, as torch's per-parameter step counts. Kept by the optimizers whose
  // update depends on that count (AdamW, Adafactor, AdEMAMix); the others take an empty list only.
  std::vector<int64_t> missed_updates() const;
  void set_missed_updates(const std::vector<int64_t>& missed);

 protected:
  AdamWConfig config_;
  int64_t t_ = 0;  // updates done: the bias corrections' exponent
  // One count per parameter when the optimizer keeps them (sized by its constructor), else empty.
  std::vector<int64_t> missed_;

  // The frame of an unsharded step: the global norm (returned); when `update` and it is finite,
  // t_ advances and each(i, param, grad, clip) runs for every parameter with a gradient, clip
  // being clipping's factor (a parameter without one counts a missed update where counts are kept).
  template <class Each>
  double each_update(const std::vector<OptimParam>& params, double max_norm, bool update, Each each);

  // For an optimizer that updates in backward (pass_updates): the hook of one pass over `params`.
  // For each leaf whose gradient completes, its squared norm is added to the step's, update(i,
  // param, grad) runs when that is finite (a non-finite gradient leaves its parameter as it was),
  // and the gradient is dropped. Reading each norm waits for the device once a parameter: the price
  // of the non-finite check, in modes chosen to save memory rather than time.
  using ParamUpdate = std::function<void(size_t i, Tensor& param, const Tensor& grad)>;
  LeafReadyHook updates_as_gradients_complete(const std::vector<OptimParam>& params, ParamUpdate update);
  // The norm of the gradients those hooks used since the last call (what step() returns), which
  // starts the next step's afresh.
  double take_backward_norm();

 private:
  double backward_squares_ = 0.0;
};

// PyTorch's AdamW constants for update number t (1-based) of a parameter with or without decay.
AdamWArgs adamw_args(const AdamWConfig& config, float lr, int64_t t, bool decay);

// How AdamW keeps m and v. blockwise_8bit is bitsandbytes' 8-bit optimizer (Backend::adamw_8bit):
// u8 codes plus an f32 absmax per 256 elements, about a quarter of f32's bytes; as bitsandbytes'
// min_8bit_size, tensors under kMin8bitSize elements (norm weights) keep f32 moments.
enum class AdamWState { f32, blockwise_8bit };
constexpr int64_t kMin8bitSize = 4096;

// What quantised moments' codes start as (their absmax 0): bitsandbytes' code of 0 in its map
// (zero_codes), or byte 0 as torchao's zeros() (whatever map the codes index: an fp8 code's NaN
// byte would stay NaN times 0).
enum class QuantZeros { map_zero, byte_0 };

// The moments of one parameter (AdamW) or of one run of a ZeRO slice (ShardedAdamW): m and v in
// `dtype` (f32; bf16 beside a bf16 parameter, as torch keeps a bf16 model's state), or codes of
// `code_bits` (8: u8 codes; 4: torchao's AdamW4bit, two a byte) with an absmax per kQuantBlock
// elements counted from the first one.
struct AdamWMoments {
  AdamWMoments(const Shape& shape, bool quantised, Device device, DType dtype = DType::f32, int code_bits = 8,
               QuantZeros zeros = QuantZeros::map_zero);
  Tensor m, v;                // f32, bf16 or u8, `shape` (4-bit codes: numel / 2)
  Tensor m_absmax, v_absmax;  // f32 (ceil(numel / kQuantBlock)) when quantised, else undefined
  int code_bits;
  bool quantised() const { return m_absmax.defined(); }
  size_t bytes() const;
  // One AdamW update of `param` (same numel as the moments) from `grad`.
  void update(Tensor& param, const Tensor& grad, const AdamWArgs& args);
  // Its tensors to `put` under moment_table's names for parameter `param` of `shape`.
  void export_to(const TensorSink& put, const std::string& param, const Shape& shape) const;
};
// "AdamW", or "AdamW 8-bit (...)" saying how its state is kept, or AdamC's decay: for start-up
// summaries.
std::string adamw_name(AdamWState state, const AdamWConfig& config);
// `name`, or "<name> 8-bit, blocks of <kQuantBlock>" under blockwise_8bit: a state_format.
std::string state_format_of(const std::string& name, AdamWState state);
// Whether a parameter keeps 8-bit moments under `state`.
inline bool quantises(AdamWState state, const OptimParam& p) {
  return state == AdamWState::blockwise_8bit && p.param->numel() >= kMin8bitSize && !p.f32_state;
}
// Quantisation blocks of a parameter of `n` elements: its 8-bit moments' absmax count.
inline int64_t blocks_of(int64_t n) { return (n + kQuantBlock - 1) / kQuantBlock; }
// The tensors one moment of a parameter is saved as: `name` (`dtype`, the parameter's shape), or
// when quantised its codes "<name>.codes" (u8: the parameter's shape, or numel / 2 of 4-bit codes)
// and absmax "<name>.absmax" (f32, one per kQuantBlock elements). Appended to `out`.
void add_moment_entries(std::vector<TensorEntry>& out, const std::string& name, const Shape& shape, bool quantised,
                        DType dtype = DType::f32, int code_bits = 8);
// A quantised moment's codes before its first update: the code of 0 in its map (absmax 0 makes
// any code 0, but a checkpoint reads cleaner).
Tensor zero_codes(const Shape& shape, bool is_signed, Device device);
// "<name> 8-bit (bitsandbytes blockwise: ...)" saying how `state` (its moments, in words) is kept.
std::string blockwise_8bit_description(const std::string& name, const std::string& state);

// One f32 moment of a parameter (Lion's, AdEMAMix's), or its 8-bit codes and block absmax.
struct Moment {
  Moment(const Shape& shape, bool quantised, bool is_signed, Device device);
  Tensor values, absmax;  // absmax defined when values holds 8-bit codes
  bool quantised() const { return absmax.defined(); }
  size_t bytes() const { return values.nbytes() + (quantised() ? absmax.nbytes() : 0); }
  // Its tensors to `put` under add_moment_entries' names for `name`.
  void export_to(const TensorSink& put, const std::string& name) const;
};
// The tensors one parameter's moments are saved as, in state_table's order: exp_avg and
// exp_avg_sq (`dtype`, the parameter's shape), or when quantised the codes (u8, of `code_bits`)
// and absmax (f32, one per kQuantBlock elements) of each.
std::vector<TensorEntry> moment_table(const std::string& param, const Shape& shape, bool quantised,
                                      DType dtype = DType::f32, int code_bits = 8);

// Every parameter's moments on its own device: world size 1, or data parallel without ZeRO. A
// bf16 parameter (`bfloat16: true`: no f32 master) keeps bf16 moments and its gradient in f32;
// each element is updated in f32 and rounded back, as torch's fused AdamW on a bf16 model.
class AdamW final : public Optimizer {
 public:
  AdamW(std::vector<OptimParam> params, AdamWConfig config, AdamWState state = AdamWState::f32);
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override;
  std::string state_format() const override;
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

 private:
  std::vector<OptimParam> params_;
  // A parameter without a gradient is left as it is (no decay, moments kept; missed_ counts it)
  // and its bias corrections count only its own updates.
  std::vector<AdamWMoments> moments_;
  AdamWState state_;
};

// sqrt(sum of squares) over every gradient; when max_norm > 0 and the norm exceeds it, scales
// all gradients by max_norm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_. Returns the norm
// before clipping (non-finite when some gradient is).
double clip_grad_norm(const std::vector<Tensor*>& params, double max_norm);
// Its two halves: the norm (one host read for all gradients), and the factor it scales by (1
// when it does not clip). AdamW hands the factor to its update (AdamWArgs::grad_scale).
double global_grad_norm(const std::vector<Tensor*>& params);
double global_grad_norm(const std::vector<OptimParam>& params);
float clip_coefficient(double norm, double max_norm);

template <class Each>
double Optimizer::each_update(const std::vector<OptimParam>& params, double max_norm, bool update, Each each) {
  const double norm = global_grad_norm(params);
  if (!update || !std::isfinite(norm)) return norm;
  const float clip = clip_coefficient(norm, max_norm);
  t_++;
  for (size_t i = 0; i < params.size(); i++) {
    Tensor grad = params[i].param->grad();
    if (grad.defined()) each(i, *params[i].param, grad, clip);
    else if (!missed_.empty()) missed_[i]++;
  }
  return norm;
}

}  // namespace llm
