// What a chat template may call, as jinja2 and transformers define it: filters (`x | trim`; with
// those of io/jinja_text_filters.h and io/jinja_sequence_filters.h), tests (`x is defined`),
// Python's str and dict methods (`x.strip()`, `d.items()`) and the globals (range, namespace,
// dict, raise_exception, strftime_now). Errors are TemplateError.
#pragma once
#include <string>
#include <vector>

#include "io/jinja_value.h"

namespace llm::jinja {

Value apply_filter(const std::string& name, const Value& subject, std::vector<Value>& args,
                   Kwargs& kwargs);
bool apply_test(const std::string& name, const Value& subject, const std::vector<Value>& args);

// subject.name as jinja2 looks it up: a method of str or dict (bound to subject), else a dict's
// member; undefined when there is none.
Value attribute_of(const Value& subject, const std::string& name);
// jinja2's make_attrgetter: `attribute` (map's, sort's, selectattr's ...) split at dots, each part
// (an index where it is digits) looked up as environment.getitem does: the item, else the
// attribute; a part that is no string (an integer attribute) looked up whole.
Value attribute_path(const Value& subject, const Value& attribute);
// subject[key]: a list's item (negative from the end), a dict's member, a string's code point.
Value item_of(const Value& subject, const Value& key);
// subject[start:stop:step] on lists and strings (strings by code point, keeping sources).
Value slice_of(const Value& subject, const Value& start, const Value& stop, const Value& step);
// The items `for` walks: a list's or view's items, a dict's keys, a string's code points, what
// is left of an iterator (which it empties); undefined: none.
ValueList iterate(const Value& subject);
// Python's `a op b` for op <, >, <= or >=, failing where Python raises (Undefined, unorderable types).
bool ordered(const std::string& op, const Value& a, const Value& b);
// Python's `item in container` (an iterator consumed up to the first match).
bool contains(const Value& container, const Value& item);

// range, namespace, dict, raise_exception and strftime_now.
ValueDict global_functions();

}  // namespace llm::jinja
