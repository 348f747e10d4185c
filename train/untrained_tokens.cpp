// defines: find_untrained_tokens, apply_untrained_tokens (see the header)
#include "train/untrained_tokens.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "engine/dtype.h"
#include "engine/user_error.h"

namespace llm {

namespace {

constexpr float kEps = 1e-16f;
constexpr size_t kFirstCheck = 250, kSecondCheck = 2000;

float row_max(const float* row, int64_t n) { return *std::max_element(row, row + n); }

// numpy's round(x, 3) in float32: x * 1000, to the nearest even integer, / 1000.
std::vector<float> rounded(const float* row, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) out[static_cast<size_t>(i)] = std::nearbyint(row[i] * 1000.0f) / 1000.0f;
  return out;
}

// The ids of `bad` the first and last `edge` examples hold (each example once, as Axolotl's scan).
std::vector<int64_t> used_at_the_edges(const std::vector<std::vector<int32_t>>& examples, size_t edge,
                                       const std::set<int64_t>& bad) {
  std::vector<int64_t> used;
  const size_t n = examples.size();
  auto scan = [&](size_t e) {
    for (int32_t id : examples[e])
      if (bad.count(id)) used.push_back(id);
  };
  for (size_t e = 0; e < std::min(n, edge); e++) scan(e);
  for (size_t e = n > edge ? n - edge : 0; e < n; e++) scan(e);
  return used;
}

}  // namespace

UntrainedTokens find_untrained_tokens(const float* embed, const float* head, int64_t vocab, int64_t hidden,
                                      int64_t pad, const std::vector<int64_t>& extra,
                                      const std::vector<int64_t>& template_ids,
                                      const std::vector<std::vector<int32_t>>& examples, bool trains) {
  // Candidates: embed rows that never moved off zero (their largest value, not magnitude).
  std::vector<int64_t> candidates;
  for (int64_t v = 0; v < vocab; v++)
    if (row_max(embed + v * hidden, hidden) <= kEps) candidates.push_back(v);
  // Their head rows must be untrained too: tiny, or (Llama 3.1's case) one vector shared by several.
  std::map<std::vector<float>, int64_t> repeats;
  for (int64_t v : candidates) repeats[rounded(head + v * hidden, hidden)]++;
  std::set<int64_t> found;
  for (int64_t v : candidates)
    if (v != pad && (row_max(head + v * hidden, hidden) <= kEps || repeats[rounded(head + v * hidden, hidden)] >= 2))
      found.insert(v);
  std::set<int64_t> bad = found;
  bad.insert(extra.begin(), extra.end());
  if (bad.empty()) return {};
  const bool in_template = std::any_of(template_ids.begin(), template_ids.end(), [&](int64_t id) { return bad.count(id); });
  std::vector<int64_t> used = used_at_the_edges(examples, kFirstCheck, bad);
  if (!in_template && used.empty()) return {};
  if (!trains) {
    if (used.empty()) used = used_at_the_edges(examples, kSecondCheck, bad);
    if (used.empty()) return {};  // Axolotl's "most likely a false signal"
    std::sort(used.begin(), used.end());
    used.erase(std::unique(used.begin(), used.end()), used.end());
    std::string ids;
    for (int64_t id : used) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
    throw UserError("fix_untrained_tokens: the training data uses untrained tokens [" + ids +
                    "], but embed_tokens and lm_head do not train, so they would stay untrained (Axolotl "
                    "refuses too); expected full fine-tuning or lora_modules_to_save: [embed_tokens, lm_head]");
  }
  std::vector<int64_t> counts(static_cast<size_t>(vocab), 0);  // of every token, for the largest count
  int64_t most = 1;
  for (const std::vector<int32_t>& example : examples)
    for (int32_t id : example) {
      if (static_cast<size_t>(id) >= counts.size()) counts.resize(static_cast<size_t>(id) + 1, 0);
      most = std::max(most, ++counts[static_cast<size_t>(id)]);
    }
  UntrainedTokens fix;
  for (int64_t id : bad)
    if (id < static_cast<int64_t>(counts.size()) && counts[static_cast<size_t>(id)] > 0)
      fix.ids.push_back(id), fix.scales.push_back(static_cast<double>(counts[static_cast<size_t>(id)]) / static_cast<double>(most));
  if (fix.ids.empty()) return {};
  // The trained rows' mean: every row's sum less the untrained ones', over the rows not found.
  const double trained = static_cast<double>(vocab - static_cast<int64_t>(found.size()));
  const auto mean = [&](const float* matrix) {
    std::vector<double> sum(static_cast<size_t>(hidden), 0.0);
    for (int64_t v = 0; v < vocab; v++)
      if (!bad.count(v))
        for (int64_t c = 0; c < hidden; c++) sum[static_cast<size_t>(c)] += matrix[v * hidden + c];
    for (double& s : sum) s = static_cast<double>(static_cast<float>(s) / static_cast<float>(trained));
    return sum;
  };
  fix.embed_mean = mean(embed);
  fix.head_mean = mean(head);
  return fix;
}

void apply_untrained_tokens(const UntrainedTokens& fix, Tensor& embed, Tensor& head, DType model_dtype) {
  if (fix.ids.empty()) return;
  const int64_t hidden = embed.shape()[1];
  for (auto [target, mean] : {std::pair{&embed, &fix.embed_mean}, std::pair{&head, &fix.head_mean}}) {
    Tensor host = target->to(Device::cpu()).to(DType::f32);
    float* rows = host.data<float>();
    for (size_t i = 0; i < fix.ids.size(); i++)
      for (int64_t c = 0; c < hidden; c++) {
        const float value = static_cast<float>((*mean)[static_cast<size_t>(c)] * fix.scales[i]);
        rows[fix.ids[i] * hidden + c] = model_dtype == DType::bf16 ? bf16_to_f32(f32_to_bf16(value)) : value;
      }
    target->copy_from(host);
  }
}

}  // namespace llm
