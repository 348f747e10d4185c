// defines: read_datasets, write_datasets (the `datasets:` list and Axolotl's per-dataset keys)
#include <filesystem>

#include "io/dataset_split.h"
#include "train/config_fields.h"

namespace llm {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kDatasetTypes = {"completion", "alpaca", "chat_template",
                                                "input_output", "pretokenized"};

// Axolotl's message_property_mappings {role: <field>, content: <field>}.
void read_mappings(DatasetSpec& spec, const YAML::Node& n, const Where& w, std::set<std::string>& unknown) {
  for_fields(n, w, "a map {role, content}", [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    if (key == "role" || key == "content") spec.message_property_mappings[key] = read_string(v, wk);
    else unknown.insert(wk.key);
  });
}

void read_roles(DatasetSpec& spec, const YAML::Node& n, const Where& w) {
  spec.roles.clear();
  for_fields(n, w, "a map of role -> list of names",
             [&](const std::string& key, const YAML::Node& v, const Where& wk) {
               spec.roles[key] = read_string_list(v, wk);
             });
}

DatasetSpec read_entry(ReadContext& ctx, const YAML::Node& n, const Where& wi) {
  DatasetSpec spec;
  spec.chat_template.clear();  // not given: the top-level chat_template, filled in by validate()
  for_fields(n, wi, "a map {path, type, ...}",
             [&](const std::string& key, const YAML::Node& v, const Where& wk) {
               if (key == "path") {
                 spec.path = ctx.beside_config(read_string(v, wk));
                 std::error_code ec;
                 if (!fs::exists(spec.path, ec)) fail(wk, "an existing file or directory", describe(v));
               } else if (key == "type") {
                 spec.type = read_choice(v, wk, kDatasetTypes);
               } else if (key == "split") {
                 spec.split = read_string(v, wk);
                 if (!parse_split(spec.split))
                   fail(wk, "train or a slice of it in HF's syntax, e.g. train[:20%] or train[100:] (a local "
                            "file has one split, train)", describe(v));
               } else if (key == "field") {
                 spec.field = read_string(v, wk);
               } else if (key == "chat_template") {
                 spec.chat_template = read_choice(v, wk, {"llama3", "chatml"});
               } else if (key == "field_messages") {
                 spec.field_messages = read_string(v, wk);
               } else if (key == "message_property_mappings") {
                 read_mappings(spec, v, wk, ctx.unknown);
               } else if (key == "message_field_role") {  // Axolotl's older spellings
                 spec.message_property_mappings["role"] = read_string(v, wk);
               } else if (key == "message_field_content") {
                 spec.message_property_mappings["content"] = read_string(v, wk);
               } else if (key == "roles") {
                 read_roles(spec, v, wk);
               } else if (key == "roles_to_train") {
                 spec.roles_to_train = read_string_list(v, wk);
               } else if (key == "train_on_eos") {
                 spec.train_on_eos = read_choice(v, wk, {"turn", "last", "all", "none"});
               } else {
                 ctx.unknown.insert(wk.key);
               }
             });
  if (spec.path.empty()) fail(wi, "a path in the dataset entry", "none");
  return spec;
}

}  // namespace

void read_datasets(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::string expected = "a list of {path, type} entries";
  if (!n.IsSequence() || n.size() == 0) fail(w, expected, describe(n));
  std::vector<DatasetSpec> specs;
  for (size_t i = 0; i < n.size(); i++)
    specs.push_back(read_entry(ctx, n[i], w.child("[" + std::to_string(i) + "]", n[i])));
  ctx.config.data.datasets = specs;
}

std::string write_datasets(const TrainConfig& c) {
  std::string y;
  const auto list = yaml_list;
  for (const DatasetSpec& d : c.data.datasets) {
    y += "\n  - path: " + yaml_string(d.path) + "\n    type: " + yaml_string(d.type);
    if (d.split != "train") y += "\n    split: " + yaml_string(d.split);
    if (d.field != "text") y += "\n    field: " + yaml_string(d.field);
    if (d.type != "chat_template") continue;
    y += "\n    chat_template: " + yaml_string(d.chat_template);
    y += "\n    field_messages: " + yaml_string(d.field_messages);
    y += "\n    message_property_mappings: {role: " +
         yaml_string(d.message_property_mappings.at("role")) +
         ", content: " + yaml_string(d.message_property_mappings.at("content")) + "}";
    if (!d.roles.empty()) {
      std::string roles;
      for (const auto& [role, names] : d.roles)
        roles += (roles.empty() ? "" : ", ") + yaml_string(role) + ": " + list(names);
      y += "\n    roles: {" + roles + "}";
    }
    y += "\n    roles_to_train: " + list(d.roles_to_train);
    y += "\n    train_on_eos: " + yaml_string(d.train_on_eos);
  }
  return y;
}

}  // namespace llm
