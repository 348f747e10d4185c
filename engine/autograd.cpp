// defines: Tape::run_backward, grad mode, record_node, backward, recompute
#include "engine/autograd.h"

#include <unordered_set>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

namespace {
thread_local Tape default_tape;
thread_local Tape* active_tape = &default_tape;
thread_local bool grad_mode = true;
thread_local LeafReadyHook leaf_ready_hook;
thread_local int backward_depth = 0;  // > 1 inside a recompute segment's own backward
// While a recompute segment runs its forward, the leaves its ops touch (see any_requires_grad).
thread_local std::vector<std::shared_ptr<AutogradMeta>>* segment_leaves = nullptr;

// For each leaf that needs a gradient: the index of the first (oldest) node that uses it. Walking
// the tape backwards, the leaf is complete once that node has run. Within one node the leaves keep
// the node's own order (never a hash of their addresses, which differ from process to process):
// data-parallel ranks must launch their gradient buckets in the same order, and a recompute node
// completes many leaves, of several buckets, at once.
std::vector<std::vector<AutogradMeta*>> leaves_completed_by_node(
    const std::vector<std::unique_ptr<Node>>& nodes) {
  std::unordered_set<AutogradMeta*> seen;
  std::vector<std::vector<AutogradMeta*>> completed(nodes.size());
  for (size_t i = 0; i < nodes.size(); i++) {
    auto first_use = [&](const std::shared_ptr<AutogradMeta>& meta) {
      if (seen.insert(meta.get()).second) completed[i].push_back(meta.get());
    };
    for (auto& meta : nodes[i]->inputs)
      if (meta && meta->is_leaf) first_use(meta);
    for (auto& meta : nodes[i]->inner_leaves) first_use(meta);
  }
  return completed;
}
}  // namespace

LeafReadyHookScope::LeafReadyHookScope(LeafReadyHook hook) : previous_(std::move(leaf_ready_hook)) {
  leaf_ready_hook = std::move(hook);
}
LeafReadyHookScope::~LeafReadyHookScope() { leaf_ready_hook = std::move(previous_); }

Tape& current_tape() { return *active_tape; }
TapeScope::TapeScope(Tape& tape) : previous_(active_tape) { active_tape = &tape; }
TapeScope::~TapeScope() { active_tape = previous_; }

bool grad_enabled() { return grad_mode; }
bool in_backward() { return backward_depth > 0; }
GradModeGuard::GradModeGuard(bool enabled) : previous_(grad_mode) { grad_mode = enabled; }
GradModeGuard::~GradModeGuard() { grad_mode = previous_; }

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (segment_leaves) {
    for (const Tensor& t : inputs)
      if (t.defined() && t.requires_grad() && t.autograd_meta()->is_leaf)
        segment_leaves->push_back(t.autograd_meta());
  }
  if (!grad_mode) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record_node(const char* name, const std::vector<Tensor>& inputs,
                 const std::vector<Tensor*>& outputs, BackwardFn backward) {
  auto node = std::make_unique<Node>();
  node->name = name;
  for (const Tensor& t : inputs) {
    node->inputs.push_back(t.defined() && t.requires_grad() ? t.autograd_meta() : nullptr);
    node->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
  }
  for (Tensor* out : outputs) {
    auto meta = std::make_shared<AutogradMeta>();
    meta->requires_grad = true;
    meta->is_leaf = false;
    out->set_autograd_meta(meta);
    node->outputs.push_back(meta);
    node->output_specs.push_back({out->shape(), out->dtype(), out->device()});
  }
  node->backward = std::move(backward);
  current_tape().record(std::move(node));
}

void record_hook(const char* name, std::function<void()> fn) {
  record_node(name, {}, {}, [fn = std::move(fn)](const Grads&) {
    fn();
    return Grads{};
  });
}

void accumulate_grad(AutogradMeta& meta, const Tensor& incoming) {
  // Widening is exact (bf16 to f32), and yields a fresh buffer that no other tensor sees. A
  // reference otherwise, not a copy: a copy would own the buffer too, and take it for shared.
  const Tensor widened = meta.grad_in_f32 && incoming.dtype() != DType::f32 ? incoming.to(DType::f32) : Tensor();
  const Tensor& grad = widened.defined() ? widened : incoming;
  if (!meta.grad.defined()) {
    // A leaf's buffer is accumulated into in place later, so it must not alias anything. A
    // parameter's gradient usually comes fresh from its op's backward, seen by no other tensor:
    // it is taken as it is, and only a shared one (a view of another gradient, a seed the caller
    // keeps) is copied.
    const bool take = !meta.is_leaf || (grad.sole_owner() && grad.is_contiguous());
    meta.grad = take ? grad : grad.clone();
    return;
  }
  LLM_CHECK(meta.grad.shape() == grad.shape(),
            "gradient " + grad.str() + " does not match " + meta.grad.str());
  // An intermediate's sum is made in place too when no other tensor sees its buffer (a residual
  // stream's gradient, once the branch that shared it is done): no new buffer, one pass less.
  if (meta.is_leaf || (meta.grad.sole_owner() && meta.grad.is_contiguous())) {
    backend(meta.grad.device()).axpby(1.0f, meta.grad, 1.0f, grad.contiguous(), meta.grad);
  } else {
    NoGradGuard no_grad;
    meta.grad = add(meta.grad, grad);
  }
}

Tensor grad_to_add_into(const AutogradMeta* meta, DType dtype) {
  if (!meta || !meta->grad.defined()) return Tensor();
  const Tensor& g = meta->grad;
  return g.dtype() == dtype && g.is_contiguous() && g.sole_owner() ? g : Tensor();
}

GradOutput grad_output(const AutogradMeta* meta, const Shape& shape, DType dtype, Device device) {
  Tensor into = grad_to_add_into(meta, dtype);
  if (into.defined()) return {into, true};
  return {Tensor::empty(shape, dtype, device), false};
}

void Tape::run_backward() {
  NoGradGuard no_grad;  // backward functions are not themselves recorded
  struct Depth {
    Depth() { backward_depth++; }
    ~Depth() { backward_depth--; }
  } depth;
  std::vector<std::vector<AutogradMeta*>> completed;
  if (leaf_ready_hook && backward_depth == 1) completed = leaves_completed_by_node(nodes_);
  while (!nodes_.empty()) {
    std::unique_ptr<Node> node = std::move(nodes_.back());
    nodes_.pop_back();
    bool any = false;
    Grads grad_outputs;
    for (auto& meta : node->outputs) {
      grad_outputs.push_back(meta->grad);
      any = any || meta->grad.defined();
    }
    if (any || node->outputs.empty()) {  // no outputs: a hook (record_hook), always run
      for (size_t i = 0; i < grad_outputs.size(); i++) {
        if (grad_outputs[i].defined()) continue;
        const TensorSpec& spec = node->output_specs[i];
        grad_outputs[i] = Tensor::zeros(spec.shape, spec.dtype, spec.device);
      }
      Grads grad_inputs = node->backward(grad_outputs);
      LLM_CHECK(grad_inputs.size() == node->inputs.size(),
                std::string(node->name) + " backward returned the wrong number of gradients");
      for (size_t i = 0; i < grad_inputs.size(); i++) {
        if (!node->inputs[i] || !grad_inputs[i].defined()) continue;
        LLM_CHECK(grad_inputs[i].shape() == node->input_shapes[i],
                  std::string(node->name) + " backward: gradient " + grad_inputs[i].str() +
                      " for an input of shape " + shape_str(node->input_shapes[i]));
        accumulate_grad(*node->inputs[i], grad_inputs[i]);
      }
    }
    for (auto& meta : node->outputs) meta->grad = Tensor();  // consumed
    if (!completed.empty())
      for (AutogradMeta* leaf : completed[nodes_.size()]) leaf_ready_hook(*leaf);
  }
}


bool Tape::produced(const AutogradMeta* meta) const {
  for (const auto& node : nodes_)
    for (const auto& out : node->outputs)
      if (out.get() == meta) return true;
  return false;
}

void backward(const Tensor& root, const Tensor& seed) {
  LLM_CHECK(root.requires_grad(), "backward of " + root.str() + " that does not require grad");
  // One backward runs the whole tape: a second graph recorded before it is consumed with it, and
  // its own backward would then find nothing and leave every gradient undefined, silently.
  LLM_CHECK(root.autograd_meta()->is_leaf || current_tape().produced(root.autograd_meta().get()),
            "backward of " + root.str() + " whose graph an earlier backward already consumed: "
            "run each backward before recording the next graph");
  Tensor grad = seed.defined() ? seed : Tensor::full(root.shape(), 1.0f, root.dtype(), root.device());
  LLM_CHECK(grad.shape() == root.shape(), "backward seed " + grad.str() + " for " + root.str());
  accumulate_grad(*root.autograd_meta(), grad);
  current_tape().run_backward();
}

std::vector<Tensor> recompute(const Segment& segment, const std::vector<Tensor>& inputs, bool offload) {
  std::vector<Tensor> detached;
  for (const Tensor& t : inputs) detached.push_back(t.detach());
  std::vector<Tensor> outputs;
  std::vector<std::shared_ptr<AutogradMeta>> leaves;
  {
    NoGradGuard no_grad;  // nothing inside is recorded, so its activations die as it goes
    auto* outer = segment_leaves;
    segment_leaves = &leaves;
    try {
      outputs = segment(detached);
    } catch (...) {
      segment_leaves = outer;
      throw;
    }
    segment_leaves = outer;
    if (outer) outer->insert(outer->end(), leaves.begin(), leaves.end());
  }
  if (!grad_enabled()) return outputs;
  std::vector<Tensor*> output_ptrs;
  for (Tensor& t : outputs) output_ptrs.push_back(&t);
  std::vector<bool> wants_grad;
  for (const Tensor& t : inputs) wants_grad.push_back(t.requires_grad());
  // What the re-run starts from: the inputs themselves, or their host copies and their devices.
  std::vector<Tensor> kept;
  std::vector<Device> devices;
  for (const Tensor& t : detached) {
    devices.push_back(t.defined() ? t.device() : Device::cpu());
    kept.push_back(offload && t.defined() && !t.device().is_cpu() ? t.to(Device::cpu()) : t);
  }
  record_node("recompute", inputs, output_ptrs, [segment, kept, devices, wants_grad](const Grads& grad_outputs) {
    Tape tape;
    TapeScope scope(tape);
    GradModeGuard grad_on(true);
    std::vector<Tensor> leaves;
    for (size_t i = 0; i < kept.size(); i++) {
      Tensor leaf = kept[i].defined() && kept[i].device() != devices[i] ? kept[i].to(devices[i]) : kept[i].detach();
      if (wants_grad[i]) leaf.set_requires_grad(true);
      leaves.push_back(leaf);
    }
    std::vector<Tensor> outputs = segment(leaves);
    LLM_CHECK(outputs.size() == grad_outputs.size(), "recompute: the segment's outputs changed");
    for (size_t i = 0; i < outputs.size(); i++)
      if (outputs[i].requires_grad()) accumulate_grad(*outputs[i].autograd_meta(), grad_outputs[i]);
    tape.run_backward();
    Grads grad_inputs;
    for (const Tensor& leaf : leaves) grad_inputs.push_back(leaf.grad());
    return grad_inputs;
  });
  current_tape().last_node().inner_leaves = std::move(leaves);
  return outputs;
}

}  // namespace llm
