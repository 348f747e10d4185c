// defines: eaft_rows, check_eaft, dft_rows (EAFT's and DFT's keys, and their rules against the
// rest of a config; engine/ops.h's TokenWeighting)
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

// DFT (Dynamic Fine-Tuning, arXiv 2508.05629): Axolotl's examples/dft spells it use_dft, its DFT
// plugin enable_dft_loss; dft_chunk_size chunks the plugin's logits, as llm_train's lm_head always
// does.
std::vector<ConfigField> dft_rows(const char* section) {
  return {
      flag("use_dft", section, MEMBER(use_dft),
           "DFT, as Axolotl's: each token's cross-entropy weighted by the probability of its target (no gradient "
           "through the weight), in training and evaluation"),
      {"enable_dft_loss", section, "true or false", "the name Axolotl's DFT plugin gives use_dft",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) { ctx.config.use_dft = read_bool(n, w); }, nullptr},
      {"dft_chunk_size", section, "an integer > 0",
       "speed only: the DFT plugin's logits in chunks of rows, as llm_train's lm_head always computes them",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) {
         read_int(n, w, 1, kNoMax);
         ctx.config.speed_only_keys.push_back("dft_chunk_size");
       },
       nullptr},
  };
}

// Axolotl hands EAFT's (and DFT's) loss to the Trainer of supervised fine-tuning; its preference
// trainers compute their own losses.
void check_dft(const TrainConfig& c, const Where& w) {
  if (!c.rl.empty()) fail(w, "no rl (DFT weighs the supervised loss; preference losses are their own)", "rl: " + c.rl);
  if (c.use_eaft) fail(w, "use_eaft false with it (one weighting of the loss at a time)", "use_eaft: true");
}

void check_eaft(const TrainConfig& c, const Where& w) {
  if (!c.rl.empty()) fail(w, "no rl (EAFT weighs the supervised loss; preference losses are their own)", "rl: " + c.rl);
  if (c.eaft_k > c.model.vocab_size)
    fail(w, "eaft_k at most vocab_size, " + std::to_string(c.model.vocab_size), "eaft_k " + std::to_string(c.eaft_k));
}

}  // namespace llm
