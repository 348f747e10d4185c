// yaml-cpp's reading of a scalar's trailing blank lines, mended to PyYAML's (Axolotl reads a
// config with yaml.safe_load). Two styles lose line breaks there in yaml-cpp 0.7:
//   a quoted scalar spanning lines: YAML's line folding makes the k line breaks after its last
//     text k - 1 newlines, where yaml-cpp keeps one (none when the scalar holds no text);
//   a folded block scalar with keep chomping (>+): its last line break and every blank line after
//     it are kept, one fewer by yaml-cpp when blank lines follow.
// A differential run against PyYAML (2026-12-07, 8000 random block, quoted and plain scalars)
// found no other difference in how a scalar reads.
#pragma once
#include <optional>
#include <string>

namespace llm {

// `text`: the YAML source; `start`: where the scalar's own text begins (its opening quote or its
// block indicator, after any anchor and tag); `value`: yaml-cpp's value. PyYAML's value where it
// differs in the cases above, else nullopt (also where the source is not of a shape this reads:
// a double-quoted text ending in a backslash, a block with an explicit indentation indicator,
// or whitespace-only lines longer than the block's indentation).
std::optional<std::string> pyyaml_trailing_breaks(const std::string& text, size_t start, const std::string& value);

}  // namespace llm
