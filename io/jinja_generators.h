// jinja2's filters that return generators rather than lists (map, select, reject, selectattr,
// rejectattr, unique, batch, slice, items: jinja2/filters.py 3.1) run as Python generators do:
// as far as they are pulled. A generator reads its source item by item (so after `set a =
// xs|select` and `set b = a|map(...)`, a is unread until b is pulled), and an error in its body is
// raised where it is pulled, not where the filter was written. Errors are TemplateError.
#pragma once
#include <functional>
#include <string>

#include "io/jinja_value.h"

namespace llm::jinja {

// What a generator's `for item in source` reads: an iterator pulled one item at a time, anything
// else read whole at the first pull (where Python's iter() raises for what is not iterable).
class SourceItems {
 public:
  explicit SourceItems(Value source) : source_(std::move(source)) {}
  bool next(Value& out);  // false once exhausted
  const Value& source() const { return source_; }

 private:
  Value source_;
  bool read_ = false;
  ValueList items_;
  size_t at_ = 0;
};

// A generator over `source`, `function` its Python name (for its repr): each pull runs `body`
// until it yields an item into `out` (true) or returns (false); its state lives in its captures.
// Generators reading generators nest at most 1000 deep (Python's recursion limit).
using GeneratorBody = std::function<bool(SourceItems& items, Value& out)>;
Value make_generator(const Value& source, const std::string& function, GeneratorBody body);

// Python's next(iterator): the next item into `out`, false once it is exhausted.
bool next_item(const Value& iterator, Value& out);

}  // namespace llm::jinja
