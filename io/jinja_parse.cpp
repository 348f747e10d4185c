// defines: parse_template (jinja2's expression grammar and the statements of io/jinja_syntax.h
// over io/jinja_lex.h's segments)
#include <algorithm>
#include <optional>
#include <string>

#include "io/jinja_compile_checks.h"
#include "io/jinja_lex.h"
#include "io/jinja_syntax.h"

namespace llm::jinja {

// How deep expressions and blocks may nest: the parser, the renderer and the trees' destructors
// recurse once a level, so a template of a few KB nested thousands deep would overflow the stack.
// jinja2's own recursive parser stops near Python's recursion limit, well before a real template.
constexpr int kMaxNesting = 100;
// A chain of operators or filters (`a ~ b ~ c ...`) deepens the tree, not the parser's recursion.
constexpr int kMaxExprDepth = 1000;

// The expression and statement grammar over one tag's tokens.
class TagParser {
 public:
  TagParser(const std::string& code, const std::string& where, int line)
      : tokens_(tokenize(code, where, line)), where_(where), line_(line) {}

  const Token& peek(size_t ahead = 0) const { return tokens_[std::min(at_ + ahead, tokens_.size() - 1)]; }
  bool at_end() const { return peek().kind == Token::Kind::end; }
  bool is_op(const char* op) const { return peek().kind == Token::Kind::op && peek().text == op; }
  bool is_name(const char* name) const { return peek().kind == Token::Kind::name && peek().text == name; }
  bool accept_op(const char* op) { return is_op(op) ? (at_++, true) : false; }
  bool accept_name(const char* name) { return is_name(name) ? (at_++, true) : false; }
  [[noreturn]] void fail(const std::string& what) const { syntax_error(where_, line_, what); }
  void expect_op(const char* op) {
    if (!accept_op(op)) fail(std::string("expected '") + op + "', got " + describe());
  }
  std::string expect_name() {
    if (peek().kind != Token::Kind::name) fail("expected a name, got " + describe());
    return tokens_[at_++].text;
  }
  void expect_end() {
    if (!at_end()) fail("unexpected " + describe());
  }
  std::string describe() const { return at_end() ? "the end of the tag" : "'" + peek().text + "'"; }

  ExprPtr expression() {  // jinja2's parse_expression: a conditional
    const Nested nested(*this);
    ExprPtr e = logical_or();
    while (accept_name("if")) {
      ExprPtr condition = logical_or();
      ExprPtr otherwise = accept_name("else") ? expression() : nullptr;
      e = make(Expr::Kind::conditional, "", {e, condition, otherwise});
    }
    return e;
  }
  ExprPtr logical_or() {  // without the conditional: if's condition, for's iterable
    ExprPtr e = logical_and();
    while (accept_name("or")) e = make(Expr::Kind::logical_or, "", {e, logical_and()});
    return e;
  }

 private:
  // One level of the parser's recursion, refused past kMaxNesting.
  struct Nested {
    explicit Nested(TagParser& p) : parser(p) {
      if (++parser.nesting_ > kMaxNesting) parser.fail("expressions nested deeper than " + std::to_string(kMaxNesting));
    }
    ~Nested() { parser.nesting_--; }
    TagParser& parser;
  };

  ExprPtr make(Expr::Kind kind, std::string name, std::vector<ExprPtr> args) const {
    auto e = std::make_shared<Expr>();
    e->kind = kind;
    e->line = line_;
    e->name = std::move(name);
    e->args = std::move(args);
    measure(*e);
    return e;
  }
  // The node's depth from its arguments, again once a call's, filter's or test's are attached.
  // A chain of operators or filters builds depth without recursing here: `1 + 1 + ...`.
  void measure(Expr& e) const {
    for (const ExprPtr& arg : e.args)
      if (arg) e.depth = std::max(e.depth, arg->depth + 1);
    for (const auto& [key, arg] : e.kwargs)
      if (arg) e.depth = std::max(e.depth, arg->depth + 1);
    for (const ExprPtr& arg : {e.star_args, e.star_kwargs})
      if (arg) e.depth = std::max(e.depth, arg->depth + 1);
    if (e.depth > kMaxExprDepth) fail("an expression deeper than " + std::to_string(kMaxExprDepth) + " operations");
  }
  ExprPtr logical_and() {
    ExprPtr e = logical_not();
    while (accept_name("and")) e = make(Expr::Kind::logical_and, "", {e, logical_not()});
    return e;
  }
  ExprPtr logical_not() {
    if (accept_name("not")) {
      const Nested nested(*this);
      return make(Expr::Kind::logical_not, "", {logical_not()});
    }
    return compare();
  }
  // `a < b < c` is Python's `a < b and b < c`, b evaluated once: one compare node for the chain.
  ExprPtr compare() {
    std::vector<ExprPtr> operands{math1()};
    std::vector<std::string> operators;
    for (;;) {
      std::string op;
      for (const char* o : {"==", "!=", "<", "<=", ">", ">="})
        if (is_op(o)) op = o;
      if (!op.empty()) at_++;
      else if (accept_name("in")) op = "in";
      else if (is_name("not") && peek(1).kind == Token::Kind::name && peek(1).text == "in") op = "not in", at_ += 2;
      else break;
      operators.push_back(op);
      operands.push_back(math1());
    }
    if (operators.empty()) return operands[0];
    if (operators.size() == 1) return make(Expr::Kind::binary, operators[0], operands);
    auto chain = std::const_pointer_cast<Expr>(make(Expr::Kind::compare, "", operands));
    chain->operators = operators;
    return chain;
  }
  ExprPtr math1() {
    ExprPtr e = concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = tokens_[at_++].text;
      e = make(Expr::Kind::binary, op, {e, concat()});
    }
    return e;
  }
  ExprPtr concat() {
    ExprPtr e = math2();
    while (accept_op("~")) e = make(Expr::Kind::binary, "~", {e, math2()});
    return e;
  }
  ExprPtr math2() {
    ExprPtr e = power();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = tokens_[at_++].text;
      e = make(Expr::Kind::binary, op, {e, power()});
    }
    return e;
  }
  ExprPtr power() {
    ExprPtr e = unary(true);
    while (accept_op("**")) e = make(Expr::Kind::binary, "**", {e, unary(true)});
    return e;
  }
  ExprPtr unary(bool with_filter) {
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Nested nested(*this);
      e = accept_op("-") ? make(Expr::Kind::negate, "", {unary(false)}) : (at_++, unary(false));
    } else {
      e = primary();
    }
    e = postfix(e);
    return with_filter ? filters_and_tests(e) : e;
  }
  ExprPtr primary() {
    const Token& t = peek();
    if (t.kind == Token::Kind::string) {
      std::string s;
      while (peek().kind == Token::Kind::string) s += tokens_[at_++].value.text.str();
      auto e = std::const_pointer_cast<Expr>(make(Expr::Kind::literal, "", {}));
      e->value = Value::from(s);
      return e;
    }
    if (t.kind == Token::Kind::integer || t.kind == Token::Kind::number) {
      auto e = std::const_pointer_cast<Expr>(make(Expr::Kind::literal, "", {}));
      e->value = tokens_[at_++].value;
      return e;
    }
    if (t.kind == Token::Kind::name) {
      const std::string name = tokens_[at_++].text;
      auto e = std::const_pointer_cast<Expr>(make(Expr::Kind::literal, "", {}));
      if (name == "true" || name == "True") e->value = Value::from(true);
      else if (name == "false" || name == "False") e->value = Value::from(false);
      else if (name == "none" || name == "None") e->value = Value::none();
      else return make(Expr::Kind::name, name, {});
      return e;
    }
    if (accept_op("(")) {
      if (accept_op(")")) return make(Expr::Kind::list, "tuple", {});
      ExprPtr first = expression();
      if (accept_op(")")) return first;
      std::vector<ExprPtr> items = {first};
      while (accept_op(",") && !is_op(")")) items.push_back(expression());
      expect_op(")");
      return make(Expr::Kind::list, "tuple", items);
    }
    if (accept_op("[")) {
      std::vector<ExprPtr> items;
      while (!accept_op("]")) {
        if (!items.empty()) expect_op(",");
        if (accept_op("]")) break;
        items.push_back(expression());
      }
      return make(Expr::Kind::list, "", items);
    }
    if (accept_op("{")) {
      std::vector<ExprPtr> items;
      while (!accept_op("}")) {
        if (!items.empty()) expect_op(",");
        if (accept_op("}")) break;
        items.push_back(expression());
        expect_op(":");
        items.push_back(expression());
      }
      return make(Expr::Kind::dict, "", items);
    }
    fail("expected an expression, got " + describe());
  }
  // After "(": positional arguments, *iterable, name=value, **mapping, in jinja2's order.
  void call_arguments(Expr& call) {
    for (bool first = true; !accept_op(")"); first = false) {
      if (!first) {
        expect_op(",");
        if (accept_op(")")) break;
      }
      if (accept_op("**")) {
        if (call.star_kwargs) fail("Invalid argument syntax");
        call.star_kwargs = expression();
      } else if (accept_op("*")) {
        if (call.star_args || call.star_kwargs) fail("Invalid argument syntax");
        call.star_args = expression();
      } else if (peek().kind == Token::Kind::name && peek(1).kind == Token::Kind::op && peek(1).text == "=") {
        if (call.star_kwargs) fail("Invalid argument syntax");
        const std::string key = tokens_[at_].text;
        at_ += 2;
        call.kwargs.emplace_back(key, expression());
      } else {
        if (!call.kwargs.empty()) fail("a positional argument after a keyword argument");
        if (call.star_args || call.star_kwargs) fail("Invalid argument syntax");
        call.args.push_back(expression());
      }
    }
  }
  ExprPtr postfix(ExprPtr e) {
    for (;;) {
      if (accept_op(".")) {
        if (peek().kind == Token::Kind::integer) {
          auto index = std::const_pointer_cast<Expr>(make(Expr::Kind::literal, "", {}));
          index->value = tokens_[at_++].value;
          e = make(Expr::Kind::subscript, "", {e, index});
        } else {
          e = make(Expr::Kind::attribute, expect_name(), {e});
        }
      } else if (accept_op("[")) {
        ExprPtr bound[3] = {nullptr, nullptr, nullptr};
        bool is_slice = false;
        for (int part = 0; part < 3; part++) {
          if (!is_op(":") && !is_op("]")) bound[part] = expression();
          if (part < 2 && accept_op(":")) is_slice = true;
          else break;
        }
        expect_op("]");
        e = is_slice ? make(Expr::Kind::slice, "", {e, bound[0], bound[1], bound[2]})
                     : make(Expr::Kind::subscript, "", {e, bound[0]});
        if (!is_slice && !bound[0]) fail("expected a subscript");
      } else if (accept_op("(")) {
        auto call = std::const_pointer_cast<Expr>(make(Expr::Kind::call, "", {e}));
        call_arguments(*call);
        measure(*call);
        e = call;
      } else {
        return e;
      }
    }
  }
  ExprPtr filters_and_tests(ExprPtr e) {
    for (;;) {
      if (accept_op("|")) {
        std::string name = expect_name();
        while (accept_op(".")) name += "." + expect_name();
        auto f = std::const_pointer_cast<Expr>(make(Expr::Kind::filter, name, {e}));
        if (accept_op("(")) call_arguments(*f);
        measure(*f);
        e = f;
      } else if (accept_name("is")) {
        const bool negated = accept_name("not");
        const bool comparison = is_op("==") || is_op("!=") || is_op("<") || is_op(">") ||
                                is_op("<=") || is_op(">=");
        std::string name = comparison ? tokens_[at_++].text : expect_name();
        while (!comparison && accept_op(".")) name += "." + expect_name();
        auto t = std::const_pointer_cast<Expr>(make(Expr::Kind::test, name, {e}));
        t->negated = negated;
        // jinja2's parse_test: a name after the test is its argument unless else, or, and; so
        // `x is defined if c` and `x is odd in y` read if and in as names, and fail as there.
        const Token& next = peek();
        const bool keyword = next.kind == Token::Kind::name && (next.text == "else" || next.text == "or" || next.text == "and");
        if (is_name("is")) fail("You cannot chain multiple tests with is");
        if (accept_op("(")) {
          call_arguments(*t);
        } else if ((next.kind == Token::Kind::name && !keyword) || next.kind == Token::Kind::string ||
                   next.kind == Token::Kind::integer || next.kind == Token::Kind::number ||
                   is_op("[") || is_op("{")) {
          t->args.push_back(postfix(primary()));  // `is divisibleby 3`, `is sameas none`
        }
        measure(*t);
        e = t;
      } else {
        return e;
      }
    }
  }

  std::vector<Token> tokens_;
  size_t at_ = 0;
  const std::string& where_;
  int line_;
  int nesting_ = 0;
};

namespace {

// The statements over the segments, nested by their end tags.
class BodyParser {
 public:
  BodyParser(std::vector<Segment> segments, const std::string& where)
      : segments_(std::move(segments)), where_(where) {}

  // Nodes up to the statement tag whose keyword is in `ends` (its keyword in `ended_by`, its
  // remaining tokens in `tag`), or to the template's end when `opened` is empty.
  Body parse_until(std::initializer_list<const char*> ends, std::string& ended_by,
                   std::optional<TagParser>& tag, const std::string& opened, int opened_line) {
    Body body;
    while (next_ < segments_.size()) {
      const Segment& segment = segments_[next_++];
      Node node;
      node.line = segment.line;
      if (segment.kind == Segment::Kind::text) {
        node.kind = Node::Kind::text;
        node.text = segment.code;
        body.push_back(std::move(node));
        continue;
      }
      TagParser p(segment.code, where_, segment.line);
      if (segment.kind == Segment::Kind::output) {
        node.kind = Node::Kind::output;
        node.expr = p.expression();
        p.expect_end();
        body.push_back(std::move(node));
        continue;
      }
      const std::string keyword = p.expect_name();
      for (const char* end : ends)
        if (keyword == end) {
          ended_by = keyword;
          tag.emplace(std::move(p));
          return body;
        }
      statement(keyword, p, node);
      body.push_back(std::move(node));
    }
    if (!opened.empty())
      syntax_error(where_, opened_line, "'" + opened + "' is never closed (expected 'end" + opened + "')");
    return body;
  }

 private:
  // The body of a block statement up to `end`, which closes it.
  Body block(const char* end, const std::string& opened, int line) {
    std::string ended_by;
    std::optional<TagParser> tag;
    Body body = parse_until({end}, ended_by, tag, opened, line);
    tag->expect_end();
    return body;
  }

  void statement(const std::string& keyword, TagParser& p, Node& node) {
    const int line = node.line;
    if (++blocks_open_ > kMaxNesting)
      syntax_error(where_, line, "blocks nested deeper than " + std::to_string(kMaxNesting));
    std::string ended_by;
    std::optional<TagParser> tag;
    if (keyword == "if") {
      node.kind = Node::Kind::if_chain;
      ExprPtr condition = p.logical_or();  // jinja2 reads no conditional here: `if a if b` fails
      p.expect_end();
      for (;;) {
        Body body = parse_until({"elif", "else", "endif"}, ended_by, tag, "if", line);
        node.branches.emplace_back(condition, std::move(body));
        if (ended_by != "elif") break;
        condition = tag->logical_or();
        tag->expect_end();
      }
      tag->expect_end();
      if (ended_by == "else") node.else_body = block("endif", "if", line);
    } else if (keyword == "for") {
      node.kind = Node::Kind::for_loop;
      do node.targets.push_back(p.expect_name());
      while (p.accept_op(","));
      if (!p.accept_name("in")) p.fail("expected 'in', got " + p.describe());
      node.expr = p.logical_or();
      if (p.accept_name("if")) node.condition = p.expression();
      if (p.is_name("recursive")) p.fail("recursive loops are not supported");
      p.expect_end();
      node.body = parse_until({"else", "endfor"}, ended_by, tag, "for", line);
      tag->expect_end();
      if (ended_by == "else") node.else_body = block("endfor", "for", line);
    } else if (keyword == "set") {
      do node.targets.push_back(p.expect_name());
      while (p.accept_op(","));
      if (node.targets.size() == 1 && p.accept_op(".")) node.attribute = p.expect_name();
      if (p.accept_op("=")) {
        node.kind = Node::Kind::set;
        node.expr = p.expression();
        p.expect_end();
      } else {
        p.expect_end();
        if (node.targets.size() != 1 || !node.attribute.empty()) p.fail("expected '=' after the set targets");
        node.kind = Node::Kind::set_block;
        node.body = block("endset", "set", line);
      }
    } else if (keyword == "macro") {
      node.kind = Node::Kind::macro;
      node.name = p.expect_name();
      p.expect_op("(");
      for (bool first = true; !p.accept_op(")"); first = false) {
        if (!first) p.expect_op(",");
        const std::string param = p.expect_name();
        node.params.emplace_back(param, p.accept_op("=") ? p.expression() : nullptr);
      }
      p.expect_end();
      node.body = block("endmacro", "macro", line);
    } else if (keyword == "break" || keyword == "continue") {
      node.kind = keyword == "break" ? Node::Kind::loop_break : Node::Kind::loop_continue;
      p.expect_end();
    } else if (keyword == "generation") {
      node.kind = Node::Kind::generation;
      p.expect_end();
      node.body = block("endgeneration", "generation", line);
    } else {
      const bool closer = keyword.rfind("end", 0) == 0 || keyword == "elif" || keyword == "else";
      syntax_error(where_, line, (closer ? "unexpected '" : "unsupported tag '") + keyword + "'");
    }
    blocks_open_--;
  }

  std::vector<Segment> segments_;
  size_t next_ = 0;
  int blocks_open_ = 0;
  const std::string& where_;
};

}  // namespace

Body parse_template(const std::string& source, const std::string& where) {
  BodyParser parser(split_segments(source, where), where);
  std::string ended_by;
  std::optional<TagParser> tag;
  Body body = parser.parse_until({}, ended_by, tag, "", 1);
  check_filters_and_tests(body, where);
  return body;
}

}  // namespace llm::jinja
