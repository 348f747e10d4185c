// A Jinja template's syntax tree, as io/jinja_parse.cpp reads it: the statements chat templates
// use (if/elif/else, for with loop filters and else, set and set blocks, macros, break and
// continue, transformers' generation blocks) and jinja2's expression grammar.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/jinja_value.h"

namespace llm::jinja {

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

struct Expr {
  enum class Kind {
    literal,      // value
    name,         // name
    list,         // args: the items (a tuple when name is "tuple")
    dict,         // args: key, value, key, value, ...
    attribute,    // args[0].name
    subscript,    // args[0][args[1]]
    slice,        // args[0][args[1]:args[2]:args[3]], absent bounds null
    call,         // args[0](args[1..], kwargs)
    filter,       // args[0] | name(args[1..], kwargs)
    test,         // args[0] is [not: negated] name(args[1..])
    negate,       // -args[0]
    logical_not,  // not args[0]
    binary,       // args[0] name args[1]: + - * / // % ** ~ == != < <= > >= in, "not in"
    compare,      // args[0] operators[0] args[1] operators[1] ...: Python's chained comparison
    logical_and,
    logical_or,
    conditional,  // args[0] if args[1] else args[2] (null: undefined)
  };
  Kind kind;
  int line = 1;
  std::string name;
  Value value;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> operators;  // compare's, between args[i] and args[i + 1]
  ExprPtr star_args, star_kwargs;      // a call's *iterable and **mapping (jinja2's dyn_args, dyn_kwargs)
  bool negated = false;
  int depth = 1;  // of the tree below, this node included (the parser bounds it)
};

struct Node;
using Body = std::vector<Node>;

struct Node {
  enum class Kind {
    text,        // text
    output,      // {{ expr }}
    if_chain,    // branches: (condition, body); else_body
    for_loop,    // for targets in expr [if condition]: body; else_body
    set,         // set targets = expr, or set targets[0].attribute = expr
    set_block,   // set targets[0] %} body {% endset
    macro,       // macro name(params) body
    loop_break,
    loop_continue,
    generation,  // body as is (transformers' assistant-mask marker)
  };
  Kind kind;
  int line = 1;
  std::string text;
  ExprPtr expr, condition;
  std::vector<std::string> targets;
  std::string attribute;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro parameters, defaults or null
  // The names body's (else_body's) frame starts without: set there before anything reads them,
  // so jinja2's compiler binds them to the frame, unset until then (io/jinja_scopes.h).
  std::vector<std::string> unbound, else_unbound;
  // A macro whose body reads `varargs` (`kwargs`) takes extra positional (keyword) arguments there.
  bool catch_varargs = false, catch_kwargs = false;
};

// The template `source` as jinja2 reads it with trim_blocks and lstrip_blocks (as transformers'
// apply_chat_template does). Throws UserError "<where>: chat template line N: <what>" on syntax
// it does not read.
Body parse_template(const std::string& source, const std::string& where);

}  // namespace llm::jinja
