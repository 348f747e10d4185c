// defines: check_filters_and_tests
#include "io/jinja_compile_checks.h"

#include <set>

#include "io/jinja_lex.h"  // syntax_error

namespace llm::jinja {
namespace {

bool is_jinja2_filter(const std::string& name) {
  static const std::set<std::string> names{
      "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
      "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join",
      "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr", "replace",
      "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title",
      "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr"};
  return names.count(name) > 0;
}

bool is_jinja2_test(const std::string& name) {
  static const std::set<std::string> names{
      "odd", "even", "divisibleby", "defined", "undefined", "filter", "test", "none", "boolean", "false", "true",
      "integer", "float", "lower", "upper", "string", "mapping", "number", "sequence", "iterable", "callable",
      "sameas", "escaped", "in", "==", "eq", "equalto", "!=", "ne", ">", "gt", "greaterthan", ">=", "ge", "<", "lt",
      "lessthan", "<=", "le"};
  return names.count(name) > 0;
}

// `soft`: inside an if or a conditional of the frame being compiled (jinja2's frame.soft()).
void check(const Expr* e, bool soft, const std::string& where) {
  if (!e) return;
  soft = soft || e->kind == Expr::Kind::conditional;
  if (!soft && e->kind == Expr::Kind::filter && !is_jinja2_filter(e->name))
    syntax_error(where, e->line, "no filter named '" + e->name + "'");
  if (!soft && e->kind == Expr::Kind::test && !is_jinja2_test(e->name))
    syntax_error(where, e->line, "no test named '" + e->name + "'");
  for (const ExprPtr& a : e->args) check(a.get(), soft, where);
  for (const auto& [key, value] : e->kwargs) check(value.get(), soft, where);
  check(e->star_args.get(), soft, where);
  check(e->star_kwargs.get(), soft, where);
}

void check(const Body& body, bool soft, const std::string& where) {
  for (const Node& node : body) {
    switch (node.kind) {
      case Node::Kind::output: case Node::Kind::set: check(node.expr.get(), soft, where); break;
      case Node::Kind::if_chain:
        for (const auto& [condition, branch] : node.branches) {
          check(condition.get(), true, where);
          check(branch, true, where);
        }
        check(node.else_body, true, where);
        break;
      case Node::Kind::for_loop:  // its iterable in this frame; its filter, body and else in their own
        check(node.expr.get(), soft, where);
        check(node.condition.get(), false, where);
        check(node.body, false, where);
        check(node.else_body, false, where);
        break;
      case Node::Kind::macro:
        for (const auto& [param, fallback] : node.params) check(fallback.get(), false, where);
        check(node.body, false, where);
        break;
      case Node::Kind::set_block: case Node::Kind::generation: check(node.body, false, where); break;
      case Node::Kind::text: case Node::Kind::loop_break: case Node::Kind::loop_continue: break;
    }
  }
}

}  // namespace

void check_filters_and_tests(const Body& body, const std::string& where) { check(body, false, where); }

}  // namespace llm::jinja
