// jinja_render: renders chat templates with llm_train's Jinja (io/jinja.h) for
// tools/jinja_differential.py, which renders the same ones with jinja2. Reads JSON lines
// {"template": ..., "variables": {...}} on stdin and writes one JSON line per input:
// {"ok": true, "out": rendering} or {"ok": false, "out": the one-line error}.
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/user_error.h"
#include "io/jinja.h"

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    const nlohmann::ordered_json in = nlohmann::ordered_json::parse(line);
    nlohmann::json out;
    try {
      const llm::jinja::Template chat_template(in.at("template").get<std::string>(), "template");
      llm::jinja::ValueDict variables;
      for (const auto& [name, value] : in.at("variables").items()) variables.emplace_back(name, llm::jinja::from_json(value));
      out = {{"ok", true}, {"out", chat_template.render(variables).str()}};
    } catch (const llm::UserError& e) {
      out = {{"ok", false}, {"out", e.what()}};
    }
    // Bytes that are not UTF-8 (a row may hold them) are written as U+FFFD.
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n" << std::flush;
  }
  return 0;
}
