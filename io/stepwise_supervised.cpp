// defines: append_stepwise_examples
#include "io/stepwise_supervised.h"

#include <algorithm>
#include <string>

#include "engine/ops.h"  // kIgnoreIndex
#include "engine/user_error.h"
#include "io/documents.h"
#include "io/json_text.h"
#include "io/preference_rows.h"

namespace llm {

namespace {

using json = nlohmann::ordered_json;

// A step's label: true / false or 1 / 0 (1.0 / 0.0 too), as Axolotl's int(label) takes them for
// two classes; other values, which int() would truncate to a class in silence, are refused.
int32_t step_label(const json& label, const std::string& where) {
  if (label.is_boolean()) return label.get<bool>() ? 1 : 0;
  if (label.is_number() && (label.get<double>() == 0.0 || label.get<double>() == 1.0))
    return label.get<double>() == 1.0 ? 1 : 0;
  throw UserError(where + "field \"labels\" holds " + json_kind(label) + " " + label.dump() +
                  "; expected true, false, 1 or 0 (one per step)");
}

Example stepwise_example(const json& row, const DatasetSpec& spec, const Tokenizer& tokenizer, const std::string& where) {
  if (!row.is_object())
    throw UserError(where + "expected a JSON object with \"prompt\", \"completions\" and \"labels\", got " + json_kind(row));
  const std::string prompt = preference_rows::string_field(row, "prompt", where);
  const json& steps = preference_rows::field(row, "completions", where);
  const json& labels = preference_rows::field(row, "labels", where);
  if (!steps.is_array() || !labels.is_array() || steps.size() != labels.size())
    throw UserError(where + "fields \"completions\" and \"labels\" are " + json_kind(steps) + " and " + json_kind(labels) +
                    "; expected two lists of the same length (a label per step)");
  // The steps, each followed by the separator, and each one's label on its last token (with
  // train_on_last_step_only the last step's alone), cut to max_completion_length.
  std::vector<int32_t> completion, completion_labels;
  const std::vector<int32_t> separator = tokenizer.encode_with_specials(spec.step_separator);
  for (size_t i = 0; i < steps.size(); i++) {
    if (!steps[i].is_string())
      throw UserError(where + "field \"completions\" holds " + json_kind(steps[i]) + " at " + std::to_string(i) +
                      "; expected a list of strings (the steps)");
    std::vector<int32_t> ids = tokenizer.encode_with_specials(steps[i].get<std::string>());
    ids.insert(ids.end(), separator.begin(), separator.end());
    if (ids.empty())
      throw UserError(where + "step " + std::to_string(i) + " is empty and so is step_separator; expected a token "
                      "to carry the step's label");
    completion.insert(completion.end(), ids.begin(), ids.end());
    completion_labels.insert(completion_labels.end(), ids.size(), kIgnoreIndex);
    if (!spec.train_on_last_step_only || i + 1 == steps.size()) completion_labels.back() = step_label(labels[i], where);
  }
  if (spec.max_completion_length > 0 && static_cast<int64_t>(completion.size()) > spec.max_completion_length) {
    completion.resize(static_cast<size_t>(spec.max_completion_length));
    completion_labels.resize(completion.size());
  }
  Example ex;
  ex.tokens.push_back(tokenizer.bos());
  const std::vector<int32_t> prompt_ids = tokenizer.encode_with_specials(prompt);
  ex.tokens.insert(ex.tokens.end(), prompt_ids.begin(), prompt_ids.end());
  ex.labels.assign(ex.tokens.size(), kIgnoreIndex);
  ex.tokens.insert(ex.tokens.end(), completion.begin(), completion.end());
  ex.labels.insert(ex.labels.end(), completion_labels.begin(), completion_labels.end());
  return ex;
}

}  // namespace

void append_stepwise_examples(const DatasetSpec& spec, const Tokenizer& tokenizer, const DataConfig& config,
                              std::vector<Example>& out, ExampleStats& stats) {
  std::vector<std::pair<std::string, JsonRecord>> rows;
  for (const std::string& file : dataset_source_files(spec))
    for (JsonRecord& r : read_json_dataset_file(file, spec)) rows.emplace_back(file, std::move(r));
  const auto [first, last] = preference_rows::split_rows(spec, rows.size(), "rows");
  for (size_t i = first; i < last; i++) {
    const auto& [file, record] = rows[i];
    Example ex = stepwise_example(record.value, spec, tokenizer, file + ":" + std::to_string(record.line) + ": ");
    stats.documents++;
    if (static_cast<int64_t>(ex.tokens.size()) > config.sequence_len) {
      ex.tokens.resize(static_cast<size_t>(config.sequence_len));
      ex.labels.resize(ex.tokens.size());
      stats.truncated++;
    }
    if (std::all_of(ex.labels.begin(), ex.labels.end(), [](int32_t l) { return l == kIgnoreIndex; })) {
      stats.no_targets++;
      continue;
    }
    out.push_back(std::move(ex));
  }
}

}  // namespace llm
