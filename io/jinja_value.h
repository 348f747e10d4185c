// The values a Jinja chat template computes with, as jinja2 sees Python's: none, bools, ints,
// floats, strings, lists (and tuples), dicts in insertion order, namespaces, callables and
// Undefined. Strings carry where each part came from (Text), so that a rendered conversation
// says which bytes are a message's content: how a chat dataset knows what to train on.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace llm::jinja {

constexpr int kTemplateSource = -1;  // written by the template (or computed), not a message's

// A template that fails while it renders (an undefined name used, a bad filter argument,
// raise_exception): the renderer adds the file and the line.
struct TemplateError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A string as runs of bytes, each from one source: kTemplateSource or a message's index.
class Text {
 public:
  struct Run {
    std::string text;
    int source;
  };
  Text() = default;
  Text(std::string text, int source = kTemplateSource) { append(std::move(text), source); }
  void append(std::string text, int source);
  void append(const Text& other);
  const std::vector<Run>& runs() const { return runs_; }
  std::string str() const;
  size_t size() const;  // in bytes
  bool empty() const { return runs_.empty(); }
  // The one source every run has; kTemplateSource when they differ or there are none.
  int common_source() const;
  // Bytes [begin, end) of str(), keeping each byte's source.
  Text bytes(size_t begin, size_t end) const;
  // Python's str.strip / lstrip / rstrip on whitespace, keeping each byte's source.
  Text strip(bool left, bool right) const;

 private:
  std::vector<Run> runs_;  // never empty runs; neighbours of one source merged
};

struct Value;
using ValueList = std::vector<Value>;
using ValueDict = std::vector<std::pair<std::string, Value>>;  // insertion order, as Python's
using Kwargs = std::vector<std::pair<std::string, Value>>;
using Function = std::function<Value(std::vector<Value>& args, Kwargs& kwargs)>;

// A one-shot Python iterator: every copy of the Value shares it, so iterating one copy empties
// them all (a generator `set` once and looped twice loops once, as in jinja2).
struct Iterator {
  std::function<bool(Value& out)> next;  // the next item into out; false once exhausted
  int depth = 1;                         // generators reading generators: this one's nesting
};

struct Value {
  // iterator: what jinja2's map, select, unique, batch, slice, items and reverse return (a
  // generator or reverse iterator: always true, no len, not subscriptable, not JSON).
  // view: a dict's keys(), values() or items() (a len, iterable again, not subscriptable).
  enum class Kind { undefined, none, boolean, integer, number, string, list, dict, function, iterator, view };
  Kind kind = Kind::undefined;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0;
  Text text;
  std::shared_ptr<ValueList> list;  // lists, tuples and views
  std::shared_ptr<Iterator> iterator;
  std::shared_ptr<ValueDict> dict;  // dicts and namespaces (shared: a namespace is mutable)
  bool is_tuple = false;      // a list that prints as Python's tuple: (a, b)
  bool is_namespace = false;
  std::shared_ptr<const std::vector<std::string>> fields;  // a named tuple's (groupby's grouper, list)
  std::shared_ptr<Function> function;
  // undefined: what was looked up, for the error when it is used; a generator: its function
  std::string name;
  std::string python_type;  // an iterator's or view's: generator, list_reverseiterator, dict_keys...

  static Value undefined(std::string what);
  static Value none();
  static Value from(bool b);
  static Value from(int64_t i);
  static Value from(double d);
  static Value from(Text t);
  static Value from(std::string s) { return from(Text(std::move(s))); }
  static Value from(const char* s) { return from(Text(s)); }
  static Value from(ValueList items);
  static Value from(ValueDict items);
  static Value from(Function f);
  // `function`: the generator function that yields the items (python_type generator).
  static Value make_iterator(std::function<bool(Value& out)> next, std::string python_type, std::string function = "");
  static Value make_iterator(ValueList items, std::string python_type, std::string function = "");
  static Value make_view(ValueList items, std::string python_type);

  bool is_defined() const { return kind != Kind::undefined; }
  bool is_numeric() const {
    return kind == Kind::boolean || kind == Kind::integer || kind == Kind::number;
  }
  double as_double() const;  // numeric kinds
  bool truthy() const;       // Python's bool()
  // The member `key` of a dict; undefined when absent or this is no dict.
  Value member(const std::string& key) const;
  Text to_text() const;     // Python's str() (strings keep their sources)
  std::string repr() const;  // Python's repr(), as str() writes list and dict items
  std::string type_name() const;
  // What makes Python's hash() fail: this list, dict or view, or one a tuple holds; else null.
  const Value* unhashable() const;
};

bool operator==(const Value& a, const Value& b);  // Python's ==
// Python's <: numbers, strings (code point order) and lists; false with *ok false otherwise.
bool less_than(const Value& a, const Value& b, bool* ok);

// json.dumps' options, as transformers' tojson filter passes them (ensure_ascii off by default).
struct JsonStyle {
  std::optional<std::string> indent;  // each level's indent (an int n: n spaces); none: one line
  std::string item_separator = ", ", key_separator = ": ";  // ",", ": " once indented
  bool ensure_ascii = false, sort_keys = false;
};
std::string to_json(const Value& v, const JsonStyle& style);

}  // namespace llm::jinja
