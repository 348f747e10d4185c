// defines: nearest_config_key (the "did you mean" of an unknown key)
#include <algorithm>
#include <string>
#include <vector>

#include "train/config_fields.h"

namespace llm {
namespace {

// Edits (insert, delete, replace, swap two neighbours) from a to b: optimal string alignment.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); i++) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); j++) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); i++)
    for (size_t j = 1; j <= b.size(); j++) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

}  // namespace

std::optional<std::string> nearest_config_key(const std::string& key) {
  // One edit in a short name, two in a longer one: close enough to be a slip, not another word.
  const size_t allowed = key.size() < 8 ? 1 : 2;
  std::optional<std::string> best;
  size_t best_distance = allowed + 1;
  for (const ConfigField& field : config_fields()) {
    const size_t distance = edit_distance(key, field.name);
    if (distance == 0) return std::nullopt;  // a known key, unused where it stands (optim_args with AdamW): no slip
    if (distance < best_distance) best = field.name, best_distance = distance;
  }
  return best;
}

}  // namespace llm
