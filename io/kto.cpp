// defines: is_kto_type, kto_types, load_kto_file, append_kto_examples, rotate_completions, kto_sequences
#include "io/kto.h"

#include <algorithm>

#include "engine/ops.h"
#include "engine/stop_signal.h"
#include "engine/user_error.h"
#include "io/chat_jinja.h"
#include "io/documents.h"
#include "io/preference_formats.h"
#include "io/preference_rows.h"

namespace llm {
namespace {

using namespace preference_rows;

enum class Layout { instruction, question, prompt, argilla_chat, formatted };

struct Strategy {
  std::string type;
  const Markup* markup;
  Layout layout;
};

const std::vector<Strategy>& strategies() {
  static const std::vector<Strategy> all = {
      {"llama3.argilla", &kLlama3, Layout::instruction},   {"llama3.argilla_chat", &kLlama3, Layout::argilla_chat},
      {"llama3.intel", &kLlama3, Layout::question},        {"llama3.prompt_pairs", &kLlama3, Layout::prompt},
      {"llama3.ultra", &kLlama3, Layout::prompt},          {"chatml.argilla", &kChatml, Layout::instruction},
      {"chatml.argilla_chat", &kChatml, Layout::argilla_chat}, {"chatml.intel", &kChatml, Layout::question},
      {"chatml.prompt_pairs", &kChatml, Layout::prompt},   {"chatml.ultra", &kChatml, Layout::prompt},
      {"passthrough.default", nullptr, Layout::formatted}, {"user_defined.default", nullptr, Layout::formatted}};
  return all;
}

KtoText unpaired_text(const Strategy& s, const json& row, const std::string& where) {
  const Markup& m = *s.markup;
  KtoText out;
  std::string completion;
  if (s.layout != Layout::argilla_chat) {
    const char* key = s.layout == Layout::instruction ? "instruction" : s.layout == Layout::question ? "question" : "prompt";
    out.prompt = markup_prompt(m, row, string_field(row, key, where), where);
    completion = string_field(row, "completion", where);
  } else {  // every message but the last under its role's header, the last the completion
    const json& messages = field(row, "completion", where);
    if (!messages.is_array() || messages.empty())
      throw UserError(where + "field \"completion\" is not a list of messages");
    for (size_t i = 0; i + 1 < messages.size(); i++) {
      const json& role = messages[i].is_object() ? messages[i].value("role", json()) : json();
      if (!role.is_string()) throw UserError(where + "completion[" + std::to_string(i) + "] has no \"role\" string");
      append_turn(out.prompt, m, role.get<std::string>(), kRowSource, message_content(row, "completion", i, where));
    }
    append_header(out.prompt, m, "assistant", jinja::kTemplateSource);
    completion = message_content(row, "completion", messages.size() - 1, where);
  }
  out.completion.append(completion, kRowSource);
  out.completion.append(m.response_end, jinja::kTemplateSource);
  out.desirable = label_field(row, "label", where);
  return out;
}

}  // namespace

bool is_kto_type(const std::string& type) {
  const std::vector<std::string>& types = kto_types();
  return std::find(types.begin(), types.end(), type) != types.end();
}

const std::vector<std::string>& kto_types() {
  static const std::vector<std::string> types = strategy_types(strategies());
  return types;
}

void load_kto_file(const std::string& path, const DatasetSpec& spec, std::vector<KtoText>& out) {
  auto strategy = std::find_if(strategies().begin(), strategies().end(),
                               [&](const Strategy& s) { return s.type == spec.type; });
  if (strategy == strategies().end()) throw UserError(spec.path + ": type " + spec.type + " is no KTO dataset type");
  for (const JsonRecord& r : read_json_dataset_file(path, spec)) {
    const std::string where = path + ":" + std::to_string(r.line) + ": ";
    if (!r.value.is_object()) throw UserError(where + "expected a JSON object, got a JSON " + r.value.type_name());
    out.push_back(strategy->layout == Layout::formatted ? formatted_unpaired(spec, r.value, where)
                                                        : unpaired_text(*strategy, r.value, where));
  }
}

void append_kto_examples(const DatasetSpec& spec, const Tokenizer& tokenizer, int64_t sequence_len,
                         std::vector<Example>& out, ExampleStats& stats, const std::string& excess_length_strategy) {
  std::vector<KtoText> rows;
  for (const std::string& file : dataset_source_files(spec)) load_kto_file(file, spec, rows);
  const auto [first, last] = split_rows(spec, rows.size(), "rows");
  for (size_t i = first; i < last; i++) {
    if (const int signal = stop_signal()) throw StopRequested(signal, "tokenizing " + spec.path);
    stats.documents++;
    KtoText& row = rows[i];
    fit_excess_length(excess_length_strategy, row.prompt, {&row.completion}, tokenizer, sequence_len,
                      spec.path + ": row " + std::to_string(i + 1));
    const std::vector<int32_t> prompt_alone = tokenize_template_text(row.prompt, tokenizer);
    if (static_cast<int64_t>(prompt_alone.size() + tokenize_template_text(row.completion, tokenizer).size()) >
        sequence_len) {
      stats.dropped++;  // Axolotl's length rule
      continue;
    }
    jinja::Text whole = row.prompt;
    whole.append(row.completion);
    std::vector<int32_t> full = with_bos(tokenize_template_text(whole, tokenizer), tokenizer);
    if (full.back() != tokenizer.eos()) full.push_back(tokenizer.eos());  // TRL adds EOS
    // TRL: the prompt's own ids, then the full sequence's ids past as many.
    Example p, c;
    p.tokens = with_bos(prompt_alone, tokenizer);
    if (static_cast<int64_t>(p.tokens.size()) >= sequence_len) {  // TRL's: its cut would leave no completion
      stats.dropped++;
      continue;
    }
    p.labels.assign(p.tokens.size(), kIgnoreIndex);
    c.tokens.assign(full.begin() + std::min(p.tokens.size(), full.size()), full.end());
    c.labels = c.tokens;
    p.desirable = c.desirable = row.desirable;
    out.push_back(std::move(p));
    out.push_back(std::move(c));
  }
}

void rotate_completions(const std::vector<int64_t>& order, int64_t block, std::vector<int64_t>& kl_source) {
  const int64_t n = static_cast<int64_t>(order.size());
  for (int64_t start = 0; start < n; start += block) {
    const int64_t end = std::min(n, start + block);
    for (int64_t k = start; k < end; k++) kl_source[order[k]] = order[k == start ? end - 1 : k - 1];
  }
}

ExampleSet kto_sequences(const ExampleSet& cached, const std::vector<int64_t>& kl_source, int64_t max_length) {
  ExampleSet out;
  out.stats = cached.stats;
  const auto span = [&cached](int64_t e) {
    return std::pair{cached.tokens.begin() + cached.offsets[e], cached.tokens.begin() + cached.offsets[e + 1]};
  };
  for (size_t r = 0; r < kl_source.size(); r++) {
    const int64_t prompt = 2 * static_cast<int64_t>(r);
    for (int64_t completion : {prompt + 1, 2 * kl_source[r] + 1}) {
      Example e;
      const auto [pb, pe] = span(prompt);
      const auto [cb, ce] = span(completion);
      e.tokens.assign(pb, pe);
      e.tokens.insert(e.tokens.end(), cb, ce);
      e.labels = e.tokens;
      std::fill_n(e.labels.begin(), pe - pb, kIgnoreIndex);
      if (static_cast<int64_t>(e.tokens.size()) > max_length) {  // keep_start
        e.tokens.resize(static_cast<size_t>(max_length));
        e.labels.resize(static_cast<size_t>(max_length));
      }
      e.desirable = cached.desirable[static_cast<size_t>(prompt)];
      out.add(e);
    }
  }
  return out;
}

}  // namespace llm
