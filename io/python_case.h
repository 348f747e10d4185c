// Python's str case methods on UTF-8 text, for chat templates that change case as jinja2 does:
// full Unicode mappings ('ß'.upper() is 'SS', 'ǆ'.title() is 'ǅ'), Greek final sigma, and
// Python's notion of a cased character (ICU's Unicode properties; Python 3.11 reads Unicode 14,
// ICU 72 Unicode 15: they differ only on characters new in 15).
#pragma once
#include <string>

namespace llm {

std::string python_upper(const std::string& s);       // str.upper()
std::string python_lower(const std::string& s);       // str.lower()
std::string python_title(const std::string& s);       // str.title(): each run of cased letters
std::string python_capitalize(const std::string& s);  // str.capitalize(): the first titlecased
bool python_islower(const std::string& s);            // str.islower()
bool python_isupper(const std::string& s);            // str.isupper()

}  // namespace llm
