// defines: apply_sequence_filter
#include "io/jinja_sequence_filters.h"

#include <algorithm>
#include <numeric>

#include "io/jinja_builtins.h"
#include "io/jinja_generators.h"
#include "io/jinja_methods.h"
#include "io/python_unicode.h"

namespace llm::jinja {
namespace {

using Kind = Value::Kind;

// jinja2's ignore_case: strings compared lower-cased.
Value folded(const Value& v, bool case_sensitive) {
  return case_sensitive || v.kind != Kind::string ? v : Value::from(python_lower(v.text.str()));
}

// make_attrgetter's key with ignore_case: the item itself without an attribute.
Value item_key(const Value& item, const Value& attribute, bool case_sensitive) {
  return folded(attribute.kind == Kind::none ? item : attribute_path(item, attribute), case_sensitive);
}

bool less(const Value& a, const Value& b) {
  bool comparable = true;
  const bool result = less_than(a, b, &comparable);
  if (!comparable) fail("'<' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
  return result;
}

// The order Python's sorted(items, key=keys[i], reverse) puts items in: stable, equal keys keep
// their order either way.
std::vector<size_t> sorted_order(const ValueList& keys, bool reverse) {
  std::vector<size_t> order(keys.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return reverse ? less(keys[b], keys[a]) : less(keys[a], keys[b]);
  });
  return order;
}

ValueList pick(const ValueList& items, const std::vector<size_t>& order) {
  ValueList out;
  for (const size_t i : order) out.push_back(items[i]);
  return out;
}

// An argument the filter's Python signature has no default for.
Value required(const std::vector<Value>& args, const Kwargs& kwargs, size_t index, const std::string& name,
               const std::string& filter) {
  const Value missing = Value::undefined(name);
  const Value v = argument(args, kwargs, index, name, missing);
  if (!v.is_defined() && v.name == name) fail(filter + "() missing 1 required positional argument: '" + name + "'");
  return v;
}

// make_multi_attrgetter: the key of sort's `attribute`, several attributes apart by commas.
Value sort_key(const Value& item, const Value& attribute, bool case_sensitive) {
  ValueList parts;
  if (attribute.kind == Kind::string) {
    for (const Value& name : split_text(attribute.text, Value::from(","), -1))
      parts.push_back(folded(attribute_path(item, name), case_sensitive));
  } else {
    parts.push_back(item_key(item, attribute, case_sensitive));
  }
  return Value::from(parts);
}

Value dictsort(const Value& v, std::vector<Value>& args, Kwargs& kwargs) {
  if (v.kind != Kind::dict) fail("dictsort expects a dict, got " + v.type_name());
  const bool case_sensitive = argument(args, kwargs, 0, "case_sensitive", Value::from(false)).truthy();
  const Value by = argument(args, kwargs, 1, "by", Value::from("key"));
  const bool reverse = argument(args, kwargs, 2, "reverse", Value::from(false)).truthy();
  if (!(by == Value::from("key")) && !(by == Value::from("value")))
    fail("You can only sort by either \"key\" or \"value\"");
  const size_t position = by == Value::from("key") ? 0 : 1;
  ValueList pairs, keys;
  for (const auto& [key, value] : *v.dict) {
    Value pair = Value::from(ValueList{Value::from(key), value});
    pair.is_tuple = true;
    keys.push_back(folded((*pair.list)[position], case_sensitive));
    pairs.push_back(pair);
  }
  return Value::from(pick(pairs, sorted_order(keys, reverse)));
}

// do_unique: the first of each key (sets hash, so lists, dicts and views are refused as Python does).
Value unique(const Value& v, const Value& attribute, bool case_sensitive) {
  auto body = [=, seen = ValueList()](SourceItems& items, Value& out) mutable {
    for (Value item; items.next(item);) {
      const Value key = item_key(item, attribute, case_sensitive);
      if (const Value* part = key.unhashable()) fail("unhashable type: '" + part->type_name() + "'");
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
      seen.push_back(key);
      return out = item, true;
    }
    return false;
  };
  return make_generator(v, "sync_do_unique", body);
}

// Python's min/max with a key: the first of the smallest (largest).
Value extreme(const Value& v, const Value& attribute, bool case_sensitive, bool largest) {
  const ValueList items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = item_key(items[0], attribute, case_sensitive);
  for (size_t i = 1; i < items.size(); i++) {
    const Value k = item_key(items[i], attribute, case_sensitive);
    if (largest ? less(best_key, k) : less(k, best_key)) best = i, best_key = k;
  }
  return items[best];
}

// make_attrgetter with a default: an undefined part replaced by `fallback` when one is given.
Value grouping_key(const Value& item, const Value& attribute, const Value& fallback) {
  const Value v = attribute_path(item, attribute);
  return !v.is_defined() && fallback.kind != Kind::none ? fallback : v;
}

// do_groupby: items sorted by the attribute, then runs of equal keys, each a (grouper, list)
// named tuple; without case_sensitive the grouper is the first item's own value.
Value groupby(const Value& v, std::vector<Value>& args, Kwargs& kwargs) {
  const Value attribute = required(args, kwargs, 0, "attribute", "groupby");
  const Value fallback = argument(args, kwargs, 1, "default");
  const bool case_sensitive = argument(args, kwargs, 2, "case_sensitive", Value::from(false)).truthy();
  const ValueList items = iterate(v);
  ValueList keys;
  for (const Value& item : items) keys.push_back(folded(grouping_key(item, attribute, fallback), case_sensitive));
  const std::vector<size_t> order = sorted_order(keys, false);
  static const auto fields = std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"grouper", "list"});
  ValueList groups;
  for (size_t begin = 0, end = 0; begin < order.size(); begin = end) {
    ValueList members;
    for (end = begin; end < order.size() && keys[order[end]] == keys[order[begin]]; end++) members.push_back(items[order[end]]);
    const Value first = items[order[begin]];
    Value group = Value::from(ValueList{case_sensitive ? keys[order[begin]] : grouping_key(first, attribute, fallback),
                                        Value::from(members)});
    group.is_tuple = true;
    group.fields = fields;
    groups.push_back(group);
  }
  return Value::from(groups);
}

// do_batch: lists of `linecount` items, the last filled with fill_with when one is given.
Value batch(const Value& v, std::vector<Value>& args, Kwargs& kwargs) {
  const Value linecount = required(args, kwargs, 0, "linecount", "batch");
  const Value fill_with = argument(args, kwargs, 1, "fill_with");
  auto body = [=, current = ValueList(), ended = false](SourceItems& items, Value& out) mutable {
    for (Value item; !ended && items.next(item);) {
      const bool full = Value::from(int64_t(current.size())) == linecount;
      if (full) out = Value::from(current), current.clear();
      current.push_back(item);
      if (full) return true;
    }
    ended = true;
    if (current.empty()) return false;
    if (fill_with.kind != Kind::none && less(Value::from(int64_t(current.size())), linecount)) {
      const int64_t wanted = integer_of(linecount, "batch");
      if (wanted > 1000000) fail("batch of more than 1000000 items");
      current.resize(size_t(wanted), fill_with);
    }
    out = Value::from(current);
    current.clear();
    return true;
  };
  return make_generator(v, "do_batch", body);
}

// do_slice: `slices` lists of consecutive items, the first len % slices one longer; the others
// end with fill_with when one is given.
Value slice(const Value& v, std::vector<Value>& args, Kwargs& kwargs) {
  const Value count = required(args, kwargs, 0, "slices", "slice");
  const Value fill_with = argument(args, kwargs, 1, "fill_with");
  auto body = [=, parts = ValueList(), at = size_t(0), started = false](SourceItems& items, Value& out) mutable {
    if (!started) {  // seq = list(value), then each slice
      started = true;
      const ValueList all = iterate(items.source());
      const int64_t slices = integer_of(count, "slice");
      if (slices == 0) fail("integer division or modulo by zero");
      if (slices > 1000000) fail("slice into more than 1000000 lists");
      const int64_t length = int64_t(all.size());
      const int64_t per_slice = length / slices, with_extra = length % slices;  // slices > 0 here, or none made
      int64_t offset = 0;
      for (int64_t number = 0; number < slices; number++) {
        const int64_t start = offset + number * per_slice;
        if (number < with_extra) offset++;
        const int64_t end = offset + (number + 1) * per_slice;
        ValueList part(all.begin() + start, all.begin() + end);
        if (fill_with.kind != Kind::none && number >= with_extra) part.push_back(fill_with);
        parts.push_back(Value::from(part));
      }
    }
    if (at == parts.size()) return false;
    out = parts[at++];
    return true;
  };
  return make_generator(v, "sync_do_slice", body);
}

}  // namespace

std::optional<Value> apply_sequence_filter(const std::string& name, const Value& v, std::vector<Value>& args,
                                           Kwargs& kwargs) {
  if (name == "sort") {
    const bool reverse = argument(args, kwargs, 0, "reverse", Value::from(false)).truthy();
    const bool case_sensitive = argument(args, kwargs, 1, "case_sensitive", Value::from(false)).truthy();
    const Value attribute = argument(args, kwargs, 2, "attribute");
    const ValueList items = iterate(v);
    ValueList keys;
    for (const Value& item : items) keys.push_back(sort_key(item, attribute, case_sensitive));
    return Value::from(pick(items, sorted_order(keys, reverse)));
  }
  if (name == "unique" || name == "min" || name == "max") {
    const bool case_sensitive = argument(args, kwargs, 0, "case_sensitive", Value::from(false)).truthy();
    const Value attribute = argument(args, kwargs, 1, "attribute");
    if (name == "unique") return unique(v, attribute, case_sensitive);
    return extreme(v, attribute, case_sensitive, name == "max");
  }
  if (name == "dictsort") return dictsort(v, args, kwargs);
  if (name == "groupby") return groupby(v, args, kwargs);
  if (name == "batch") return batch(v, args, kwargs);
  if (name == "slice") return slice(v, args, kwargs);
  return std::nullopt;
}

}  // namespace llm::jinja
