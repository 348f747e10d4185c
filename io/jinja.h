// Jinja chat templates, rendered as transformers' apply_chat_template renders them (jinja2 with
// trim_blocks, lstrip_blocks and loop controls; transformers' tojson, raise_exception and
// strftime_now): the templates in tokenizer_config.json, chat_template.jinja files and Axolotl's
// chat_template_jinja. The output keeps where each byte came from (io/jinja_value.h), which is
// how a chat dataset finds each message's content in it.
// What is not read: recursive loops, call blocks, filter blocks, include/import/extends,
// str.format, and filters and tests io/jinja_builtins.h does not list; each is a one-line
// UserError naming the line. Where it differs from jinja2 without an error: range() is a
// list, dict keys are strings, a Markup string prints as a str, ints stop at int64 (an overflow
// is an error), and jinja2's constant folding is not mimicked (where its compiler folds an
// expression of literals, a failing subscript is Undefined and `-2 ** x` reads -(2 ** x)).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/jinja_syntax.h"
#include "io/jinja_value.h"

namespace llm::jinja {

class Template {
 public:
  // Throws UserError "<where>: chat template line N: ..." on syntax it does not read.
  Template(const std::string& source, std::string where);
  // The template rendered with `variables` (messages, bos_token, ...) beside the globals of
  // io/jinja_builtins.h. Throws UserError naming `where` and the line when rendering fails.
  Text render(const ValueDict& variables) const;

 private:
  Body body_;
  std::vector<std::string> unbound_;  // the template frame's names set before read (io/jinja_scopes.h)
  std::string where_;
};

// A JSON value as the template sees it; its strings carry `source`.
Value from_json(const nlohmann::ordered_json& j, int source = kTemplateSource);

}  // namespace llm::jinja
