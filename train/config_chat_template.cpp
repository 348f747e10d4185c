// defines: chat_template_jinja_of, read_chat_template_jinja, read_chat_template_kwargs,
// resolve_chat_templates (which Jinja template each chat_template dataset renders with, as
// Axolotl's get_chat_template picks it), inference_chat_template
#include <algorithm>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/user_error.h"
#include "io/chat_template.h"
#include "io/ends_with.h"
#include "io/jinja.h"
#include "io/json_text.h"
#include "train/config_fields.h"
#include "train/pyyaml_scalars.h"

namespace llm {

namespace fs = std::filesystem;

namespace {

// A template of whitespace alone renders no conversation: no token to train.
bool blank(const std::string& source) { return source.find_first_not_of(" \t\r\n") == std::string::npos; }

}  // namespace

std::string chat_template_jinja_of(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::string given = read_string(n, w);
  const std::string file = ctx.beside_config(given);
  std::error_code ec;
  if (fs::is_regular_file(file, ec)) {
    const std::string source = read_whole_file(file, "a Jinja chat template");
    if (blank(source)) fail(w, "a .jinja file holding a template", "'" + given + "', an empty file");
    jinja::Template(source, file);  // a syntax error: now
    return file;
  }
  // Axolotl reads a value naming no file as the template itself; a missing .jinja file is a typo.
  if (ends_with(given, ".jinja") && given.find("{") == std::string::npos)
    fail(w, "a Jinja template, or the path of a .jinja file that exists", describe(n));
  jinja::Template(given, w.str());
  return given;
}

void read_chat_template_jinja(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  ctx.config.data.chat_template_jinja = chat_template_jinja_of(ctx, n, w);
}

namespace {

// The tokenizer's own chat template, as transformers loads it: chat_template.jinja beside the
// tokenizer file, else tokenizer_config.json's chat_template (a string, or a list of {name,
// template} whose "default" it is); Meta's original/tokenizer.model looks in the directory above
// too. `where` names the file it came from.
std::optional<std::string> tokenizer_chat_template(const std::string& tokenizer_file, std::string& where) {
  if (tokenizer_file.empty()) return std::nullopt;
  std::vector<fs::path> dirs = {fs::path(tokenizer_file).parent_path()};
  if (dirs[0].filename() == "original") dirs.push_back(dirs[0].parent_path());
  std::error_code ec;
  for (const fs::path& dir : dirs) {
    where = (dir / "chat_template.jinja").string();
    if (fs::is_regular_file(where, ec)) {
      std::string source = read_whole_file(where, "a Jinja chat template");
      if (blank(source))
        throw UserError(where + ": expected a Jinja chat template, got an empty file");
      return source;
    }
    where = (dir / "tokenizer_config.json").string();
    if (!fs::is_regular_file(where, ec)) continue;
    const nlohmann::json config = read_json_file(where, "a tokenizer_config.json");
    const auto it = config.is_object() ? config.find("chat_template") : config.end();
    if (it == config.end() || it->is_null()) continue;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_array())
      for (const nlohmann::json& entry : *it)
        if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
            entry["template"].is_string())
          return entry["template"].get<std::string>();
    throw UserError(where + ": chat_template: expected a Jinja template string or a list of {name, template} "
                    "holding a \"default\" one, got " + it->dump().substr(0, 80));
  }
  return std::nullopt;
}

// The Jinja template `choice` (with `jinja`, chat_template_jinja's value) renders with: the
// tokenizer's own (tokenizer_default*), chat_template_jinja's, or a built-in one's source, which
// `builtin` says. `key` names the choice in messages.
struct ResolvedTemplate {
  std::string source;
  bool builtin;
  bool fell_back = false;  // tokenizer_default_fallback_*: the tokenizer has none
};

ResolvedTemplate resolve_template(const std::string& choice, const std::string& jinja, const TrainConfig& c,
                                  const std::string& key) {
  if (choice == "jinja") {
    if (jinja.empty())
      throw UserError(key + ": expected chat_template_jinja beside it (a Jinja template or .jinja file), got none");
    std::error_code ec;
    return {fs::is_regular_file(jinja, ec) ? read_whole_file(jinja, "a Jinja chat template") : jinja, false};
  }
  if (choice != "tokenizer_default" && builtin_chat_template(choice) == choice)  // llama3, chatml
    return {builtin_chat_template_jinja(choice), true};
  std::string where;
  std::optional<std::string> source = tokenizer_chat_template(c.tokenizer_config, where);
  if (!source && choice == "tokenizer_default")
    throw UserError(key + ": expected a tokenizer with a chat template (chat_template.jinja or "
                    "tokenizer_config.json's chat_template beside " +
                    (c.tokenizer_config.empty() ? std::string("a tokenizer_config") : c.tokenizer_config) +
                    "), got none; or chat_template llama3, chatml, jinja or tokenizer_default_fallback_llama3");
  if (!source) return {builtin_chat_template_jinja(choice), true, true};
  jinja::Template(*source, where);  // a syntax error names its file now, not mid-tokenization
  return {*source, false};
}

}  // namespace

namespace {

// A YAML value as JSON: plain scalars typed as PyYAML (Axolotl's yaml.safe_load) types them (yes
// and off are bools, 010 is 8, 1e5 a string), quoted ones strings.
nlohmann::ordered_json json_of_yaml(const YAML::Node& n) {
  if (n.IsNull()) return nullptr;
  if (n.IsSequence()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const YAML::Node& item : n) out.push_back(json_of_yaml(item));
    return out;
  }
  if (n.IsMap()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    for (const auto& kv : n) out[kv.first.Scalar()] = json_of_yaml(kv.second);
    return out;
  }
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted (or !!str)
  switch (resolve_plain_scalar(s)) {
    case PlainScalar::null:
      return nullptr;
    case PlainScalar::boolean:
      return *pyyaml_bool(s);
    case PlainScalar::integer:
      if (const std::optional<int64_t> v = pyyaml_int(s)) return *v;
      return s;  // past 64 bits (Python's int has no bound): kept as its digits
    case PlainScalar::floating:
      return *pyyaml_float(s);
    case PlainScalar::string:
      break;
  }
  return s;
}

}  // namespace

void read_chat_template_kwargs(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  if (!n.IsMap()) fail(w, "a map of template variables", describe(n));
  for (const auto& kv : n)
    for (const char* own : {"messages", "tools", "documents", "add_generation_prompt", "continue_final_message"})
      if (kv.first.Scalar() == own)  // apply_chat_template sets these itself (Python would refuse the repeat)
        fail(w, "template variables other than messages, tools, documents and add_generation_prompt", own);
  ctx.config.data.chat_template_kwargs = json_of_yaml(n).dump();
}

void resolve_chat_templates(TrainConfig& c, bool chat_template_given) {
  std::set<std::string> trained_with;  // each chat dataset's template, as Jinja
  for (std::vector<DatasetSpec>* specs : {&c.data.datasets, &c.data.test_datasets})
    for (DatasetSpec& spec : *specs) {
      if (!renders_chat_template(spec.type)) continue;
      spec.eot_tokens = c.data.eot_tokens;
      spec.train_on_inputs = c.data.train_on_inputs;
      // Axolotl's SFT chat template passes them to apply_chat_template; its DPO one does not.
      if (spec.type == "chat_template") spec.chat_template_kwargs = c.data.chat_template_kwargs;
      const ResolvedTemplate t = resolve_template(spec.chat_template, spec.chat_template_jinja, c,
                                                  c.source + ": chat_template " + spec.chat_template + " (dataset " + spec.path + ")");
      spec.chat_template_source = t.builtin ? "" : t.source;  // built-in ones render natively
      trained_with.insert(t.source);
      const std::string warning = "chat_template unset: the tokenizer has no chat template, so the built-in llama3 "
                                  "one renders (this default is tokenizer_default_fallback_llama3; Axolotl's, "
                                  "tokenizer_default, stops on such a tokenizer)";
      if (t.fell_back && !chat_template_given && spec.chat_template == c.data.chat_template &&
          std::find(c.adjustments.begin(), c.adjustments.end(), warning) == c.adjustments.end())
        c.adjustments.push_back(warning);
    }
  if (trained_with.empty()) return;
  // The saved tokenizer carries the template the run trained with: the chat datasets' when they
  // agree, else the top-level chat_template's (Axolotl's); the tokenizer's own stays its own.
  const std::string& top = c.data.chat_template;
  const std::string saved = trained_with.size() == 1
                                ? *trained_with.begin()
                                : resolve_template(top, c.data.chat_template_jinja, c, c.source + ": chat_template " + top).source;
  std::string where;
  if (saved != tokenizer_chat_template(c.tokenizer_config, where).value_or("")) c.data.chat_template_source = saved;
}

std::string inference_chat_template(const TrainConfig& c) {
  if (c.data.chat_template_given)
    return resolve_template(c.data.chat_template, c.data.chat_template_jinja, c,
                            c.source + ": chat_template " + c.data.chat_template).source;
  if (c.data.datasets.empty() || c.data.datasets[0].type != "chat_template") return "";
  const DatasetSpec& first = c.data.datasets[0];
  return first.chat_template_source.empty() ? builtin_chat_template_jinja(first.chat_template) : first.chat_template_source;
}

}  // namespace llm
