/* SPDX-License-Identifier: LGPL-2.1-or-later */
// A small Python pickle virtual machine (protocols 0-5) for data we do not
// trust: torch.save's data.pkl and CIFAR's python batches. It executes no
// Python: GLOBAL/STACK_GLOBAL become Global nodes and REDUCE/NEWOBJ become
// Call nodes that the caller interprets (or rejects). The machine is
// iterative, bounds-checks every read, caps the number of objects it makes,
// and reports every problem as a vs::Error naming the source and byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace vs {

struct PickleValue {
  enum class Kind {
    None,
    Bool,
    Int,
    Float,
    String,  // text: UTF-8 as stored (unicode opcodes)
    Bytes,   // text: raw bytes (bytes, bytearray, and python 2 str)
    List,
    Tuple,
    Dict,
    Set,
    Global,        // text: module, name: qualified name
    Call,          // callable(args...), an object under construction
    PersistentId,  // items[0]: the id, resolved by the caller
  };

  Kind kind = Kind::None;
  size_t offset = 0;  // byte offset of the opcode that made the value

  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string text;
  std::string name;

  // List, Tuple, Set: elements. PersistentId: the id.
  std::vector<const PickleValue*> items;
  // Dict: entries in insertion order. Call: SETITEM(S) applied to the object
  // (an OrderedDict built by REDUCE receives its items this way).
  std::vector<std::pair<const PickleValue*, const PickleValue*>> entries;
  // Call only: the callable, its argument tuple (shared, never copied, so
  // hostile input cannot multiply memory), what APPEND(S) added, NEWOBJ_EX
  // keyword arguments, and the state BUILD gave the object.
  std::vector<const PickleValue*> appended;
  const PickleValue* callable = nullptr;
  const PickleValue* args = nullptr;
  const PickleValue* kwargs = nullptr;
  const PickleValue* state = nullptr;

  bool is_global(std::string_view module, std::string_view qualname) const;
  // A Call whose callable is module.qualname.
  bool is_call(std::string_view module, std::string_view qualname) const;
  // String or Bytes.
  bool is_text() const { return kind == Kind::String || kind == Kind::Bytes; }
  // Dict or Call entries: the value whose String or Bytes key equals key.
  const PickleValue* find(std::string_view key) const;
  // Call: argument i, or nullptr.
  const PickleValue* arg(size_t i) const {
    return args && i < args->items.size() ? args->items[i] : nullptr;
  }
  const char* kind_name() const;
};

// Python 3 pickles bytes at protocol 2 as _codecs.encode(text, "latin1"):
// every code point of text is one byte. Returns false if one is above 255.
bool latin1_from_utf8(std::string_view text, std::string* out);

class PickleReader {
 public:
  // data must outlive the reader. context names the data in error messages,
  // e.g. "/models/resnet18.pth (archive/data.pkl)".
  PickleReader(const uint8_t* data, size_t size, std::string context);

  PickleReader(const PickleReader&) = delete;
  PickleReader& operator=(const PickleReader&) = delete;

  // Runs the program up to STOP. The result lives as long as the reader.
  const PickleValue& load();

  // Throws a vs::Error about a value the caller cannot interpret, in the same
  // form as the reader's own errors.
  [[noreturn]] void reject(const PickleValue& value, const std::string& what) const;

  // After load() threw because the data ended early (a truncated file):
  // the stack as it was, bottom first, MARKs dropped; a string whose payload
  // was cut short holds the bytes that were there. Lets a caller salvage what
  // a truncated file still holds. Empty after any other outcome.
  std::vector<const PickleValue*> partial_stack() const;

  // Hostile input must not make us allocate without bound: every opcode makes
  // at most one object, so capping objects caps memory.
  static constexpr size_t kMaxObjects = size_t(1) << 22;

 private:
  [[noreturn]] void fail(size_t offset, const std::string& what) const;
  [[noreturn]] void ended_early(const std::string& what);

  PickleValue* make(PickleValue::Kind kind);
  PickleValue* pop();
  PickleValue* top();
  std::vector<PickleValue*> pop_to_mark();
  const uint8_t* take(size_t n, const char* opcode);
  uint64_t read_le(size_t n, const char* opcode);
  std::string_view read_line(const char* opcode);

  void push_text(PickleValue::Kind kind, size_t n, const char* opcode);
  void push_long(size_t n);
  void push_text_int(std::string_view line, bool is_long);
  void push_quoted_string(std::string_view line);
  void push_raw_unicode(std::string_view line);
  void push_sequence(PickleValue::Kind kind, const std::vector<PickleValue*>& items);
  void push_global(std::string module, std::string name);
  void reduce(PickleValue* callable, PickleValue* args);
  void set_items(PickleValue* target, const std::vector<PickleValue*>& kv);
  void append_items(PickleValue* target, const std::vector<PickleValue*>& values);
  void memo_put(uint64_t index);
  void memo_get(uint64_t index);

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  size_t op_start_ = 0;
  bool ended_early_ = false;
  std::string context_;

  std::deque<PickleValue> arena_;  // stable addresses, flat destruction
  std::vector<PickleValue*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleValue*> memo_;
  PickleValue* none_ = nullptr;
  PickleValue* true_ = nullptr;
  PickleValue* false_ = nullptr;
};

}  // namespace vs
