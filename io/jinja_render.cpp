// defines: Template (parse and render), from_json
#include <algorithm>
#include <cmath>

#include "engine/user_error.h"
#include "io/jinja.h"
#include "io/jinja_builtins.h"
#include "io/jinja_format.h"
#include "io/jinja_methods.h"  // fail
#include "io/jinja_scopes.h"

namespace llm::jinja {
namespace {

using Kind = Value::Kind;

// a op b on int64 (op one of __builtin_{add,sub,mul}_overflow), or a TemplateError on overflow.
template <class Op>
int64_t checked(Op op, int64_t a, int64_t b) {
  int64_t result = 0;
  if (op(a, b, &result)) fail("integer overflow");
  return result;
}
bool add(int64_t a, int64_t b, int64_t* r) { return __builtin_add_overflow(a, b, r); }
bool subtract(int64_t a, int64_t b, int64_t* r) { return __builtin_sub_overflow(a, b, r); }
bool multiply(int64_t a, int64_t b, int64_t* r) { return __builtin_mul_overflow(a, b, r); }

// What one rendering may do, so that a template that never ends (or doubles a string in a loop)
// stops with a message instead of hanging or taking all memory.
constexpr int64_t kMaxSteps = 10'000'000;              // statements run
constexpr size_t kMaxStringBytes = size_t(64) << 20;   // one string value
constexpr size_t kMaxListItems = 1'000'000;              // one list value

Text concatenated(Text a, const Text& b) {
  a.append(b);
  if (a.size() > kMaxStringBytes) fail("a string longer than 64 MiB");
  return a;
}

bool is_int(const Value& v) { return v.kind == Kind::integer || v.kind == Kind::boolean; }
int64_t int_of(const Value& v) { return v.kind == Kind::integer ? v.integer : v.boolean; }

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (op == "%" && a.kind == Kind::string) {
    Text formatted = percent_format(a.text, b);
    if (formatted.size() > kMaxStringBytes) fail("a string longer than 64 MiB");
    return Value::from(std::move(formatted));
  }
  if (op == "+" && a.kind == Kind::string && b.kind == Kind::string) return Value::from(concatenated(a.text, b.text));
  if (op == "+" && a.kind == Kind::list && b.kind == Kind::list && a.is_tuple != b.is_tuple)
    fail(std::string("can only concatenate ") + (a.is_tuple ? "tuple (not \"list\") to tuple" : "list (not \"tuple\") to list"));
  if (op == "+" && a.kind == Kind::list && b.kind == Kind::list) {
    if (a.list->size() + b.list->size() > kMaxListItems) fail("a list longer than 1000000 items");
    ValueList items = *a.list;
    items.insert(items.end(), b.list->begin(), b.list->end());
    Value out = Value::from(items);
    out.is_tuple = a.is_tuple;
    return out;
  }
  if (op == "*" && is_int(a) && (b.kind == Kind::string || b.kind == Kind::list)) return arithmetic(op, b, a);
  if (op == "*" && (a.kind == Kind::string || a.kind == Kind::list) && is_int(b)) {
    const size_t size = a.kind == Kind::string ? a.text.size() : a.list->size();
    const size_t count = size == 0 ? 0 : size_t(std::max<int64_t>(int_of(b), 0));
    if (count > (a.kind == Kind::string ? kMaxStringBytes : kMaxListItems) / std::max<size_t>(size, 1))
      fail("a repetition longer than 64 MiB or 1000000 items");
    if (a.kind == Kind::list) {
      ValueList items;
      items.reserve(count * size);
      for (size_t i = 0; i < count; i++) items.insert(items.end(), a.list->begin(), a.list->end());
      Value out = Value::from(std::move(items));
      out.is_tuple = a.is_tuple;
      return out;
    }
    if (a.text.runs().size() == 1) {  // one source: the bytes repeated at once
      const Text::Run& run = a.text.runs()[0];
      std::string repeated;
      repeated.reserve(count * size);
      for (size_t i = 0; i < count; i++) repeated += run.text;
      return Value::from(Text(std::move(repeated), run.source));
    }
    Text out;
    for (size_t i = 0; i < count; i++) out.append(a.text);
    return Value::from(std::move(out));
  }
  if (!a.is_numeric() || !b.is_numeric())
    fail("unsupported operand types for " + op + ": " + a.type_name() + " and " + b.type_name());
  const double x = a.as_double(), y = b.as_double();
  if (is_int(a) && is_int(b) && op != "/") {
    const int64_t i = int_of(a), j = int_of(b);
    if (op == "+") return Value::from(checked(add, i, j));
    if (op == "-") return Value::from(checked(subtract, i, j));
    if (op == "*") return Value::from(checked(multiply, i, j));
    if (op == "**") {
      if (j < 0 && i == 0) fail("0.0 cannot be raised to a negative power");
      if (j < 0) return Value::from(std::pow(x, y));
      int64_t power = 1, base = i;  // by squaring: an overflow shows within 64 rounds
      for (int64_t e = j; e > 0; e >>= 1) {
        if (e & 1) power = checked(multiply, power, base);
        if (e > 1) base = checked(multiply, base, base);
      }
      return Value::from(power);
    }
    if (j == 0) fail("integer division or modulo by zero");
    if (i == INT64_MIN && j == -1) fail("integer overflow");
    int64_t q = i / j, m = i % j;
    if (m != 0 && ((m < 0) != (j < 0))) q--, m += j;  // Python floors
    return Value::from(op == "//" ? q : m);
  }
  if (op == "+") return Value::from(x + y);
  if (op == "-") return Value::from(x - y);
  if (op == "*") return Value::from(x * y);
  if (op == "**") {
    if (x == 0 && y < 0) fail("0.0 cannot be raised to a negative power");
    if (x < 0 && std::isfinite(y) && y != std::floor(y)) fail("a negative number to a fractional power is complex (not supported)");
    const double power = std::pow(x, y);
    if (std::isinf(power) && std::isfinite(x) && std::isfinite(y)) fail("(34, 'Numerical result out of range')");  // OverflowError
    return Value::from(power);
  }
  if (y == 0)
    fail(op == "/" ? (is_int(a) && is_int(b) ? "division by zero" : "float division by zero")
                   : op == "//" ? "float floor division by zero" : "float modulo");
  if (op == "/") return Value::from(x / y);
  // CPython's float divmod: fmod's remainder moved to the divisor's sign, the quotient from it.
  double mod = std::fmod(x, y);
  double div = (x - mod) / y;
  if (mod != 0) {
    if ((y < 0) != (mod < 0)) mod += y, div -= 1.0;
  } else {
    mod = std::copysign(0.0, y);
  }
  double floor_div = std::copysign(0.0, x / y);
  if (div != 0) {
    floor_div = std::floor(div);
    if (div - floor_div > 0.5) floor_div += 1.0;
  }
  return Value::from(op == "//" ? floor_div : mod);
}

class Renderer {
 public:
  enum class Flow { next, loop_break, loop_continue };

  // `unbound`: the template frame's names the variables passed in do not reach (io/jinja_scopes.h).
  Renderer(const std::string& where, const ValueDict& variables, const std::vector<std::string>& unbound)
      : where_(where) {
    scopes_.push_back(global_functions());
    for (const auto& [k, v] : variables) assign(k, v);
    unbind(unbound);
  }

  Flow run(const Body& body, Text& out) {
    for (const Node& node : body) {
      try {
        const Flow flow = run(node, out);
        if (flow != Flow::next) return flow;
      } catch (const TemplateError& e) {
        throw UserError(where_ + ": chat template line " + std::to_string(node.line) + ": " + e.what());
      }
    }
    return Flow::next;
  }

 private:
  Flow run(const Node& node, Text& out) {
    if (++steps_ > kMaxSteps) fail("more than 10000000 statements run (a template that never ends?)");
    switch (node.kind) {
      case Node::Kind::text: out.append(node.text, kTemplateSource); return Flow::next;
      case Node::Kind::output: out.append(eval(*node.expr).to_text()); return Flow::next;
      case Node::Kind::if_chain:
        for (const auto& [condition, body] : node.branches)
          if (eval(*condition).truthy()) return run(body, out);
        return run(node.else_body, out);
      case Node::Kind::for_loop: return run_for(node, out);
      case Node::Kind::set: {
        const Value v = eval(*node.expr);
        if (!node.attribute.empty()) {
          Value target = lookup(node.targets[0]);
          if (!target.is_namespace) fail("cannot set an attribute of a " + target.type_name() + " (only of a namespace)");
          set_member(target, node.attribute, v);
        } else {
          unpack(node.targets, v);
        }
        return Flow::next;
      }
      case Node::Kind::set_block: {
        Text captured;
        scopes_.emplace_back();  // the block's own sets stay inside it, as jinja2's
        unbind(node.unbound);
        run(node.body, captured);
        scopes_.pop_back();
        assign(node.targets[0], Value::from(captured));
        return Flow::next;
      }
      case Node::Kind::macro: {
        const Node* macro = &node;
        const size_t frames = scopes_.size();  // a closure: it reads the frames it was defined in
        assign(node.name, Value::from(Function([this, macro, frames](std::vector<Value>& args, Kwargs& kwargs) {
          return call_macro(*macro, frames, args, kwargs);
        })));
        return Flow::next;
      }
      case Node::Kind::loop_break: return Flow::loop_break;
      case Node::Kind::loop_continue: return Flow::loop_continue;
      case Node::Kind::generation: {  // a call block: its sets stay inside it
        scopes_.emplace_back();
        unbind(node.unbound);
        const Flow flow = run(node.body, out);
        scopes_.pop_back();
        return flow;
      }
    }
    return Flow::next;
  }

  static void set_member(Value& dict, const std::string& key, const Value& v) {
    for (auto& [k, existing] : *dict.dict)
      if (k == key) {
        existing = v;
        return;
      }
    dict.dict->emplace_back(key, v);
  }

  void unpack(const std::vector<std::string>& targets, const Value& v) {
    if (targets.size() == 1) return assign(targets[0], v);
    const ValueList items = iterate(v);
    if (items.size() != targets.size())
      fail("cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(targets.size()) + " names");
    for (size_t i = 0; i < targets.size(); i++) assign(targets[i], items[i]);
  }

  Flow run_for(const Node& node, Text& out) {
    ValueList items;
    for (const Value& item : iterate(eval(*node.expr))) {
      if (node.condition) {
        scopes_.emplace_back();
        unpack(node.targets, item);
        const bool keep = eval(*node.condition).truthy();
        scopes_.pop_back();
        if (!keep) continue;
      }
      items.push_back(item);
    }
    const int64_t n = int64_t(items.size());
    bool body_ran_to_its_end = false;  // else runs unless one iteration did (break and continue skip it)
    const auto last_changed = std::make_shared<Value>();  // loop.changed's memory, across iterations
    for (int64_t i = 0; i < n; i++) {
      scopes_.emplace_back();
      unbind(node.unbound);
      unpack(node.targets, items[size_t(i)]);
      ValueDict loop = {{"index", Value::from(i + 1)},       {"index0", Value::from(i)},
                        {"revindex", Value::from(n - i)},    {"revindex0", Value::from(n - i - 1)},
                        {"first", Value::from(i == 0)},      {"last", Value::from(i == n - 1)},
                        {"length", Value::from(n)}};
      if (i > 0) loop.emplace_back("previtem", items[size_t(i - 1)]);
      if (i + 1 < n) loop.emplace_back("nextitem", items[size_t(i + 1)]);
      loop.emplace_back("cycle", Value::from(Function([i](std::vector<Value>& args, Kwargs&) {
        if (args.empty()) fail("loop.cycle needs at least one item");
        return args[size_t(i) % args.size()];
      })));
      loop.emplace_back("changed", Value::from(Function([last_changed](std::vector<Value>& args, Kwargs&) {
        const Value now = Value::from(ValueList(args));  // true on the first call and on each new value
        const bool changed = !last_changed->is_defined() || !(*last_changed == now);
        *last_changed = now;
        return Value::from(changed);
      })));
      loop.emplace_back("depth", Value::from(int64_t(1)));  // no recursive loops: always the first level
      loop.emplace_back("depth0", Value::from(int64_t(0)));
      assign("loop", Value::from(std::move(loop)));
      const Flow flow = run(node.body, out);
      scopes_.pop_back();
      body_ran_to_its_end = body_ran_to_its_end || flow == Flow::next;
      if (flow == Flow::loop_break) break;
    }
    if (!body_ran_to_its_end && !node.else_body.empty()) {
      scopes_.emplace_back();
      unbind(node.else_unbound);
      const Flow flow = run(node.else_body, out);
      scopes_.pop_back();
      return flow;
    }
    return Flow::next;
  }

  // `frames`: how many scopes there were where the macro was defined (those still open are read).
  Value call_macro(const Node& macro, size_t frames, std::vector<Value>& args, Kwargs& kwargs) {
    if (depth_ >= 64) fail("macro calls nested deeper than 64");
    if (args.size() > macro.params.size() && !macro.catch_varargs)
      fail("macro '" + macro.name + "' takes not more than " + std::to_string(macro.params.size()) + " argument(s)");
    std::vector<ValueDict> saved(scopes_.begin(), scopes_.begin() + std::ptrdiff_t(std::min(frames, scopes_.size())));
    saved.emplace_back();
    std::swap(saved, scopes_);
    depth_++;
    Text out;
    try {
      unbind(macro.unbound);
      for (size_t i = 0; i < macro.params.size(); i++) {  // positionals, then keywords, then defaults
        const auto& [param, fallback] = macro.params[i];
        const auto keyword = std::find_if(kwargs.begin(), kwargs.end(), [&](const auto& kw) { return kw.first == param; });
        assign(param, i < args.size()         ? args[i]
                      : keyword != kwargs.end() ? keyword->second
                      : fallback                ? eval(*fallback)
                                                : Value::undefined(param));
      }
      ValueDict extra_kwargs;
      for (const auto& [k, value] : kwargs) {  // a keyword fills a parameter the positionals left
        const auto param = std::find_if(macro.params.begin(), macro.params.end(), [&](const auto& p) { return p.first == k; });
        if (param != macro.params.end() && size_t(param - macro.params.begin()) >= args.size()) continue;
        if (!macro.catch_kwargs) fail("macro '" + macro.name + "' takes no keyword argument '" + k + "'");
        extra_kwargs.emplace_back(k, value);
      }
      if (macro.catch_kwargs) assign("kwargs", Value::from(extra_kwargs));
      if (macro.catch_varargs) {
        Value extra = Value::from(ValueList(args.begin() + std::ptrdiff_t(std::min(args.size(), macro.params.size())), args.end()));
        extra.is_tuple = true;
        assign("varargs", extra);
      }
      run(macro.body, out);
    } catch (...) {
      depth_--;
      std::swap(saved, scopes_);
      throw;
    }
    depth_--;
    std::swap(saved, scopes_);  // the macro's own `set`s stay inside it
    return Value::from(out);
  }

  Value lookup(const std::string& name) const {
    for (auto scope = scopes_.rbegin(); scope != scopes_.rend(); ++scope)
      for (const auto& [k, v] : *scope)
        if (k == name) return v;
    return Value::undefined(name);
  }

  // The frame's names that are unset until it sets them: Undefined, hiding any outer value.
  void unbind(const std::vector<std::string>& names) {
    for (const std::string& name : names) assign(name, Value::undefined(name));
  }

  void assign(const std::string& name, Value v) {
    for (auto& [k, existing] : scopes_.back())
      if (k == name) {
        existing = std::move(v);
        return;
      }
    scopes_.back().emplace_back(name, std::move(v));
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::literal: return e.value;
      case Expr::Kind::name: return lookup(e.name);
      case Expr::Kind::list: {
        ValueList items;
        for (const ExprPtr& a : e.args) items.push_back(eval(*a));
        Value list = Value::from(items);
        list.is_tuple = e.name == "tuple";
        return list;
      }
      case Expr::Kind::dict: {
        Value d = Value::from(ValueDict());
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const Value key = eval(*e.args[i]);
          if (key.kind != Kind::string) fail("dict keys must be strings, got " + key.type_name());
          set_member(d, key.text.str(), eval(*e.args[i + 1]));
        }
        return d;
      }
      case Expr::Kind::attribute: return attribute_of(eval(*e.args[0]), e.name);
      case Expr::Kind::subscript: return item_of(eval(*e.args[0]), eval(*e.args[1]));
      case Expr::Kind::slice: {
        auto bound = [&](size_t i) { return e.args[i] ? eval(*e.args[i]) : Value::none(); };
        return slice_of(eval(*e.args[0]), bound(1), bound(2), bound(3));
      }
      case Expr::Kind::call: {
        const Value callee = eval(*e.args[0]);
        if (callee.kind == Kind::undefined) fail("'" + callee.name + "' is undefined");
        if (callee.kind != Kind::function) fail("a " + callee.type_name() + " is not callable");
        std::vector<Value> args;
        Kwargs kwargs;
        arguments(e, 1, args, kwargs);
        return (*callee.function)(args, kwargs);
      }
      case Expr::Kind::filter: {
        std::vector<Value> args;
        Kwargs kwargs;
        arguments(e, 1, args, kwargs);
        return apply_filter(e.name, eval(*e.args[0]), args, kwargs);
      }
      case Expr::Kind::test: {
        std::vector<Value> args;
        Kwargs kwargs;
        arguments(e, 1, args, kwargs);
        return Value::from(apply_test(e.name, eval(*e.args[0]), args) != e.negated);
      }
      case Expr::Kind::negate: {
        const Value v = eval(*e.args[0]);
        if (v.kind == Kind::number) return Value::from(-v.number);
        return arithmetic("-", Value::from(int64_t(0)), v);
      }
      case Expr::Kind::logical_not: return Value::from(!eval(*e.args[0]).truthy());
      case Expr::Kind::logical_and: {
        Value a = eval(*e.args[0]);
        return a.truthy() ? eval(*e.args[1]) : a;
      }
      case Expr::Kind::logical_or: {
        Value a = eval(*e.args[0]);
        return a.truthy() ? a : eval(*e.args[1]);
      }
      case Expr::Kind::conditional:
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value::undefined("the else of a conditional");
      case Expr::Kind::binary: return binary(e.name, eval(*e.args[0]), eval(*e.args[1]));
      case Expr::Kind::compare: {  // stops at the first comparison that is false
        Value left = eval(*e.args[0]);
        for (size_t i = 0; i < e.operators.size(); i++) {
          Value right = eval(*e.args[i + 1]);
          if (!binary(e.operators[i], left, right).truthy()) return Value::from(false);
          left = std::move(right);
        }
        return Value::from(true);
      }
    }
    return Value::undefined("");
  }

  // Python's f(*args, *star_args, **kwargs, **star_kwargs).
  void arguments(const Expr& e, size_t first, std::vector<Value>& args, Kwargs& kwargs) {
    for (size_t i = first; i < e.args.size(); i++) args.push_back(eval(*e.args[i]));
    if (e.star_args) {
      const Value items = eval(*e.star_args);
      if (!apply_test("iterable", items, {})) fail("argument after * must be an iterable, not " + items.type_name());
      for (const Value& item : iterate(items)) args.push_back(item);
    }
    for (const auto& [k, v] : e.kwargs) kwargs.emplace_back(k, eval(*v));
    if (e.star_kwargs) {
      const Value mapping = eval(*e.star_kwargs);
      if (mapping.kind != Kind::dict || mapping.is_namespace)
        fail("argument after ** must be a mapping, not " + mapping.type_name());
      for (const auto& [k, v] : *mapping.dict) {
        for (const auto& [given, value] : kwargs)
          if (given == k) fail("got multiple values for keyword argument '" + k + "'");
        kwargs.emplace_back(k, v);
      }
    }
  }

  static Value binary(const std::string& op, const Value& a, const Value& b) {
    if (op == "~") return Value::from(concatenated(a.to_text(), b.to_text()));
    if (op == "==") return Value::from(a == b);
    if (op == "!=") return Value::from(!(a == b));
    if (op == "in") return Value::from(contains(b, a));
    if (op == "not in") return Value::from(!contains(b, a));
    if (op == "<" || op == ">" || op == "<=" || op == ">=") return Value::from(ordered(op, a, b));
    const bool formats = op == "%" && a.kind == Kind::string;  // str % Undefined: its str() and repr() work
    if (a.kind == Kind::undefined || (b.kind == Kind::undefined && !formats))
      fail("'" + (a.kind == Kind::undefined ? a.name : b.name) + "' is undefined");
    return arithmetic(op, a, b);
  }

  const std::string& where_;
  std::vector<ValueDict> scopes_;  // the globals first, the innermost scope last
  int depth_ = 0;
  int64_t steps_ = 0;
};

}  // namespace

Template::Template(const std::string& source, std::string where)
    : body_(parse_template(source, where)), unbound_(bind_frames(body_)), where_(std::move(where)) {}

Text Template::render(const ValueDict& variables) const {
  Renderer renderer(where_, variables, unbound_);
  Text out;
  renderer.run(body_, out);
  return out;
}

Value from_json(const nlohmann::ordered_json& j, int source) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value::from(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::from(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return j.get<uint64_t>() <= uint64_t(INT64_MAX) ? Value::from(int64_t(j.get<uint64_t>())) : Value::from(j.get<double>());
    case nlohmann::json::value_t::number_float: return Value::from(j.get<double>());
    case nlohmann::json::value_t::string: return Value::from(Text(j.get<std::string>(), source));
    case nlohmann::json::value_t::array: {
      ValueList items;
      for (const auto& item : j) items.push_back(from_json(item, source));
      return Value::from(items);
    }
    case nlohmann::json::value_t::object: {
      ValueDict items;
      for (const auto& [k, v] : j.items()) items.emplace_back(k, from_json(v, source));
      return Value::from(items);
    }
    default: return Value::none();
  }
}

}  // namespace llm::jinja
