// Axolotl's message_field_training_detail (chat_template datasets): a message lists spans of its
// content that train or not, and only the tokens those spans train take loss, as Axolotl's
// ChatTemplatePrompter.get_offsets_for_train_detail decides them:
//   the content is tokenized alone; token i spans characters [start_i, start_{i+1} - 1] (the
//   last to the content's end); each span {begin_offset, end_offset, train} (Python string
//   indices, end inclusive) is widened to token boundaries (its first token the one starting at
//   or after begin_offset, or the one before when that one reaches past begin_offset; its last
//   the last one ending by end_offset, or the one after when that one starts before end_offset;
//   a span left with no token is skipped); a token trains when a widened span with train true
//   holds it whole.
// Axolotl then trains token i of the message's turn in the conversation (counted from the first
// token holding its content): the caller applies the result by position, as Axolotl does.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/tokenizer.h"

namespace llm {

struct TrainDetail {
  int64_t begin = 0, end = 0;  // characters (Unicode code points), end inclusive
  bool train = false;
};

// A message's detail list, JSON [{begin_offset, end_offset, train}, ...]; UserError naming
// `where` (file:line: which) on another shape.
std::vector<TrainDetail> read_train_detail(const nlohmann::ordered_json& value, const std::string& where);

// Whether each token of `content`, tokenized alone, trains under `details`.
std::vector<bool> train_detail_tokens(const std::string& content, const std::vector<TrainDetail>& details,
                                      const Tokenizer& tokenizer);

}  // namespace llm
