// defines: eaft_rows, check_eaft (EAFT's keys, and their rules against the rest of a config;
// engine/ops.h's EntropyWeighting)
#include <string>

#include "engine/backend.h"  // kMaxEntropyTopK
#include "train/config_field_builders.h"
#include "train/config_fields.h"

namespace llm {
using namespace field_builders;

std::vector<ConfigField> eaft_rows(const char* section) {
  return {
      flag("use_eaft", section, MEMBER(use_eaft),
           "EAFT, as Axolotl's loss: each token's cross-entropy weighted by H^eaft_alpha (H: the entropy over "
           "its k largest logits), in training and evaluation"),
      number("eaft_alpha", section, MEMBER(eaft_alpha), kNonNegative, "EAFT: the power of the entropy (unset: 1)"),
      integer("eaft_k", section, MEMBER(eaft_k), 1, kMaxEntropyTopK,
              "EAFT: how many of each token's largest logits its entropy is taken over (unset: 20)"),
  };
}

// Axolotl hands EAFT's loss to the Trainer of supervised fine-tuning; its preference trainers
// compute their own losses.
void check_eaft(const TrainConfig& c, const Where& w) {
  if (!c.rl.empty()) fail(w, "no rl (EAFT weighs the supervised loss; preference losses are their own)", "rl: " + c.rl);
  if (c.eaft_k > c.model.vocab_size)
    fail(w, "eaft_k at most vocab_size, " + std::to_string(c.model.vocab_size), "eaft_k " + std::to_string(c.eaft_k));
}

}  // namespace llm
