// yaml-cpp's reading of a scalar's trailing blank lines, mended to PyYAML's (Axolotl reads a
// config with yaml.safe_load). Two styles lose line breaks there in yaml-cpp 0.7:
//   a quoted scalar spanning lines: YAML's line folding makes the k line breaks after its last
//     text k - 1 newlines, where yaml-cpp keeps fewer (none when the scalar holds no text);
//   a folded block scalar with keep chomping (>+): its last line break and every blank line after
//     it are kept, one fewer by yaml-cpp when blank lines follow.
// tools/yaml_differential.py (ctest yaml_differential) holds multi-line scalars of every style to
// PyYAML's reading.
#pragma once
#include <optional>
#include <string>

namespace llm {

// `text`: the YAML source; `start`: where the scalar's own text begins (its opening quote or its
// block indicator, after any anchor and tag); `value`: yaml-cpp's value. PyYAML's value where it
// differs in the cases above, else nullopt (also where the source is not of a shape this reads:
// a double-quoted text ending in a backslash or an escaped \n, a block scalar that is the whole
// document or holds no text, or leading blank lines longer than its first text line's indentation).
std::optional<std::string> pyyaml_trailing_breaks(const std::string& text, size_t start, const std::string& value);

}  // namespace llm
