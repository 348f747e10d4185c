// defines: SourceItems, make_generator, next_item
#include "io/jinja_generators.h"

#include <memory>

#include "io/jinja_builtins.h"
#include "io/jinja_methods.h"

namespace llm::jinja {

constexpr int kMaxGeneratorDepth = 1000;

bool SourceItems::next(Value& out) {
  if (source_.kind == Value::Kind::iterator) return next_item(source_, out);
  if (!read_) read_ = true, items_ = iterate(source_);
  if (at_ == items_.size()) return false;
  out = items_[at_++];
  return true;
}

Value make_generator(const Value& source, const std::string& function, GeneratorBody body) {
  const int depth = source.kind == Value::Kind::iterator ? source.iterator->depth + 1 : 1;
  if (depth > kMaxGeneratorDepth) fail("maximum recursion depth exceeded (generators nested deeper than 1000)");
  auto items = std::make_shared<SourceItems>(source);
  Value v = Value::make_iterator([items, body = std::move(body)](Value& out) { return body(*items, out); },
                                 "generator", function);
  v.iterator->depth = depth;
  return v;
}

bool next_item(const Value& iterator, Value& out) {
  Iterator& it = *iterator.iterator;
  if (!it.next) return false;
  if (it.next(out)) return true;
  it.next = nullptr;  // exhausted for good, as Python's; what its body held is let go
  return false;
}

}  // namespace llm::jinja
