// Preference rows their author formats, for rl: dpo (prompt, chosen, rejected) and rl: kto
// (prompt, completion, label), as Axolotl reads them:
//   passthrough.default (a dataset entry without `type` under rl): the rows hold the final texts
//     in "prompt", "chosen" and "rejected" (KTO: "prompt", "completion", "label"), which TRL
//     tokenizes whole, so a special token's name in them is that token.
//   user_defined.default (a `type:` map under rl, DatasetSpec::preference_format): each text is
//     its Python format string with the row's field in it: prompt_format with {prompt} (and
//     {system}: the row's system field, "" when absent or null), chosen_format with {chosen},
//     rejected_format with {rejected}, completion_format with {completion}. The formats' own text
//     is template text (their markers become tokens); the fields' values stay text.
// A row whose prompt or a response comes out empty is refused, as Axolotl refuses it.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "io/data_config.h"
#include "io/kto.h"
#include "io/preference.h"

namespace llm {

// A row's texts; UserError ("<where><what>") on a field that is missing or not a string, a label
// that is not true, false, 1 or 0, or an empty text. `where` is "<file>:<line>: ".
PreferenceText formatted_pair(const DatasetSpec& spec, const nlohmann::ordered_json& row, const std::string& where);
KtoText formatted_unpaired(const DatasetSpec& spec, const nlohmann::ordered_json& row, const std::string& where);

}  // namespace llm
