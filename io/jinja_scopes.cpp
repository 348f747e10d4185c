// defines: bind_frames
#include "io/jinja_scopes.h"

#include <set>

namespace llm::jinja {
namespace {

// One frame's symbols: the names it has a reference for (read, set or parameters), as
// idtracking's Symbols.refs, and those whose first reference was a set at the frame's own level.
struct Frame {
  const Frame* parent = nullptr;
  std::set<std::string> refs;
  std::vector<std::string> unbound;
  std::set<std::string> resolved;  // read before any frame around set them: looked up outward

  bool knows(const std::string& name) const {
    for (const Frame* f = this; f; f = f->parent)
      if (f->refs.count(name)) return true;
    return false;
  }
  void load(const std::string& name) {
    if (!knows(name)) refs.insert(name), resolved.insert(name);  // resolved outward when the frame starts
  }
  // In an if's branch a first set is resolved outward too (Symbols.branch_update).
  void store(const std::string& name, bool in_branch) {
    if (refs.count(name)) return;
    const bool outer = parent && parent->knows(name);
    refs.insert(name);
    if (!outer && !in_branch) unbound.push_back(name);
  }
};

void load_names(const Expr* e, Frame& frame) {
  if (!e) return;
  if (e->kind == Expr::Kind::name) frame.load(e->name);
  for (const ExprPtr& a : e->args) load_names(a.get(), frame);
  for (const auto& [key, value] : e->kwargs) load_names(value.get(), frame);
  load_names(e->star_args.get(), frame);
  load_names(e->star_kwargs.get(), frame);
}

// A frame whose analysis waits for its parent's: idtracking analyses a child frame when the
// compiler reaches it, after all of the parent.
struct ChildFrame {
  Body* body;
  std::vector<std::string>* unbound;
  std::vector<std::string> parameters;
  std::vector<const Expr*> parameter_defaults;
  Node* macro = nullptr;
};

// FrameSymbolVisitor over the nodes of one frame (if branches included, child frames queued).
void visit(Body& body, Frame& frame, int branch_depth, std::vector<ChildFrame>& children) {
  for (Node& node : body) {
    switch (node.kind) {
      case Node::Kind::output: load_names(node.expr.get(), frame); break;
      case Node::Kind::if_chain:
        load_names(node.branches[0].first.get(), frame);
        for (size_t i = 0; i < node.branches.size(); i++) {
          if (i > 0) load_names(node.branches[i].first.get(), frame);  // an elif's test is in a branch
          visit(node.branches[i].second, frame, branch_depth + 1, children);
        }
        visit(node.else_body, frame, branch_depth + 1, children);
        break;
      case Node::Kind::for_loop: {
        load_names(node.expr.get(), frame);  // the loop filter is a frame of its own that sets nothing
        std::vector<std::string> parameters = node.targets;
        parameters.push_back("loop");
        children.push_back({&node.body, &node.unbound, parameters, {}});
        children.push_back({&node.else_body, &node.else_unbound, {}, {}});
        break;
      }
      case Node::Kind::set:
        load_names(node.expr.get(), frame);
        if (!node.attribute.empty()) {
          frame.load(node.targets[0]);  // `set ns.x` reads ns
        } else {
          for (const std::string& target : node.targets) frame.store(target, branch_depth > 0);
        }
        break;
      case Node::Kind::set_block:
        frame.store(node.targets[0], branch_depth > 0);
        children.push_back({&node.body, &node.unbound, {}, {}});
        break;
      case Node::Kind::macro: {
        frame.store(node.name, branch_depth > 0);
        ChildFrame child{&node.body, &node.unbound, {}, {}, &node};
        for (const auto& [param, fallback] : node.params) {
          child.parameters.push_back(param);
          child.parameter_defaults.push_back(fallback.get());
        }
        children.push_back(child);
        break;
      }
      case Node::Kind::generation:  // transformers' CallBlock: its body is a caller's frame
        children.push_back({&node.body, &node.unbound, {}, {}});
        break;
      case Node::Kind::text: case Node::Kind::loop_break: case Node::Kind::loop_continue: break;
    }
  }
}

// Binds the frame and those inside it; returns the names they resolve outward.
std::set<std::string> bind(const ChildFrame& child, const Frame* parent) {
  Frame frame;
  frame.parent = parent;
  for (const std::string& p : child.parameters) frame.refs.insert(p);
  for (const Expr* fallback : child.parameter_defaults) load_names(fallback, frame);
  std::vector<ChildFrame> children;
  visit(*child.body, frame, 0, children);
  *child.unbound = frame.unbound;
  std::set<std::string> resolved = frame.resolved;
  for (const ChildFrame& grandchild : children) resolved.merge(bind(grandchild, &frame));
  if (child.macro) {  // jinja2's find_undeclared(body, ("varargs", "kwargs"))
    child.macro->catch_varargs = resolved.count("varargs") > 0;
    child.macro->catch_kwargs = resolved.count("kwargs") > 0;
  }
  return resolved;
}

}  // namespace

std::vector<std::string> bind_frames(Body& root) {
  std::vector<std::string> unbound;
  bind({&root, &unbound, {}, {}}, nullptr);
  return unbound;
}

}  // namespace llm::jinja
