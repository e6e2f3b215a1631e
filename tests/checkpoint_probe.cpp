// SPDX-License-Identifier: LGPL-2.1-or-later
// Drives PickleReader and load_checkpoint for test_checkpoint.py, which
// writes the fixtures with Python and compares what this program reports.
//
//   checkpoint_probe pickle FILE        canonical form of the unpickled value
//   checkpoint_probe checkpoint FILE OUT  one line per tensor; bytes to OUT
//   checkpoint_probe hostile FILE       mutate FILE (a pickle) many ways: only vs::Error
//   checkpoint_probe hostile-zip FILE   same for a checkpoint archive
//
// A vs::Error prints "ERROR: <message>" and exits 2.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "engine/model/checkpoint.h"
#include "engine/base/error.h"
#include "engine/base/pickle_reader.h"

namespace {

using vs::PickleValue;
using Kind = PickleValue::Kind;

std::vector<uint8_t>
read_file (const std::string &path)
{
  std::ifstream in (path, std::ios::binary);
  if (!in)
    throw vs::Error ("cannot read " + path);
  return {std::istreambuf_iterator<char> (in),
      std::istreambuf_iterator<char> ()};
}

void
write_file (const std::string &path, const std::vector<uint8_t> &bytes)
{
  std::ofstream out (path, std::ios::binary | std::ios::trunc);
  out.write (reinterpret_cast<const char *> (bytes.data ()),
      std::streamsize (bytes.size ()));
  if (!out)
    throw vs::Error ("cannot write " + path);
}

std::string
hex (const std::string &s)
{
  static const char *digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back (digits[c >> 4]);
    out.push_back (digits[c & 15]);
  }
  return out;
}

// Mirrors canonical() in test_checkpoint.py. Depth-limited: a pickle can
// hold cycles.
void
canonical (const PickleValue &v, std::string *out, int depth)
{
  if (depth > 64) {
    *out += "...";
    return;
  }
  auto seq = [&] (const std::vector<const PickleValue *> &items) {
    for (const PickleValue *item : items) {
      canonical (*item, out, depth + 1);
      *out += ",";
    }
  };
  char buf[64];
  switch (v.kind) {
    case Kind::None:
      *out += "N";
      break;
    case Kind::Bool:
      *out += v.boolean ? "T" : "F";
      break;
    case Kind::Int:
      *out += "i" + std::to_string (v.integer);
      break;
    case Kind::Float: {
      uint64_t bits;
      std::memcpy (&bits, &v.real, sizeof bits);
      std::snprintf (buf, sizeof buf, "f%016" PRIx64, bits);
      *out += buf;
      break;
    }
    case Kind::String:
      *out += "u" + hex (v.text);
      break;
    case Kind::Bytes:
      *out += "b" + hex (v.text);
      break;
    case Kind::List:
      *out += "[";
      seq (v.items);
      *out += "]";
      break;
    case Kind::Tuple:
      *out += "(";
      seq (v.items);
      *out += ")";
      break;
    case Kind::Set:
      *out += "{";
      seq (v.items);
      *out += "}";
      break;
    case Kind::Dict:
      *out += "<";
      for (const auto &[k, val] : v.entries) {
        canonical (*k, out, depth + 1);
        *out += ":";
        canonical (*val, out, depth + 1);
        *out += ",";
      }
      *out += ">";
      break;
    case Kind::Global:
      *out += "G" + v.text + "." + v.name;
      break;
    case Kind::Call:
      *out += "C(";
      canonical (*v.callable, out, depth + 1);
      *out += ";";
      canonical (*v.args, out, depth + 1);
      if (v.state) {
        *out += ";state=";
        canonical (*v.state, out, depth + 1);
      }
      *out += ")";
      break;
    case Kind::PersistentId:
      *out += "P(";
      canonical (*v.items[0], out, depth + 1);
      *out += ")";
      break;
  }
}

int
cmd_pickle (const std::string &path)
{
  std::vector<uint8_t> data = read_file (path);
  vs::PickleReader reader (data.data (), data.size (), path);
  std::string out;
  canonical (reader.load (), &out, 0);
  std::printf ("%s\n", out.c_str ());
  return 0;
}

int
cmd_checkpoint (const std::string &path, const std::string &out_path)
{
  vs::StateDict dict = vs::load_checkpoint (path);
  std::vector<uint8_t> all;
  for (const auto &[key, t] : dict) {
    std::string shape;
    for (int64_t d : t.shape)
      shape += (shape.empty () ? "" : ",") + std::to_string (d);
    std::printf ("%s\t%s\t%s\n", key.c_str (), vs::dtype_name (t.dtype),
        shape.c_str ());
    std::vector<uint8_t> bytes = vs::contiguous_bytes (t);
    all.insert (all.end (), bytes.begin (), bytes.end ());
  }
  write_file (out_path, all);
  return 0;
}

// Every outcome but a vs::Error or success is a bug; a crash ends the
// process and fails the test.
template <typename Load>
int
mutate (const std::vector<uint8_t> &good, size_t truncations, size_t flips,
    Load load)
{
  std::mt19937 rng (1234);
  size_t errors = 0, successes = 0;
  auto attempt = [&] (const std::vector<uint8_t> &bytes) {
    try {
      load (bytes);
      ++successes;
    } catch (const vs::Error &) {
      ++errors;
    }
  };
  size_t step =
      std::max<size_t> (1, good.size () / std::max<size_t> (1, truncations));
  for (size_t n = 0; n < good.size (); n += step)
    attempt (std::vector<uint8_t> (good.begin (), good.begin () + long (n)));
  for (size_t k = 0; k < flips; ++k) {
    std::vector<uint8_t> bad = good;
    size_t changes = 1 + rng () % 4;
    for (size_t c = 0; c < changes; ++c)
      bad[rng () % bad.size ()] = uint8_t (rng ());
    attempt (bad);
  }
  std::printf ("mutations: %zu errors, %zu loaded\n", errors, successes);
  return 0;
}

// VS_HOSTILE_SCALE=N tries 1/N of the mutations: the sanitizer build runs
// each of them several times slower.
size_t
hostile_scale ()
{
  const char *s = std::getenv ("VS_HOSTILE_SCALE");
  return s && std::atoi (s) > 1 ? size_t (std::atoi (s)) : 1;
}

int
cmd_hostile (const std::string &path)
{
  std::vector<uint8_t> good = read_file (path);
  const size_t scale = hostile_scale ();
  auto load = [&] (const std::vector<uint8_t> &bytes) {
    vs::PickleReader reader (bytes.data (), bytes.size (), "mutated");
    std::string out;
    canonical (reader.load (), &out, 0);
  };
  mutate (good, good.size () / scale, 20000 / scale, load);

  // Deep nesting and self-reference must neither recurse nor leak into a crash.
  std::vector<uint8_t> deep = {0x80, 0x02};
  for (int i = 0; i < 200000; ++i)
    deep.push_back (']');
  for (int i = 0; i < 199999; ++i)
    deep.push_back ('a');
  deep.push_back ('.');
  load (deep);
  const std::vector<uint8_t> cycle = {0x80, 0x04, ']', 0x94, 'h', 0x00, 'a',
      '.'};
  load (cycle);
  std::printf ("hostile pickles: ok\n");
  return 0;
}

int
cmd_hostile_zip (const std::string &path, const std::string &scratch)
{
  std::vector<uint8_t> good = read_file (path);
  auto load = [&] (const std::vector<uint8_t> &bytes) {
    write_file (scratch, bytes);
    for (const auto &[key, t] : vs::load_checkpoint (scratch))
      vs::contiguous_bytes (t);
  };
  return mutate (good, 300, 300, load);
}

} // namespace

int
main (int argc, char **argv)
{
  std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "pickle" && argc == 3)
      return cmd_pickle (argv[2]);
    if (cmd == "checkpoint" && argc == 4)
      return cmd_checkpoint (argv[2], argv[3]);
    if (cmd == "hostile" && argc == 3)
      return cmd_hostile (argv[2]);
    if (cmd == "hostile-zip" && argc == 4)
      return cmd_hostile_zip (argv[2], argv[3]);
  } catch (const vs::Error &e) {
    std::printf ("ERROR: %s\n", e.what ());
    return 2;
  }
  std::fprintf (stderr,
      "usage: %s pickle FILE | checkpoint FILE OUT | hostile FILE | "
      "hostile-zip FILE SCRATCH\n",
      argv[0]);
  return 64;
}
