// defines: the reward-model parts of Trainer::Impl (reward_model: TRL's RewardTrainer on
// Bradley-Terry pairs): each pair row's two scores and their losses. The steps, evaluation and
// checkpoints are the pair trainers' (train/trainer_preference.cpp), which call these.
//
// A row holds a pair's chosen sequence and then its rejected one (each attending to itself), as
// TRL's collator stacks them into one padded batch. transformers' LlamaForSequenceClassification
// reads its score at each sequence's last token that is not the pad token (TRL sets the model's
// pad_token_id to the tokenizer's), the sequence's first when every token is one.
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "train/trainer_impl.h"

namespace llm {

namespace {

// Row position of the last token of example `e`, placed at `start`, that is not `pad`.
int64_t pooled_position(const ExampleSet& data, int64_t e, int64_t start, int32_t pad) {
  const int64_t begin = data.offsets[e];
  for (int64_t i = data.length(e) - 1; i > 0; i--)
    if (data.tokens[begin + i] != pad) return start + i;
  return start;
}

}  // namespace

Tensor Trainer::Impl::reward_scores(const Batch& b) {
  const int64_t S = b.inputs.size(1);
  std::vector<int32_t> rows;
  for (size_t r = 0; r < b.rows.size(); r++) {
    const int64_t chosen = b.rows[r][0], rejected = b.rows[r][1];
    const int64_t row_start = static_cast<int64_t>(r) * S;
    rows.push_back(static_cast<int32_t>(pooled_position(*data.examples, chosen, row_start, tokenizer->pad())));
    rows.push_back(static_cast<int32_t>(
        pooled_position(*data.examples, rejected, row_start + data.examples->length(chosen), tokenizer->pad())));
  }
  ForwardOptions opt = options_for(b);
  opt.no_dropout = true;  // RewardConfig's disable_dropout
  const Tensor pooled = Tensor::from_ints(rows, {static_cast<int64_t>(rows.size())});
  return model->scores(b.inputs.to(device), b.positions.to(device), pooled.to(device), opt);
}

PreferenceMetrics Trainer::Impl::reward_metrics(const std::vector<float>& scores, std::vector<float>* grads,
                                                double weight) const {
  PreferenceMetrics m;
  if (grads) grads->assign(scores.size(), 0.0f);
  for (size_t r = 0; 2 * r < scores.size(); r++) {
    const PairLoss pair = bradley_terry_loss(scores[2 * r], scores[2 * r + 1], config.center_rewards_coefficient);
    m.add(pair);
    if (!grads) continue;
    (*grads)[2 * r] = static_cast<float>(pair.d_chosen * weight);
    (*grads)[2 * r + 1] = static_cast<float>(pair.d_rejected * weight);
  }
  return m;
}

float Trainer::Impl::evaluate_token_classifier(const Batch& b, const ForwardOptions& opt, bool real, double* counts) {
  // Every token's two logits, the score bias among them, from one forward (collective under
  // ZeRO-3, so it runs for a filler batch too); the loss is the training loss's own op on them.
  const Tensor logits = model->logits(b.inputs.to(device), b.positions.to(device), opt);
  const float loss = cross_entropy(logits, b.targets.to(device), kIgnoreIndex).item();
  if (!real) return loss;
  const std::vector<int32_t> labels = b.targets.to_ints();
  const std::vector<float> values = logits.to_floats();
  for (size_t i = 0; i < labels.size(); i++) {
    if (labels[i] == kIgnoreIndex) continue;
    counts[0] += (values[2 * i + 1] > values[2 * i] ? 1 : 0) == labels[i] ? 1.0 : 0.0;
    counts[1] += 1.0;
  }
  return loss;
}

void Trainer::Impl::push_reward_extremes(const std::vector<float>& scores, std::vector<double>& local) {
  double lowest = std::numeric_limits<double>::infinity(), highest = -lowest;
  for (float s : scores) lowest = std::min<double>(lowest, s), highest = std::max<double>(highest, s);
  local.push_back(-lowest);
  local.push_back(highest);
}

void Trainer::Impl::add_reward_extremes(std::vector<double> local, PreferenceMetrics& m) {
  comm.allreduce_max(local.data(), static_cast<int64_t>(local.size()));
  for (size_t i = 0; i + 1 < local.size(); i += 2) {
    if (std::isinf(local[i + 1])) continue;  // no rank had a batch
    m.min_reward -= local[i], m.max_reward += local[i + 1], m.extremes += 1;
  }
}

}  // namespace llm
