// defines: apply_filter, apply_test, attribute_of, item_of, slice_of, iterate, global_functions
#include "io/jinja_builtins.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include "io/jinja_format.h"
#include "io/jinja_generators.h"
#include "io/jinja_methods.h"
#include "io/jinja_number_filters.h"
#include "io/jinja_sequence_filters.h"
#include "io/jinja_text_filters.h"
#include "io/python_unicode.h"

namespace llm::jinja {
namespace {

using Kind = Value::Kind;

// subject.name as a function value: the method bound to its object.
Value bound_method(const Value& self, const std::string& name,
                   Value (*method)(const Value&, const std::string&, std::vector<Value>&, Kwargs&)) {
  return Value::from(Function([self, name, method](std::vector<Value>& args, Kwargs& kwargs) {
    return method(self, name, args, kwargs);
  }));
}

Value attribute_keyword(const Kwargs& kwargs) { return argument({}, kwargs, 0, "attribute"); }

bool given(const Value& attribute) { return attribute.kind != Kind::none && attribute.is_defined(); }

// select / reject / selectattr / rejectattr: select_or_reject, whose body starts `if value:`
// and then reads its arguments once.
Value select_items(const Value& subject, const std::vector<Value>& args, bool keep, bool by_attribute) {
  auto body = [=, started = false, attribute = Value::none(), test = std::string(),
               test_args = std::vector<Value>()](SourceItems& items, Value& out) mutable {
    if (!started) {
      started = true;
      if (!subject.truthy()) return false;
      const size_t first_test = by_attribute ? 1 : 0;
      if (by_attribute) attribute = argument(args, {}, 0, "");
      if (args.size() > first_test) test = string_of(args[first_test], "select").str();
      test_args.assign(args.begin() + std::ptrdiff_t(std::min(args.size(), first_test + 1)), args.end());
    }
    for (Value item; items.next(item);) {
      const Value v = by_attribute ? attribute_path(item, attribute) : item;
      if ((test.empty() ? v.truthy() : apply_test(test, v, test_args)) == keep) return out = item, true;
    }
    return false;
  };
  return make_generator(subject, "select_or_reject", body);
}

// sync_do_map: each item's attribute (or `default` where it has none), or each item through the
// filter named first; `if value:`, then prepare_map reads the arguments once.
Value map_items(const Value& subject, const std::vector<Value>& args, const Kwargs& kwargs) {
  const Value attribute = attribute_keyword(kwargs), fallback = argument({}, kwargs, 0, "default");
  auto body = [=, started = false, filter = std::string(), rest = std::vector<Value>()](SourceItems& items,
                                                                                       Value& out) mutable {
    if (!started) {
      started = true;
      if (!subject.truthy()) return false;
      if (!given(attribute) && args.empty()) fail("map requires a filter argument");
      if (!given(attribute)) filter = string_of(args[0], "map").str();
      rest.assign(args.begin() + std::ptrdiff_t(std::min<size_t>(args.size(), 1)), args.end());
    }
    Value item;
    if (!items.next(item)) return false;
    if (given(attribute)) {
      const Value found = attribute_path(item, attribute);  // make_attrgetter's default
      out = !found.is_defined() && fallback.kind != Kind::none ? fallback : found;
      return true;
    }
    std::vector<Value> item_args = rest;  // a filter may take its arguments over
    Kwargs none;
    out = apply_filter(filter, item, item_args, none);
    return true;
  };
  return make_generator(subject, "sync_do_map", body);
}

// do_items: a mapping's (key, value) pairs; Undefined has none; what is no mapping fails when pulled.
Value item_pairs(const Value& subject) {
  auto body = [pairs = ValueList(), at = size_t(0), started = false](SourceItems& items, Value& out) mutable {
    const Value& v = items.source();
    if (!started) {
      started = true;
      if (!v.is_defined()) return false;
      if (v.kind != Kind::dict) fail("Can only get item pairs from a mapping.");
      std::vector<Value> no_args;
      Kwargs no_kwargs;
      pairs = iterate(dict_method(v, "items", no_args, no_kwargs));
    }
    if (at == pairs.size()) return false;
    out = pairs[at++];
    return true;
  };
  return make_generator(subject, "do_items", body);
}

// do_reverse: a string reversed; a sequence's reverse iterator (Python's type for each); what
// reversed() refuses (a generator) listed and reversed.
Value reversed(const Value& v) {
  ValueList items = iterate(v);
  std::reverse(items.begin(), items.end());
  if (v.kind == Kind::string) return join_values(items, Text());
  if (v.kind == Kind::iterator) return Value::from(items);
  if (v.kind == Kind::dict) return Value::make_iterator(items, "dict_reversekeyiterator");
  if (v.kind == Kind::view) {  // dict_keys -> dict_reversekeyiterator
    const std::string of = v.python_type.substr(5, v.python_type.size() - 6);
    return Value::make_iterator(items, "dict_reverse" + of + "iterator");
  }
  return Value::make_iterator(items, v.kind == Kind::list && !v.is_tuple ? "list_reverseiterator" : "reversed");
}

}  // namespace

Value attribute_of(const Value& subject, const std::string& name) {
  // The sandbox hides what every Python object has (Undefined too): unsafe, so Undefined.
  for (const char* hidden : {"__class__", "__dict__", "__doc__", "__init__", "__module__"})
    if (name == hidden) return Value::undefined(name);
  if (subject.kind == Kind::undefined) fail("'" + subject.name + "' is undefined");
  if (subject.is_numeric() && (name == "real" || name == "imag")) {  // a bool's are an int's
    const bool whole = subject.kind != Kind::number;
    if (name == "imag") return whole ? Value::from(int64_t(0)) : Value::from(0.0);
    return whole ? Value::from(int64_t(subject.kind == Kind::integer ? subject.integer : subject.boolean)) : subject;
  }
  if (subject.kind == Kind::string && is_string_method(name)) return bound_method(subject, name, string_method);
  if (subject.kind == Kind::list && (name == "index" || name == "count"))
    return bound_method(subject, name, list_method);
  if (name == "copy" && ((subject.kind == Kind::list && !subject.is_tuple && !subject.fields) ||
                         (subject.kind == Kind::dict && !subject.is_namespace)))
    return bound_method(subject, name, copy_method);
  if (subject.kind == Kind::string && (name == "format" || name == "format_map" || name == "expandtabs" ||
                                       name == "translate" || name == "encode"))
    fail("str." + name + " is not supported in chat templates here");
  if (subject.kind == Kind::dict && !subject.is_namespace &&
      (name == "items" || name == "keys" || name == "values" || name == "get"))
    return bound_method(subject, name, dict_method);
  if (subject.kind == Kind::list && subject.fields) {  // a named tuple's field (groupby's grouper, list)
    const auto at = std::find(subject.fields->begin(), subject.fields->end(), name);
    if (at != subject.fields->end()) return (*subject.list)[size_t(at - subject.fields->begin())];
  }
  Value v = subject.member(name);
  if (!v.is_defined()) v.name = name;
  return v;
}

Value attribute_path(const Value& subject, const Value& attribute) {
  ValueList parts{attribute};
  if (attribute.kind == Kind::string) {
    parts.clear();
    for (const Value& part : split_text(attribute.text, Value::from("."), -1)) {
      const std::string p = part.text.str();
      const bool digits = !p.empty() && p.size() < 19 && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
      parts.push_back(digits ? Value::from(int64_t(std::stoll(p))) : part);
    }
  }
  Value v = subject;
  for (const Value& part : parts) {  // environment.getitem: the item, else the attribute
    Value found = item_of(v, part);
    if (!found.is_defined() && part.kind == Kind::string) found = attribute_of(v, part.text.str());
    v = found;
  }
  return v;
}

Value item_of(const Value& subject, const Value& key) {
  if (subject.kind == Kind::undefined) fail("'" + subject.name + "' is undefined");
  if (subject.kind == Kind::dict && key.kind == Kind::string) {  // the member before a method
    Value v = subject.member(key.text.str());
    if (!v.is_defined()) v.name = key.text.str();
    return v;
  }
  if ((subject.kind == Kind::list || subject.kind == Kind::string) &&
      (key.kind == Kind::integer || key.kind == Kind::boolean)) {
    int64_t i = integer_of(key, "[]");
    if (subject.kind == Kind::list) {
      const int64_t n = int64_t(subject.list->size());
      if (i < 0) i += n;
      return i >= 0 && i < n ? (*subject.list)[size_t(i)] : Value::undefined("index " + std::to_string(i));
    }
    const int64_t n = int64_t(code_points(subject.text.str()).size()) - 1;
    if (i < -n || i >= n) return Value::undefined("index " + std::to_string(i));
    return slice_of(subject, Value::from(i), Value::from(i == -1 ? INT64_MAX : i + 1), Value::none());
  }
  return Value::undefined(key.repr());
}

Value slice_of(const Value& subject, const Value& start, const Value& stop, const Value& step_value) {
  if (subject.kind != Kind::list && subject.kind != Kind::string) fail("cannot slice a " + subject.type_name());
  const std::string s = subject.kind == Kind::string ? subject.text.str() : "";
  const std::vector<size_t> at = subject.kind == Kind::string ? code_points(s) : std::vector<size_t>();
  const int64_t n = subject.kind == Kind::list ? int64_t(subject.list->size()) : int64_t(at.size()) - 1;
  // An Undefined bound fails as Python's slice does on it (a TypeError jinja2 lets through).
  const auto given = [](const Value& v) { return v.kind != Kind::none; };
  const int64_t step = given(step_value) ? integer_of(step_value, "slice") : 1;
  if (step == 0) fail("slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t fallback) {
    if (!given(v)) return fallback;
    int64_t i = integer_of(v, "slice");
    if (i < 0) i += n;
    return step > 0 ? std::clamp<int64_t>(i, 0, n) : std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t begin = clamp(start, step > 0 ? 0 : n - 1), end = clamp(stop, step > 0 ? n : -1);
  if (subject.kind == Kind::string && step == 1)
    return Value::from(subject.text.bytes(at[size_t(begin)], at[size_t(std::max(begin, end))]));
  ValueList items;
  Text text;
  for (int64_t i = begin; step > 0 ? i < end : i > end; i += step) {
    if (subject.kind == Kind::list) items.push_back((*subject.list)[size_t(i)]);
    else text.append(subject.text.bytes(at[size_t(i)], at[size_t(i) + 1]));
  }
  if (subject.kind != Kind::list) return Value::from(text);
  Value out = Value::from(items);
  out.is_tuple = subject.is_tuple;  // a tuple's slice is a tuple
  return out;
}

ValueList iterate(const Value& subject) {
  switch (subject.kind) {
    case Kind::undefined: return {};
    case Kind::list: case Kind::view: return *subject.list;
    case Kind::iterator: {
      ValueList rest;
      for (Value item; next_item(subject, item);) rest.push_back(item);
      return rest;
    }
    case Kind::dict: {
      ValueList keys;
      for (const auto& [k, v] : *subject.dict) keys.push_back(Value::from(k));
      return keys;
    }
    case Kind::string: {
      ValueList chars;
      const std::vector<size_t> at = code_points(subject.text.str());
      for (size_t i = 0; i + 1 < at.size(); i++) chars.push_back(Value::from(subject.text.bytes(at[i], at[i + 1])));
      return chars;
    }
    default: fail("cannot iterate over a " + subject.type_name());
  }
}

bool ordered(const std::string& op, const Value& a, const Value& b) {
  for (const Value* x : {&a, &b})
    if (!x->is_defined()) fail("'" + x->name + "' is undefined");  // Undefined's comparisons raise
  bool ok = true;
  const bool result = op == "<" ? less_than(a, b, &ok) : op == ">" ? less_than(b, a, &ok)
                      : op == "<=" ? !less_than(b, a, &ok) : !less_than(a, b, &ok);
  if (!ok) fail("'" + op + "' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
  return result;
}

bool contains(const Value& container, const Value& item) {
  if (container.kind == Kind::string) {
    if (item.kind != Kind::string) fail("'in <string>' requires string as left operand, not " + item.type_name());
    return container.text.str().find(item.text.str()) != std::string::npos;
  }
  if (const Value* part = container.kind == Kind::dict ? item.unhashable() : nullptr)
    fail("unhashable type: '" + part->type_name() + "'");  // a dict's keys are hashed
  if (container.kind == Kind::iterator) {
    for (Value v; next_item(container, v);)
      if (v == item) return true;
    return false;
  }
  for (const Value& v : iterate(container))
    if (v == item) return true;
  return false;
}

bool apply_test(const std::string& name, const Value& v, const std::vector<Value>& args) {
  // Python checks the call's arguments: the comparisons, divisibleby, in and sameas take one.
  static const std::vector<std::string> with_argument{"divisibleby", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<",
                                                      "gt", "greaterthan", ">", "le", "<=", "ge", ">=", "in", "sameas"};
  static const std::vector<std::string> without{"defined", "undefined", "none", "boolean", "true", "false", "integer", "float",
                                                "number", "string", "mapping", "iterable", "sequence", "callable", "odd",
                                                "even", "lower", "upper"};
  const size_t wanted = std::find(with_argument.begin(), with_argument.end(), name) != with_argument.end() ? 1 : 0;
  if (!wanted && std::find(without.begin(), without.end(), name) == without.end()) fail("no test named '" + name + "'");
  if (args.size() > wanted)
    fail("test_" + name + "() takes " + std::to_string(wanted + 1) + " positional argument" + (wanted ? "s" : "") +
         " but " + std::to_string(args.size() + 1) + " were given");
  if (args.size() < wanted) fail("test_" + name + "() missing 1 required positional argument");
  const Value arg = args.empty() ? Value::none() : args[0];
  if (name == "defined") return v.is_defined();
  if (name == "undefined") return !v.is_defined();
  if (name == "none") return v.kind == Kind::none;
  if (name == "boolean") return v.kind == Kind::boolean;
  if (name == "true" || name == "false") return v.kind == Kind::boolean && v.boolean == (name == "true");
  if (name == "integer") return v.kind == Kind::integer;
  if (name == "float") return v.kind == Kind::number;
  if (name == "number") return v.is_numeric();
  if (name == "string") return v.kind == Kind::string;
  if (name == "mapping") return v.kind == Kind::dict && !v.is_namespace;
  if (name == "iterable" || name == "sequence")  // Undefined iterates as empty and has a length
    return v.kind == Kind::list || v.kind == Kind::dict || v.kind == Kind::string || v.kind == Kind::undefined ||
           (name == "iterable" && (v.kind == Kind::iterator || v.kind == Kind::view));
  if (name == "callable") return v.kind == Kind::function || v.kind == Kind::undefined;  // Undefined has __call__
  if (name == "odd" || name == "even" || name == "divisibleby") {  // value % n == 1 (or 0), floats too
    const Value divisor = name == "divisibleby" ? arg : Value::from(int64_t(2));
    if (v.kind == Kind::number || divisor.kind == Kind::number) {
      if (!v.is_numeric() || !divisor.is_numeric()) fail(name + " expects numbers");
      if (divisor.as_double() == 0) fail("float modulo");
      const double remainder = std::fmod(v.as_double(), divisor.as_double());
      return name == "odd" ? remainder == 1 || remainder == -1 : remainder == 0;
    }
    const int64_t n = integer_of(divisor, name);
    if (n == 0) fail("integer division or modulo by zero");
    const int64_t remainder = integer_of(v, name) % n;
    return name == "odd" ? remainder != 0 : remainder == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return v == arg;
  if (name == "ne" || name == "!=") return !(v == arg);
  if (name == "lt" || name == "lessthan" || name == "<") return ordered("<", v, arg);
  if (name == "gt" || name == "greaterthan" || name == ">") return ordered(">", v, arg);
  if (name == "le" || name == "<=") return ordered("<=", v, arg);
  if (name == "ge" || name == ">=") return ordered(">=", v, arg);
  if (name == "in") return contains(arg, v);
  if (name == "lower") return python_islower(v.to_text().str());
  if (name == "upper") return python_isupper(v.to_text().str());
  // sameas: Python's `is`. Containers are the same object only when they share their items (a
  // list literal, copy() or a filter's result is a new one); scalars by value and kind (None,
  // True and False are singletons; a template cannot tell other scalars' identities apart).
  if (v.kind != arg.kind) return false;
  if (v.kind == Kind::list || v.kind == Kind::view) return v.list == arg.list;
  if (v.kind == Kind::dict) return v.dict == arg.dict;
  if (v.kind == Kind::iterator) return v.iterator == arg.iterator;
  return v == arg;
}

Value apply_filter(const std::string& name, const Value& v, std::vector<Value>& args, Kwargs& kwargs) {
  if (name == "default" || name == "d") {
    const bool boolean = argument(args, kwargs, 1, "boolean", Value::from(false)).truthy();
    return !v.is_defined() || (boolean && !v.truthy()) ? argument(args, kwargs, 0, "default_value", Value::from("")) : v;
  }
  if (name == "safe" || name == "string") return Value::from(v.to_text());  // safe: Markup(value), a str
  if (name == "trim") return Value::from(strip_text(v.to_text(), argument(args, kwargs, 0, "chars"), true, true));
  if (name == "upper" || name == "lower" || name == "capitalize" || name == "replace") {
    if (name == "replace") {  // do_replace: str(s).replace(str(old), str(new), count)
      for (size_t i = 0; i < std::min<size_t>(args.size(), 2); i++) args[i] = Value::from(args[i].to_text());
      for (auto& [key, value] : kwargs)
        if (key == "old" || key == "new") value = Value::from(value.to_text());
    }
    const Value s = Value::from(v.to_text());
    return string_method(s, name, args, kwargs);
  }
  if (name == "length" || name == "count") {
    if (v.kind == Kind::string) return Value::from(int64_t(code_points(v.text.str()).size() - 1));
    if (v.kind == Kind::dict) return Value::from(int64_t(v.dict->size()));
    if (v.kind == Kind::iterator) fail("object of type '" + v.type_name() + "' has no len()");
    return Value::from(int64_t(iterate(v).size()));
  }
  if (name == "tojson") {  // transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
    JsonStyle style;
    style.ensure_ascii = argument(args, kwargs, 0, "ensure_ascii", Value::from(false)).truthy();
    const Value indent = argument(args, kwargs, 1, "indent");
    if (indent.kind == Kind::string) style.indent = indent.text.str();
    else if (indent.kind != Kind::none) style.indent = std::string(size_t(std::clamp<int64_t>(integer_of(indent, "tojson"), 0, 1000)), ' ');
    if (style.indent) style.item_separator = ",";
    const Value separators = argument(args, kwargs, 2, "separators");
    if (separators.kind != Kind::none) {
      const ValueList pair = iterate(separators);
      if (pair.size() != 2) fail("tojson: separators must be an (item_separator, key_separator) pair");
      style.item_separator = string_of(pair[0], "tojson").str();
      style.key_separator = string_of(pair[1], "tojson").str();
    }
    style.sort_keys = argument(args, kwargs, 3, "sort_keys", Value::from(false)).truthy();
    return Value::from(to_json(v, style));
  }
  if (name == "format") {  // jinja2's do_format: soft_str(value) % (kwargs or args)
    if (!args.empty() && !kwargs.empty()) fail("can't handle positional and keyword arguments at the same time");
    Value values = kwargs.empty() ? Value::from(ValueList(args)) : Value::from(ValueDict(kwargs.begin(), kwargs.end()));
    values.is_tuple = kwargs.empty();
    return Value::from(percent_format(v.to_text(), values));
  }
  if (name == "list") return Value::from(iterate(v));
  if (name == "first" && v.kind == Kind::iterator) {  // next(): the rest stays for later
    Value item;
    return next_item(v, item) ? item : Value::undefined("an empty sequence's first");
  }
  if (name == "last" && v.kind == Kind::iterator) fail("'" + v.type_name() + "' object is not reversible");
  if (name == "first" || name == "last") {
    const ValueList items = iterate(v);
    if (items.empty()) return Value::undefined("an empty sequence's " + name);
    return name == "first" ? items.front() : items.back();
  }
  if (name == "join") {
    const Value attribute = attribute_keyword(kwargs);
    ValueList items = iterate(v);
    if (given(attribute))
      for (Value& item : items) item = attribute_path(item, attribute);
    return join_values(items, argument(args, kwargs, 0, "d", Value::from("")).to_text());
  }
  if (name == "items") return item_pairs(v);
  if (name == "reverse") return reversed(v);
  if (name == "map") return map_items(v, args, kwargs);
  if (name == "select" || name == "reject") return select_items(v, args, name == "select", false);
  if (name == "selectattr" || name == "rejectattr") return select_items(v, args, name == "selectattr", true);
  if (name == "attr") {  // getattr only: a dict's keys are items, not attributes
    const std::string attribute = string_of(argument(args, kwargs, 0, "name"), "attr").str();
    if (v.kind == Kind::dict && !v.is_namespace && attribute != "items" && attribute != "keys" &&
        attribute != "values" && attribute != "get")
      return Value::undefined(attribute);
    return attribute_of(v, attribute);
  }
  if (name == "indent") {  // do_indent: the lines of value + "\n" as str.splitlines cuts them
    if (v.kind == Kind::undefined) fail("'" + v.name + "' is undefined");
    if (v.kind == Kind::list && v.is_tuple) fail("can only concatenate tuple (not \"str\") to tuple");
    if (v.kind == Kind::list) fail("'list' object has no attribute 'splitlines'");  // list += "\n" extends it
    if (v.kind != Kind::string)
      fail("unsupported operand type(s) for +=: '" + (v.kind == Kind::none ? "NoneType" : v.type_name()) + "' and 'str'");
    const Value width = argument(args, kwargs, 0, "width", Value::from(int64_t(4)));
    const int64_t spaces = width.kind == Kind::string ? 0 : integer_of(width, "indent");
    if (spaces > 100000) fail("indent wider than 100000");
    const std::string pad = width.kind == Kind::string ? width.text.str() : std::string(size_t(std::max<int64_t>(spaces, 0)), ' ');
    const bool first = argument(args, kwargs, 1, "first", Value::from(false)).truthy();
    const bool blank = argument(args, kwargs, 2, "blank", Value::from(false)).truthy();
    Text text = v.to_text();
    text.append("\n", kTemplateSource);
    std::vector<Value> none;
    Kwargs no_kwargs;
    const ValueList lines = *string_method(Value::from(text), "splitlines", none, no_kwargs).list;
    Text out;
    if (first) out.append(pad, kTemplateSource);
    for (size_t i = 0; i < lines.size(); i++) {
      if (i) out.append("\n", kTemplateSource);
      if (i && (blank || !lines[i].text.empty())) out.append(pad, kTemplateSource);
      out.append(lines[i].text);
    }
    return Value::from(out);
  }
  if (name == "sum") {
    const Value attribute = argument(args, kwargs, 0, "attribute");
    Value total = argument(args, kwargs, 1, "start", Value::from(int64_t(0)));
    for (const Value& item : iterate(v)) {
      const Value x = given(attribute) ? attribute_path(item, attribute) : item;
      if (!x.is_numeric() || !total.is_numeric()) fail("sum expects numbers");
      total = x.kind == Kind::number || total.kind == Kind::number ? Value::from(total.as_double() + x.as_double())
                                                                   : Value::from(int64_t(total.as_double()) + int64_t(x.as_double()));
    }
    return total;
  }
  if (std::optional<Value> out = apply_number_filter(name, v, args, kwargs)) return *out;
  if (std::optional<Value> out = apply_text_filter(name, v, args, kwargs)) return *out;
  if (std::optional<Value> out = apply_sequence_filter(name, v, args, kwargs)) return *out;
  fail("no filter named '" + name + "'");
}

ValueDict global_functions() {
  ValueDict globals;
  globals.emplace_back("range", Value::from(Function([](std::vector<Value>& args, Kwargs&) {
    if (args.empty() || args.size() > 3) fail("range expects 1 to 3 integers");
    const int64_t start = args.size() > 1 ? integer_of(args[0], "range") : 0;
    const int64_t stop = integer_of(args[args.size() > 1 ? 1 : 0], "range");
    const int64_t step = args.size() > 2 ? integer_of(args[2], "range") : 1;
    if (step == 0) fail("range step cannot be zero");
    ValueList items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (items.size() >= 1000000) fail("range longer than 1000000 items");
      items.push_back(Value::from(i));
    }
    return Value::from(items);
  })));
  const auto make_dict = [](bool is_namespace) {
    return Value::from(Function([is_namespace](std::vector<Value>& args, Kwargs& kwargs) {
      Value d = Value::from(ValueDict());
      d.is_namespace = is_namespace;
      for (const Value& a : args)  // namespace(other_dict)
        if (a.kind == Kind::dict) *d.dict = *a.dict;
      for (auto& [k, value] : kwargs) {
        auto it = std::find_if(d.dict->begin(), d.dict->end(), [&k = k](const auto& e) { return e.first == k; });
        if (it != d.dict->end()) it->second = value;
        else d.dict->emplace_back(k, value);
      }
      return d;
    }));
  };
  globals.emplace_back("namespace", make_dict(true));
  globals.emplace_back("dict", make_dict(false));
  globals.emplace_back("raise_exception", Value::from(Function([](std::vector<Value>& args, Kwargs&) -> Value {
    throw TemplateError("the template raised: " + (args.empty() ? std::string() : args[0].to_text().str()));
  })));
  // transformers' strftime_now: today's date in the template's format.
  globals.emplace_back("strftime_now", Value::from(Function([](std::vector<Value>& args, Kwargs&) {
    const std::string format = args.empty() ? "" : string_of(args[0], "strftime_now").str();
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm local{};
    localtime_r(&now, &local);
    char buf[256] = {0};
    std::strftime(buf, sizeof buf, format.c_str(), &local);
    return Value::from(std::string(buf));
  })));
  return globals;
}

}  // namespace llm::jinja
