// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/base/pickle_reader.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "engine/base/error.h"

namespace vs {

namespace {

using Kind = PickleValue::Kind;

enum Opcode : uint8_t {
  MARK = '(',
  STOP = '.',
  POP = '0',
  POP_MARK = '1',
  DUP = '2',
  FLOAT = 'F',
  INT = 'I',
  BININT = 'J',
  BININT1 = 'K',
  LONG = 'L',
  BININT2 = 'M',
  NONE = 'N',
  PERSID = 'P',
  BINPERSID = 'Q',
  REDUCE = 'R',
  STRING = 'S',
  BINSTRING = 'T',
  SHORT_BINSTRING = 'U',
  UNICODE = 'V',
  BINUNICODE = 'X',
  APPEND = 'a',
  BUILD = 'b',
  GLOBAL = 'c',
  DICT = 'd',
  EMPTY_DICT = '}',
  APPENDS = 'e',
  GET = 'g',
  BINGET = 'h',
  INST = 'i',
  LONG_BINGET = 'j',
  LIST = 'l',
  EMPTY_LIST = ']',
  OBJ = 'o',
  PUT = 'p',
  BINPUT = 'q',
  LONG_BINPUT = 'r',
  SETITEM = 's',
  TUPLE = 't',
  EMPTY_TUPLE = ')',
  SETITEMS = 'u',
  BINFLOAT = 'G',
  // protocol 2
  PROTO = 0x80,
  NEWOBJ = 0x81,
  EXT1 = 0x82,
  EXT2 = 0x83,
  EXT4 = 0x84,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  // protocol 3
  BINBYTES = 'B',
  SHORT_BINBYTES = 'C',
  // protocol 4
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  EMPTY_SET = 0x8f,
  ADDITEMS = 0x90,
  FROZENSET = 0x91,
  NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
  // protocol 5
  BYTEARRAY8 = 0x96,
  NEXT_BUFFER = 0x97,
  READONLY_BUFFER = 0x98,
};

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(char(cp));
  } else if (cp < 0x800) {
    out->push_back(char(0xC0 | (cp >> 6)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(char(0xE0 | (cp >> 12)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(char(0xF0 | (cp >> 18)));
    out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  }
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool latin1_from_utf8(std::string_view text, std::string* out) {
  out->clear();
  for (size_t i = 0; i < text.size();) {
    uint8_t c = uint8_t(text[i]);
    if (c < 0x80) {
      out->push_back(char(c));
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < text.size() && (uint8_t(text[i + 1]) & 0xC0) == 0x80) {
      uint32_t cp = (uint32_t(c & 0x1F) << 6) | (uint8_t(text[i + 1]) & 0x3F);
      if (cp > 0xFF) return false;
      out->push_back(char(cp));
      i += 2;
    } else {
      return false;
    }
  }
  return true;
}

bool PickleValue::is_global(std::string_view module, std::string_view qualname) const {
  return kind == Kind::Global && text == module && name == qualname;
}

bool PickleValue::is_call(std::string_view module, std::string_view qualname) const {
  return kind == Kind::Call && callable->is_global(module, qualname);
}

const PickleValue* PickleValue::find(std::string_view key) const {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it)
    if (it->first->is_text() && it->first->text == key) return it->second;
  return nullptr;
}

const char* PickleValue::kind_name() const {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::List: return "list";
    case Kind::Tuple: return "tuple";
    case Kind::Dict: return "dict";
    case Kind::Set: return "set";
    case Kind::Global: return "global";
    case Kind::Call: return "object";
    case Kind::PersistentId: return "persistent id";
  }
  return "?";
}

PickleReader::PickleReader(const uint8_t* data, size_t size, std::string context)
    : data_(data), size_(size), context_(std::move(context)) {
  none_ = make(Kind::None);
  true_ = make(Kind::Bool);
  true_->boolean = true;
  true_->integer = 1;
  false_ = make(Kind::Bool);
}

void PickleReader::fail(size_t offset, const std::string& what) const {
  throw Error(ErrorKind::Corrupt,
              context_ + ": " + what + " (at byte " + std::to_string(offset) + ")");
}

void PickleReader::ended_early(const std::string& what) {
  ended_early_ = true;
  fail(op_start_, what);
}

std::vector<const PickleValue*> PickleReader::partial_stack() const {
  if (!ended_early_) return {};
  return {stack_.begin(), stack_.end()};
}

void PickleReader::reject(const PickleValue& value, const std::string& what) const {
  fail(value.offset, what);
}

PickleValue* PickleReader::make(Kind kind) {
  if (arena_.size() >= kMaxObjects)
    fail(op_start_, "the pickle makes more than " + std::to_string(kMaxObjects) +
                        " objects; it is corrupt or not a dataset/checkpoint pickle");
  PickleValue& v = arena_.emplace_back();
  v.kind = kind;
  v.offset = op_start_;
  return &v;
}

PickleValue* PickleReader::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
    fail(op_start_, "the pickle pops from an empty stack; the file is corrupt");
  PickleValue* v = stack_.back();
  stack_.pop_back();
  return v;
}

PickleValue* PickleReader::top() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
    fail(op_start_, "the pickle reads an empty stack; the file is corrupt");
  return stack_.back();
}

std::vector<PickleValue*> PickleReader::pop_to_mark() {
  if (marks_.empty()) fail(op_start_, "the pickle has no MARK to pop to; the file is corrupt");
  size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<PickleValue*> items(stack_.begin() + mark, stack_.end());
  stack_.resize(mark);
  return items;
}

const uint8_t* PickleReader::take(size_t n, const char* opcode) {
  if (n > size_ - pos_)
    ended_early(std::string("the pickle ends inside ") + opcode + " (needs " + std::to_string(n) +
                " more bytes, " + std::to_string(size_ - pos_) + " left); the file is truncated");
  const uint8_t* p = data_ + pos_;
  pos_ += n;
  return p;
}

uint64_t PickleReader::read_le(size_t n, const char* opcode) {
  const uint8_t* p = take(n, opcode);
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

std::string_view PickleReader::read_line(const char* opcode) {
  const void* nl = std::memchr(data_ + pos_, '\n', size_ - pos_);
  if (!nl)
    ended_early(std::string("the pickle ends inside ") + opcode +
                " (no end of line); the file is truncated");
  size_t len = static_cast<const uint8_t*>(nl) - (data_ + pos_);
  std::string_view line(reinterpret_cast<const char*>(data_ + pos_), len);
  pos_ += len + 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

void PickleReader::push_text(Kind kind, size_t n, const char* opcode) {
  PickleValue* v = make(kind);
  stack_.push_back(v);
  // A payload cut short stays on the stack with what there is, for partial_stack().
  const size_t available = std::min(n, size_ - pos_);
  v->text.assign(reinterpret_cast<const char*>(data_ + pos_), available);
  take(n, opcode);
}

void PickleReader::push_long(size_t n) {
  const uint8_t* p = take(n, n <= 255 ? "LONG1" : "LONG4");
  // Two's complement, little-endian; anything beyond 64 bits must be sign fill.
  bool negative = n > 0 && (p[n - 1] & 0x80);
  for (size_t i = 8; i < n; ++i)
    if (p[i] != (negative ? 0xFF : 0x00))
      fail(op_start_, "the pickle holds an integer wider than 64 bits");
  uint64_t u = negative ? ~uint64_t(0) : 0;
  for (size_t i = 0; i < n && i < 8; ++i) {
    u &= ~(uint64_t(0xFF) << (8 * i));
    u |= uint64_t(p[i]) << (8 * i);
  }
  // From 8 bytes on, bit 63 is no longer sign fill and must agree with the sign.
  if (n >= 8 && bool(u >> 63) != negative)
    fail(op_start_, "the pickle holds an integer wider than 64 bits");
  PickleValue* v = make(Kind::Int);
  v->integer = int64_t(u);
  stack_.push_back(v);
}

void PickleReader::push_text_int(std::string_view line, bool is_long) {
  if (is_long && !line.empty() && line.back() == 'L') line.remove_suffix(1);
  if (!is_long && (line == "00" || line == "01")) {
    stack_.push_back(line == "01" ? true_ : false_);
    return;
  }
  std::string s(line);
  errno = 0;
  char* end = nullptr;
  long long value = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE)
    fail(op_start_, "the pickle holds an integer it cannot read: '" + s.substr(0, 32) + "'");
  PickleValue* v = make(Kind::Int);
  v->integer = value;
  stack_.push_back(v);
}

// STRING: a Python 2 repr, 'abc' or "abc", with backslash escapes.
void PickleReader::push_quoted_string(std::string_view line) {
  if (line.size() < 2 || (line.front() != '\'' && line.front() != '"') ||
      line.back() != line.front())
    fail(op_start_, "the pickle holds a STRING that is not quoted");
  line = line.substr(1, line.size() - 2);
  PickleValue* v = make(Kind::Bytes);
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c != '\\') {
      v->text.push_back(c);
      continue;
    }
    if (++i >= line.size()) fail(op_start_, "the pickle holds a STRING ending in a backslash");
    switch (char e = line[i]) {
      case 'n': v->text.push_back('\n'); break;
      case 't': v->text.push_back('\t'); break;
      case 'r': v->text.push_back('\r'); break;
      case '\\':
      case '\'':
      case '"': v->text.push_back(e); break;
      case 'x': {
        int hi = i + 1 < line.size() ? hex_digit(line[i + 1]) : -1;
        int lo = i + 2 < line.size() ? hex_digit(line[i + 2]) : -1;
        if (hi < 0 || lo < 0) fail(op_start_, "the pickle holds a STRING with a bad \\x escape");
        v->text.push_back(char(hi * 16 + lo));
        i += 2;
        break;
      }
      default:
        fail(op_start_, std::string("the pickle holds a STRING with an unsupported escape \\") + e);
    }
  }
  stack_.push_back(v);
}

// UNICODE: raw-unicode-escape, bytes are Latin-1 except \uXXXX and \UXXXXXXXX.
void PickleReader::push_raw_unicode(std::string_view line) {
  PickleValue* v = make(Kind::String);
  for (size_t i = 0; i < line.size(); ++i) {
    size_t digits = 0;
    if (line[i] == '\\' && i + 1 < line.size())
      digits = line[i + 1] == 'u' ? 4 : line[i + 1] == 'U' ? 8 : 0;
    if (digits == 0) {
      append_utf8(&v->text, uint8_t(line[i]));
      continue;
    }
    if (i + 2 + digits > line.size())
      fail(op_start_, "the pickle holds a UNICODE with a cut escape");
    uint32_t cp = 0;
    for (size_t k = 0; k < digits; ++k) {
      int d = hex_digit(line[i + 2 + k]);
      if (d < 0) fail(op_start_, "the pickle holds a UNICODE with a bad escape");
      cp = cp * 16 + uint32_t(d);
    }
    if (cp > 0x10FFFF) fail(op_start_, "the pickle holds a UNICODE code point out of range");
    append_utf8(&v->text, cp);
    i += 1 + digits;
  }
  stack_.push_back(v);
}

void PickleReader::push_sequence(Kind kind, const std::vector<PickleValue*>& items) {
  PickleValue* v = make(kind);
  v->items.assign(items.begin(), items.end());
  stack_.push_back(v);
}

void PickleReader::push_global(std::string module, std::string name) {
  PickleValue* v = make(Kind::Global);
  v->text = std::move(module);
  v->name = std::move(name);
  stack_.push_back(v);
}

void PickleReader::reduce(PickleValue* callable, PickleValue* args) {
  if (args->kind != Kind::Tuple)
    fail(op_start_, std::string("the pickle calls an object with ") + args->kind_name() +
                        " arguments instead of a tuple");
  std::string bytes;
  if (callable->is_global("_codecs", "encode") && args->items.size() == 2 &&
      args->items[0]->kind == Kind::String && args->items[1]->kind == Kind::String &&
      (args->items[1]->text == "latin1" || args->items[1]->text == "latin-1") &&
      latin1_from_utf8(args->items[0]->text, &bytes)) {
    PickleValue* v = make(Kind::Bytes);
    v->text = std::move(bytes);
    stack_.push_back(v);
    return;
  }
  // ... and the empty bytes object as bytes().
  if ((callable->is_global("__builtin__", "bytes") || callable->is_global("builtins", "bytes")) &&
      args->items.empty()) {
    stack_.push_back(make(Kind::Bytes));
    return;
  }
  PickleValue* v = make(Kind::Call);
  v->callable = callable;
  v->args = args;
  stack_.push_back(v);
}

void PickleReader::set_items(PickleValue* target, const std::vector<PickleValue*>& kv) {
  if (target->kind != Kind::Dict && target->kind != Kind::Call)
    fail(op_start_, std::string("the pickle sets items on a ") + target->kind_name());
  if (kv.size() % 2 != 0) fail(op_start_, "the pickle sets an item without a value");
  // Duplicate keys are kept (find() returns the last, as a Python dict
  // would): deduplicating here would cost quadratic time on hostile input.
  for (size_t i = 0; i < kv.size(); i += 2) target->entries.emplace_back(kv[i], kv[i + 1]);
}

void PickleReader::append_items(PickleValue* target, const std::vector<PickleValue*>& values) {
  if (target->kind == Kind::List)
    target->items.insert(target->items.end(), values.begin(), values.end());
  else if (target->kind == Kind::Call)
    target->appended.insert(target->appended.end(), values.begin(), values.end());
  else
    fail(op_start_, std::string("the pickle appends to a ") + target->kind_name());
}

void PickleReader::memo_put(uint64_t index) { memo_[index] = top(); }

void PickleReader::memo_get(uint64_t index) {
  auto it = memo_.find(index);
  if (it == memo_.end())
    fail(op_start_, "the pickle refers to memo entry " + std::to_string(index) +
                        " that was never stored; the file is corrupt");
  stack_.push_back(it->second);
}

const PickleValue& PickleReader::load() {
  auto line_index = [this](std::string_view line) -> uint64_t {
    uint64_t v = 0;
    if (line.empty() || line.size() > 18) fail(op_start_, "the pickle holds a bad memo index");
    for (char c : line) {
      if (c < '0' || c > '9') fail(op_start_, "the pickle holds a bad memo index");
      v = v * 10 + uint64_t(c - '0');
    }
    return v;
  };

  while (true) {
    op_start_ = pos_;
    if (pos_ >= size_) ended_early("the pickle ends before its STOP opcode; the file is truncated");
    const uint8_t op = data_[pos_++];
    switch (op) {
      case PROTO: {
        uint64_t proto = read_le(1, "PROTO");
        if (proto > 5)
          fail(op_start_, "the pickle uses protocol " + std::to_string(proto) +
                              "; only protocols 0 to 5 are known");
        break;
      }
      case FRAME:
        // Frames only group opcodes. The last one of a truncated file still
        // runs as far as it goes, so partial_stack() shows what it holds.
        read_le(8, "FRAME");
        break;
      case STOP: {
        const PickleValue* result = pop();
        return *result;
      }
      case MARK: marks_.push_back(stack_.size()); break;
      case POP:
        if (!marks_.empty() && stack_.size() == marks_.back())
          pop_to_mark();
        else
          pop();
        break;
      case POP_MARK: pop_to_mark(); break;
      case DUP: stack_.push_back(top()); break;

      case NONE: stack_.push_back(none_); break;
      case NEWTRUE: stack_.push_back(true_); break;
      case NEWFALSE: stack_.push_back(false_); break;
      case BININT: {
        PickleValue* v = make(Kind::Int);
        v->integer = int32_t(uint32_t(read_le(4, "BININT")));
        stack_.push_back(v);
        break;
      }
      case BININT1:
      case BININT2: {
        uint64_t value = op == BININT1 ? read_le(1, "BININT1") : read_le(2, "BININT2");
        PickleValue* v = make(Kind::Int);
        v->integer = int64_t(value);
        stack_.push_back(v);
        break;
      }
      case LONG1: push_long(read_le(1, "LONG1")); break;
      case LONG4: {
        int64_t n = int32_t(uint32_t(read_le(4, "LONG4")));
        if (n < 0) fail(op_start_, "the pickle holds a LONG4 with a negative size");
        push_long(size_t(n));
        break;
      }
      case INT: push_text_int(read_line("INT"), false); break;
      case LONG: push_text_int(read_line("LONG"), true); break;
      case BINFLOAT: {
        const uint8_t* p = take(8, "BINFLOAT");
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian
        PickleValue* v = make(Kind::Float);
        std::memcpy(&v->real, &bits, sizeof bits);
        stack_.push_back(v);
        break;
      }
      case FLOAT: {
        std::string s(read_line("FLOAT"));
        char* end = nullptr;
        double value = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0') fail(op_start_, "the pickle holds a FLOAT it cannot read");
        PickleValue* v = make(Kind::Float);
        v->real = value;
        stack_.push_back(v);
        break;
      }

      case SHORT_BINUNICODE:
        push_text(Kind::String, read_le(1, "SHORT_BINUNICODE"), "SHORT_BINUNICODE");
        break;
      case BINUNICODE: push_text(Kind::String, read_le(4, "BINUNICODE"), "BINUNICODE"); break;
      case BINUNICODE8: push_text(Kind::String, read_le(8, "BINUNICODE8"), "BINUNICODE8"); break;
      case SHORT_BINBYTES:
        push_text(Kind::Bytes, read_le(1, "SHORT_BINBYTES"), "SHORT_BINBYTES");
        break;
      case BINBYTES: push_text(Kind::Bytes, read_le(4, "BINBYTES"), "BINBYTES"); break;
      case BINBYTES8: push_text(Kind::Bytes, read_le(8, "BINBYTES8"), "BINBYTES8"); break;
      case BYTEARRAY8: push_text(Kind::Bytes, read_le(8, "BYTEARRAY8"), "BYTEARRAY8"); break;
      case SHORT_BINSTRING:
        push_text(Kind::Bytes, read_le(1, "SHORT_BINSTRING"), "SHORT_BINSTRING");
        break;
      case BINSTRING: {
        int64_t n = int32_t(uint32_t(read_le(4, "BINSTRING")));
        if (n < 0) fail(op_start_, "the pickle holds a BINSTRING with a negative size");
        push_text(Kind::Bytes, size_t(n), "BINSTRING");
        break;
      }
      case STRING: push_quoted_string(read_line("STRING")); break;
      case UNICODE: push_raw_unicode(read_line("UNICODE")); break;

      case EMPTY_TUPLE: stack_.push_back(make(Kind::Tuple)); break;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        std::vector<PickleValue*> items(size_t(op - TUPLE1 + 1));
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push_sequence(Kind::Tuple, items);
        break;
      }
      case TUPLE: push_sequence(Kind::Tuple, pop_to_mark()); break;
      case EMPTY_LIST: stack_.push_back(make(Kind::List)); break;
      case LIST: push_sequence(Kind::List, pop_to_mark()); break;
      case APPEND: {
        PickleValue* value = pop();
        append_items(top(), {value});
        break;
      }
      case APPENDS: {
        std::vector<PickleValue*> values = pop_to_mark();
        append_items(top(), values);
        break;
      }
      case EMPTY_DICT: stack_.push_back(make(Kind::Dict)); break;
      case DICT: {
        std::vector<PickleValue*> kv = pop_to_mark();
        PickleValue* v = make(Kind::Dict);
        set_items(v, kv);
        stack_.push_back(v);
        break;
      }
      case SETITEM: {
        PickleValue* value = pop();
        PickleValue* key = pop();
        set_items(top(), {key, value});
        break;
      }
      case SETITEMS: {
        std::vector<PickleValue*> kv = pop_to_mark();
        set_items(top(), kv);
        break;
      }
      case EMPTY_SET: stack_.push_back(make(Kind::Set)); break;
      case FROZENSET: push_sequence(Kind::Set, pop_to_mark()); break;
      case ADDITEMS: {
        std::vector<PickleValue*> items = pop_to_mark();
        PickleValue* set = top();
        if (set->kind != Kind::Set)
          fail(op_start_, std::string("the pickle adds set items to a ") + set->kind_name());
        set->items.insert(set->items.end(), items.begin(), items.end());
        break;
      }

      case GLOBAL: {
        std::string module(read_line("GLOBAL"));
        std::string name(read_line("GLOBAL"));
        push_global(std::move(module), std::move(name));
        break;
      }
      case STACK_GLOBAL: {
        PickleValue* name = pop();
        PickleValue* module = pop();
        if (module->kind != Kind::String || name->kind != Kind::String)
          fail(op_start_, "the pickle names a global with something other than strings");
        push_global(module->text, name->text);
        break;
      }
      case REDUCE: {
        PickleValue* args = pop();
        PickleValue* callable = pop();
        reduce(callable, args);
        break;
      }
      case NEWOBJ: {
        PickleValue* args = pop();
        PickleValue* cls = pop();
        reduce(cls, args);
        break;
      }
      case NEWOBJ_EX: {
        PickleValue* kwargs = pop();
        PickleValue* args = pop();
        PickleValue* cls = pop();
        reduce(cls, args);
        if (stack_.back()->kind == Kind::Call) stack_.back()->kwargs = kwargs;
        break;
      }
      case BUILD: {
        PickleValue* state = pop();
        PickleValue* object = top();
        if (object->kind != Kind::Call)
          fail(op_start_, std::string("the pickle gives state to a ") + object->kind_name());
        object->state = state;
        break;
      }
      case BINPERSID:
      case PERSID: {
        PickleValue* id;
        if (op == PERSID) {
          id = make(Kind::String);
          id->text = std::string(read_line("PERSID"));
        } else {
          id = pop();
        }
        PickleValue* v = make(Kind::PersistentId);
        v->items.push_back(id);
        stack_.push_back(v);
        break;
      }

      case BINPUT: memo_put(read_le(1, "BINPUT")); break;
      case LONG_BINPUT: memo_put(read_le(4, "LONG_BINPUT")); break;
      case PUT: memo_put(line_index(read_line("PUT"))); break;
      case MEMOIZE: memo_put(memo_.size()); break;
      case BINGET: memo_get(read_le(1, "BINGET")); break;
      case LONG_BINGET: memo_get(read_le(4, "LONG_BINGET")); break;
      case GET: memo_get(line_index(read_line("GET"))); break;

      case READONLY_BUFFER: top(); break;
      case NEXT_BUFFER:
        fail(op_start_, "the pickle refers to an out-of-band buffer, which a file cannot carry");
      case EXT1:
      case EXT2:
      case EXT4:
        fail(op_start_, "the pickle uses the copyreg extension registry, which is not supported");
      case INST:
      case OBJ:
        fail(op_start_, "the pickle builds a classic (old-style) object, which is not supported");
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(op_start_, std::string("the pickle holds an unknown opcode ") + hex +
                            "; the file is corrupt or not a pickle");
      }
    }
  }
}

}  // namespace vs
