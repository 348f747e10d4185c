// defines: untrained_tokens_rows, check_untrained_tokens: Axolotl's fix_untrained_tokens key
// (train/untrained_tokens.h) as its schema reads it: an int or a list of ints. Any true value turns
// the fix on; a list also names ids to fix besides the ones found (an int names none: Axolotl
// passes its token_ids_to_fix only from a list).
#include "train/config_field_builders.h"
#include "train/config_fields.h"

namespace llm {

std::vector<ConfigField> untrained_tokens_rows(const char* section) {
  return {{"fix_untrained_tokens", section, "true, false, an integer or a list of token ids",
           "before training, the rows of untrained tokens the data uses become the trained rows' mean x their "
           "frequency (Axolotl's fix); a list also names ids to fix",
           [](ReadContext& ctx, const YAML::Node& n, const Where& w) {
             TrainConfig& c = ctx.config;
             c.fix_untrained_token_ids.clear();
             if (n.IsSequence()) {
               for (const YAML::Node& id : n) c.fix_untrained_token_ids.push_back(read_int(id, w.child("[]", id), 0));
               c.fix_untrained_tokens = !c.fix_untrained_token_ids.empty();
             } else if (n.IsScalar() && !n.Scalar().empty() &&
                        n.Scalar().find_first_not_of("0123456789") == std::string::npos) {
               c.fix_untrained_tokens = read_int(n, w, 0) != 0;
             } else {
               c.fix_untrained_tokens = read_bool(n, w, ", an integer or a list of token ids");
             }
           },
           [](const TrainConfig& c) {
             if (c.fix_untrained_token_ids.empty()) return std::string(c.fix_untrained_tokens ? "true" : "false");
             std::string ids;
             for (int64_t id : c.fix_untrained_token_ids) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
             return "[" + ids + "]";
           }}};
}

// The fix reads whole embedding matrices and a language model's token counts.
void check_untrained_tokens(const TrainConfig& c, const Where& at) {
  if (!c.fix_untrained_tokens) return;
  if (c.zero_stage == 3) fail(at, "ZeRO stage 0 to 2 with it (ZeRO-3 shards embed_tokens)", "zero_stage 3");
  if (!c.rl.empty()) fail(at, "no rl with it (preference rows hold no input_ids to count)", "rl: " + c.rl);
}

}  // namespace llm
