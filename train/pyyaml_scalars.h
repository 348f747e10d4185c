// PyYAML's scalars, as Axolotl's yaml.safe_load reads a config (YAML 1.1): the type a plain
// scalar resolves to (its implicit resolvers), the values its SafeConstructor builds for them,
// and its tags (!!str, !!int, !!float, !!bool, !!null, !!seq, !!map, and the non-specific !)
// applied to a loaded yaml-cpp tree, which keeps tags but does not act on them.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>

namespace llm {

struct Where;

// What PyYAML's implicit resolvers make of a plain (unquoted, untagged) scalar: `yes` a bool,
// `010` an int (octal), `1e5` a string (YAML 1.1's floats need a point), `1:30` an int (base 60).
// A timestamp is read as a string here (no field takes a date).
enum class PlainScalar { null, boolean, integer, floating, string };
PlainScalar resolve_plain_scalar(const std::string& text);

// SafeConstructor's construct_yaml_int, construct_yaml_float and construct_yaml_bool of a text;
// nullopt where PyYAML raises, or the integer does not fit 64 bits. The text need not match the
// resolver's pattern: an explicit tag (!!int " 5") reaches the constructor with any text.
std::optional<int64_t> pyyaml_int(const std::string& text);
std::optional<double> pyyaml_float(const std::string& text);
std::optional<bool> pyyaml_bool(const std::string& text);

// Every node of `root`, loaded from `text`, as PyYAML builds it. Explicit tags: !!str a quoted
// scalar (tag "!"), !!int, !!float and !!bool plain scalars of their value's canonical text, !!null
// null; !!seq and !!map only checked. A tag PyYAML's safe_load has no constructor for (!foo,
// !!python/tuple), or one whose values no config key takes (!!binary, !!timestamp, !!set, !!omap,
// !!pairs), is refused in one line naming the key and line, as is a value its tag does not read
// (!!int 1.5). The non-specific tag `!` makes a scalar plain (`! 5` is 5, `!` alone null). With
// `utf8` (a text checked to be UTF-8), the \N and \_ escapes of double-quoted scalars are made
// UTF-8, which yaml-cpp writes as Latin-1 bytes.
void apply_yaml_tags(YAML::Node root, const std::string& text, bool utf8, const Where& where);

}  // namespace llm
