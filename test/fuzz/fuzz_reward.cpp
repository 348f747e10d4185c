// The reward models' rows: a bradley_terry.chat_template file (io/bradley_terry.h), each row's two
// conversations rendered under a Jinja template and tokenized, whose accepted file gives two
// examples a pair, each at most max_length tokens and no target at all (a reward model scores, it
// does not predict); and a stepwise_supervised file (io/stepwise_supervised.h), whose kept rows
// start with BOS, fit max_length and label at least one token, each 0 or 1.
#include <algorithm>

#include "engine/ops.h"  // kIgnoreIndex
#include "engine/user_error.h"
// defines: append_bradley_terry_examples
#include "io/bradley_terry.h"
// defines: append_stepwise_examples
#include "io/stepwise_supervised.h"
#include "io/tokenizer.h"
// defines: Target, PropertyFailure
#include "test/fuzz/fuzz.h"

namespace llm::fuzz {

namespace {

// `input` written as the file of `spec` and read by `append` (the type's loader) with the byte
// tokenizer and a sequence_len of 48.
template <class Append>
std::vector<Example> read_rows(DatasetSpec spec, const std::string& input, const std::string& path, Append append,
                               ExampleStats& stats) {
  spec.path = path;
  write_bytes(spec.path, input);
  DataConfig config;
  config.sequence_len = 48;
  std::vector<Example> examples;
  append(spec, ByteTokenizer(), config, examples, stats);
  return examples;
}

}  // namespace

Target reward_pairs_target() {
  return {"reward_pairs", "reward_pairs", with_json({"system", "input", "chosen", "rejected", "role", "content"}),
          nullptr, [](const std::string& input, const std::string& scratch) {
            DatasetSpec spec;
            spec.type = kBradleyTerryType;
            spec.chat_template = "jinja";  // the byte tokenizer has no chat markers: a template of text
            spec.chat_template_source = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}";
            ExampleStats stats;
            const std::vector<Example> examples =
                read_rows(spec, input, scratch + "/pairs.jsonl", append_bradley_terry_examples, stats);
            require(examples.size() == 2 * static_cast<size_t>(stats.documents), "not two examples a pair");
            for (size_t i = 0; i < examples.size(); i++) {
              const Example& e = examples[i];
              require(!e.tokens.empty() && e.tokens.size() <= 48 && e.labels.size() == e.tokens.size(),
                      "a sequence empty, longer than sequence_len, or labels of another length");
              require(std::all_of(e.labels.begin(), e.labels.end(), [](int32_t l) { return l == kIgnoreIndex; }),
                      "a target in a reward model's sequence");
            }
          }};
}

Target process_reward_rows_target() {
  return {"process_reward_rows", "process_reward_rows", with_json({"prompt", "completions", "labels", "true", "false"}),
          nullptr, [](const std::string& input, const std::string& scratch) {
            DatasetSpec spec;
            spec.type = kStepwiseSupervisedType;
            ExampleStats stats;
            const std::vector<Example> examples =
                read_rows(spec, input, scratch + "/steps.jsonl", append_stepwise_examples, stats);
            require(static_cast<int64_t>(examples.size()) == stats.documents - stats.no_targets, "rows kept and dropped do not add up");
            for (const Example& e : examples) {
              require(!e.tokens.empty() && e.tokens.size() <= 48 && e.labels.size() == e.tokens.size() &&
                          e.tokens[0] == ByteTokenizer().bos(),
                      "a row not opened by BOS, longer than sequence_len, or labels of another length");
              require(std::all_of(e.labels.begin(), e.labels.end(), [](int32_t l) { return l == kIgnoreIndex || l == 0 || l == 1; }) &&
                          std::any_of(e.labels.begin(), e.labels.end(), [](int32_t l) { return l != kIgnoreIndex; }),
                      "a label other than 0 and 1, or a kept row without one");
            }
          }};
}

}  // namespace llm::fuzz
