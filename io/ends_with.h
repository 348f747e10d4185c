// defines: ends_with (C++17's std::string has no ends_with): file names by their suffix
#pragma once
#include <string>

namespace llm {

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace llm
