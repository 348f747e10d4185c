// Python's str methods that read Unicode's character database, on UTF-8 text, for chat templates
// that call them as jinja2 does: full case mappings ('ß'.upper() is 'SS', 'ǆ'.title() is 'ǅ'),
// Greek final sigma, Python's cased characters and its digit, numeric and letter classes (ICU's
// Unicode properties; Python 3.11 reads Unicode 14, ICU 72 Unicode 15: they differ only on
// characters 15 added or changed).
#pragma once
#include <string>

namespace llm {

std::string python_upper(const std::string& s);       // str.upper()
std::string python_lower(const std::string& s);       // str.lower()
std::string python_title(const std::string& s);       // str.title(): each run of cased letters
std::string python_capitalize(const std::string& s);  // str.capitalize(): the first titlecased
std::string python_swapcase(const std::string& s);    // str.swapcase()
std::string python_casefold(const std::string& s);    // str.casefold(): full case folding
bool python_islower(const std::string& s);            // str.islower()
bool python_isupper(const std::string& s);            // str.isupper()
bool python_istitle(const std::string& s);            // str.istitle()

// Whether repr() writes the code point as it is (str.isprintable): not for controls, format
// characters, separators other than the ASCII space, private use, surrogates or unassigned ones.
bool python_is_printable(char32_t c);

// str.isalpha, isdecimal, isdigit, isnumeric, isalnum: `s` is not empty and each character is
// of the class (`name` one of those five methods' names).
bool python_is_class(const std::string& s, const std::string& name);

}  // namespace llm
