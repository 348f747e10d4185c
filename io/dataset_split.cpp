// defines: parse_split, slice_rows
#include "io/dataset_split.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <regex>

namespace llm {

std::optional<RowSlice> parse_split(const std::string& split) {
  // The name: HF's \w+(\.\w+)*, word characters being Unicode's (any byte of a UTF-8 sequence here).
  const size_t bracket = std::min(split.find('['), split.size());
  RowSlice slice;
  slice.split = split.substr(0, bracket);
  const std::string& name = slice.split;
  if (name.empty() || name.front() == '.' || name.back() == '.' || name.find("..") != std::string::npos)
    return std::nullopt;
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '_' && c != '.' && c < 0x80) return std::nullopt;
  if (bracket == split.size()) return slice;
  static const std::regex pattern(R"(\[(?:(-?\d{1,15})(%?))?:(?:(-?\d{1,15})(%?))?\])");
  std::smatch m;
  const std::string bounds = split.substr(bracket);
  if (!std::regex_match(bounds, m, pattern)) return std::nullopt;
  if (m[1].matched) slice.begin = std::stoll(m[1].str());
  if (m[3].matched) slice.end = std::stoll(m[3].str());
  const bool begin_pct = m[2].length() > 0, end_pct = m[4].length() > 0;
  if (slice.begin && slice.end && begin_pct != end_pct) return std::nullopt;  // one unit, as HF
  slice.percent = begin_pct || end_pct;
  for (const std::optional<long long>& bound : {slice.begin, slice.end})
    if (slice.percent && bound && std::llabs(*bound) > 100) return std::nullopt;
  return slice;
}

std::pair<size_t, size_t> slice_rows(const RowSlice& slice, size_t rows) {
  const auto n = static_cast<long long>(rows);
  auto absolute = [&](std::optional<long long> bound, long long otherwise) {
    if (!bound) return otherwise;
    long long at = *bound;
    // std::nearbyint rounds half to even under the default rounding mode, as Python's round.
    if (slice.percent) at = static_cast<long long>(std::nearbyint(static_cast<double>(at) * n / 100.0));
    if (at < 0) at += n;
    return std::clamp(at, 0LL, n);
  };
  const long long first = absolute(slice.begin, 0), last = absolute(slice.end, n);
  return {static_cast<size_t>(first), static_cast<size_t>(std::max(first, last))};
}

}  // namespace llm
