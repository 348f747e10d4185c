// defines: pose_rows, check_pose (PoSE's keys, and their rules against the rest of a config;
// io/pose.h)
#include <string>

#include "model/llama_config.h"  // kMaxPositions
#include "train/config_field_builders.h"
#include "train/config_fields.h"

namespace llm {
using namespace field_builders;

namespace {
void read_split_ids(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  std::vector<int32_t>& ids = ctx.config.data.pose.split_on_token_ids;
  ids.clear();
  if (!n.IsSequence()) fail(w, "a list of token ids", describe(n));
  for (size_t i = 0; i < n.size(); i++)
    ids.push_back(static_cast<int32_t>(read_int(n[i], w.child("[" + std::to_string(i) + "]", n[i]), 0, INT32_MAX)));
}

std::string write_split_ids(const TrainConfig& c) {
  std::vector<std::string> items;
  for (int32_t id : c.data.pose.split_on_token_ids) items.push_back(std::to_string(id));
  return items.empty() ? std::string() : "[" + join(items) + "]";
}
}  // namespace

std::vector<ConfigField> pose_rows(const char* section) {
  return {
      flag("use_pose", section, MEMBER(data.use_pose),
           "PoSE, as Axolotl's: each training example's position ids skip ahead at split points, drawn once"),
      integer("pose_max_context_len", section, MEMBER(data.pose.max_context_len), 1, kMaxPositions,
              "PoSE: the context the skips reach at most (needed with use_pose; >= sequence_len)"),
      {"pose_split_on_token_ids", section, "a list of token ids",
       "PoSE: skip before these tokens (unset: at pose_num_chunks equal chunks)", read_split_ids, write_split_ids},
      integer("pose_num_chunks", section, MEMBER(data.pose.chunks), 1, kMaxPositions,
              "PoSE: chunks of each example without pose_split_on_token_ids (unset: 2)"),
  };
}

// Axolotl runs PoSE in supervised fine-tuning's data preparation (with sample packing, its
// multipack rows carry each example's PoSE position ids); its add_pose_position_ids fails without
// a context length or with one shorter than an example.
void check_pose(const TrainConfig& c, const Where& w) {
  const PoseConfig& p = c.data.pose;
  if (p.max_context_len < 0) fail(w, "pose_max_context_len with it (the context the skips reach)", "none");
  if (p.max_context_len < c.data.sequence_len)
    fail(w, "pose_max_context_len at least sequence_len, " + std::to_string(c.data.sequence_len),
         "pose_max_context_len " + std::to_string(p.max_context_len));
  if (!c.rl.empty()) fail(w, "no rl with it (PoSE is supervised fine-tuning's)", "rl: " + c.rl);
  // Dynamic NTK rescales RoPE once a position passes max_position_embeddings, by the longest batch
  // seen until then (transformers' frequency cache): not built, and only PoSE's skips get there.
  const RopeConfig& rope = c.model.rope;
  if (rope.factor > 0.0f && rope.type == RopeType::dynamic && p.max_context_len > c.model.max_position_embeddings)
    fail(w,
         "pose_max_context_len at most max_position_embeddings, " + std::to_string(c.model.max_position_embeddings) +
             ", with rope_scaling dynamic (its scaling past that length is not built)",
         "pose_max_context_len " + std::to_string(p.max_context_len));
}

}  // namespace llm
