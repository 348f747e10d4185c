// Reverse-mode autograd on a tape. Ops record one Node each during forward (when grad mode is on
// and an input requires grad); backward() walks the tape in reverse, hands each node the
// gradients of its outputs and accumulates what it returns into its inputs. Parameters (leaves)
// keep accumulating across micro-batches until zero_grad(); intermediate gradients are freed as
// soon as the node that consumes them has run, and each node (with the activations its backward
// saved) is freed right after it runs.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace llm {

struct AutogradMeta {
  bool requires_grad = false;
  bool is_leaf = true;  // false for tensors produced by a recorded op
  // A leaf whose own values are a bf16 compute copy (ZeRO's, engine/sharded_adamw.h) keeps its
  // gradient in f32: each incoming gradient is widened, then summed, as the cast from an f32
  // weight would have widened it, so accumulation (micro-batches, a tied embedding's two uses)
  // keeps the master's precision.
  bool grad_in_f32 = false;
  Tensor grad;
};

using Grads = std::vector<Tensor>;
// Receives one gradient per output (zeros where an output got none), returns one per input
// (undefined where an input needs none).
using BackwardFn = std::function<Grads(const Grads& grad_outputs)>;

struct TensorSpec {  // what a zero gradient for an output must look like
  Shape shape;
  DType dtype;
  Device device;
};

struct Node {
  const char* name = "";
  std::vector<std::shared_ptr<AutogradMeta>> inputs;  // null where that input needs no grad
  std::vector<Shape> input_shapes;
  std::vector<std::shared_ptr<AutogradMeta>> outputs;
  std::vector<TensorSpec> output_specs;
  // Parameters a recompute segment uses inside: they receive gradients when this node runs.
  std::vector<std::shared_ptr<AutogradMeta>> inner_leaves;
  BackwardFn backward;
};

class Tape {
 public:
  void record(std::unique_ptr<Node> node) { nodes_.push_back(std::move(node)); }
  void run_backward();  // consumes every node, newest first
  bool produced(const AutogradMeta* meta) const;  // whether a node still on the tape made it
  void clear() { nodes_.clear(); }
  size_t size() const { return nodes_.size(); }
  Node& last_node() { return *nodes_.back(); }

 private:
  std::vector<std::unique_ptr<Node>> nodes_;
};

// The tape ops record into: a per-thread default, or the one a TapeScope installs.
Tape& current_tape();
class TapeScope {
 public:
  explicit TapeScope(Tape& tape);
  ~TapeScope();

 private:
  Tape* previous_;
};

bool grad_enabled();
// Whether a backward pass is running (a recompute segment re-running its forward inside it).
bool in_backward();
class GradModeGuard {  // sets grad mode for a scope; NoGradGuard is the common case
 public:
  explicit GradModeGuard(bool enabled);
  ~GradModeGuard();

 private:
  bool previous_;
};
struct NoGradGuard : GradModeGuard {
  NoGradGuard() : GradModeGuard(false) {}
};

// For ops: whether to record, and the recording itself (gives each output a fresh meta).
bool any_requires_grad(const std::vector<Tensor>& inputs);
void record_node(const char* name, const std::vector<Tensor>& inputs,
                 const std::vector<Tensor*>& outputs, BackwardFn backward);
// A node with neither inputs nor outputs whose `fn` runs when backward reaches it: after the
// backward of every node recorded since, whether or not gradients flow past this point (ZeRO-3
// releases a unit of frozen weights there, recorded at the unit's start).
void record_hook(const char* name, std::function<void()> fn);

// Called during backward when a leaf's gradient is complete for this backward pass (the last
// node that uses it has run): the moment data-parallel training can start reducing it. Only the
// outermost tape reports; a recompute segment's leaves are reported when its node has run.
using LeafReadyHook = std::function<void(AutogradMeta& leaf)>;
class LeafReadyHookScope {
 public:
  explicit LeafReadyHookScope(LeafReadyHook hook);
  ~LeafReadyHookScope();

 private:
  LeafReadyHook previous_;
};

// Seeds root's gradient (ones unless given) and runs the current tape backward.
void backward(const Tensor& root, const Tensor& seed = Tensor());

void accumulate_grad(AutogradMeta& meta, const Tensor& grad);

// The gradient buffer of `meta`'s tensor when an op's backward may add its gradient for it there
// in place, as accumulate_grad would sum it: a gradient already there (a parameter's from an
// earlier micro-batch or a tied weight's other use; an activation's from another op that reads it,
// as q, k and v's projections read one normed input) of `dtype`, contiguous and seen by no other
// tensor. Undefined otherwise (also for a null meta). An op that adds in place returns no gradient
// for that input; it saves writing a fresh gradient and the pass that would sum it in.
Tensor grad_to_add_into(const AutogradMeta* meta, DType dtype);

// Where a GEMM in an op's backward writes its gradient for one input: the input's gradient so
// far when grad_to_add_into gives it (added with beta 1, and the op returns none for it), else a
// fresh buffer of `shape` (beta 0, returned).
struct GradOutput {
  Tensor buffer;
  bool adds = false;
  float beta() const { return adds ? 1.0f : 0.0f; }
  Tensor returned() const { return adds ? Tensor() : buffer; }
};
GradOutput grad_output(const AutogradMeta* meta, const Shape& shape, DType dtype, Device device);

// Runs `segment` without keeping its inner activations; records one node whose backward re-runs
// the segment with recording on and backprops through it. Parameters used inside the segment
// receive their gradients during that re-run. The segment must be deterministic. With
// `offload`, the inputs kept for the re-run wait in host memory (a GPU's copy is freed with the
// caller's) and return to their device when it comes (Axolotl's gradient_checkpointing: offload).
using Segment = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
std::vector<Tensor> recompute(const Segment& segment, const std::vector<Tensor>& inputs, bool offload = false);

}  // namespace llm
