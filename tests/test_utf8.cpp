// SPDX-License-Identifier: LGPL-2.1-or-later
// vs::valid_utf8 and vs::is_valid_utf8: the cases a file's bytes can hold,
// then random bytes against GLib (g_utf8_validate_len, g_utf8_make_valid),
// which PyGObject and GstStructure rely on.
#include <glib.h>

#include <random>
#include <string>

#include "engine/base/utf8.h"

namespace {

const std::string kBad = "\xef\xbf\xbd"; // U+FFFD

void
check (const std::string &in, const std::string &want)
{
  const std::string got = vs::valid_utf8 (in);
  if (got != want)
    g_error ("valid_utf8 of %s gives %s, want %s",
        g_strescape (in.c_str (), nullptr), g_strescape (got.c_str (), nullptr),
        g_strescape (want.c_str (), nullptr));
  g_assert_true (vs::is_valid_utf8 (got));
  g_assert_cmpint (vs::is_valid_utf8 (in), ==, in == want);
}

void
test_valid_kept ()
{
  check ("", "");
  check ("airplane", "airplane");
  check ("caf\xc3\xa9", "caf\xc3\xa9"); // U+00E9, 2 bytes
  check ("\xe2\x98\x83 snow", "\xe2\x98\x83 snow"); // U+2603, 3 bytes
  check ("\xf0\x9d\x84\x9e clef", "\xf0\x9d\x84\x9e clef"); // U+1D11E, 4 bytes
  check ("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"); // U+10FFFF, the last
  check ("\xef\xbf\xbe", "\xef\xbf\xbe"); // U+FFFE: a noncharacter, still valid
  check (std::string ("a\0b", 3), std::string ("a\0b", 3));
}

void
test_overlong ()
{
  check ("\xc0\xaf", kBad + kBad); // '/' in 2 bytes
  check ("\xc1\xbf", kBad + kBad);
  check ("\xe0\x80\xaf", kBad + kBad + kBad); // '/' in 3 bytes
  check ("\xf0\x80\x80\xaf", kBad + kBad + kBad + kBad);
  check ("x\xe0\x9f\xbfy", "x" + kBad + kBad + kBad + "y"); // U+07FF in 3 bytes
}

void
test_surrogates ()
{
  check ("\xed\xa0\x80", kBad + kBad + kBad); // U+D800
  check ("\xed\xbf\xbf", kBad + kBad + kBad); // U+DFFF
  check ("\xed\x9f\xbf", "\xed\x9f\xbf"); // U+D7FF, just below: valid
  // A surrogate pair written as CESU-8 / python's surrogatepass.
  check ("\xed\xa0\xbd\xed\xb8\x80", kBad + kBad + kBad + kBad + kBad + kBad);
}

void
test_truncated ()
{
  check ("tr\xe2\x82", "tr" + kBad + kBad); // 2 of the 3 bytes of U+20AC
  check ("\xf0\x9f\x98", kBad + kBad + kBad); // 3 of 4
  check ("\xc3", kBad);
  check ("\xc3x", kBad + "x"); // a lead byte without its continuation
  check ("a\x80z", "a" + kBad + "z"); // a lone continuation byte
}

void
test_too_large ()
{
  check ("\xf4\x90\x80\x80", kBad + kBad + kBad + kBad); // U+110000
  check ("\xf7\xbf\xbf\xbf", kBad + kBad + kBad + kBad);
  check ("\xf8\x88\x80\x80\x80",
      kBad + kBad + kBad + kBad + kBad); // 5-byte form
  check ("\xfe\xff", kBad + kBad);
}

// Random bytes, mostly from the interesting range, agree with GLib.
void
test_agrees_with_glib ()
{
  std::mt19937 rng (7);
  const unsigned char pool[] = {'a', 0x7f, 0x80, 0x8f, 0x9f, 0xa0, 0xbf, 0xc0,
      0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
  for (int n = 0; n < 20000; ++n) {
    std::string s (rng () % 12, 'a');
    // GLib's validation rejects NUL bytes, ours keeps them: leave them out.
    for (char &c : s)
      c = char (rng () % 2 ? pool[rng () % sizeof pool] : 1 + rng () % 255);
    g_assert_cmpint (vs::is_valid_utf8 (s), ==,
        g_utf8_validate_len (s.data (), s.size (), nullptr));
    gchar *glib = g_utf8_make_valid (s.data (), gssize (s.size ()));
    if (vs::valid_utf8 (s) != glib)
      g_error ("valid_utf8 and g_utf8_make_valid differ on %s",
          g_strescape (s.c_str (), nullptr));
    g_free (glib);
  }
}

} // namespace

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, nullptr);
  g_test_add_func ("/utf8/valid-kept", test_valid_kept);
  g_test_add_func ("/utf8/overlong", test_overlong);
  g_test_add_func ("/utf8/surrogates", test_surrogates);
  g_test_add_func ("/utf8/truncated", test_truncated);
  g_test_add_func ("/utf8/too-large", test_too_large);
  g_test_add_func ("/utf8/agrees-with-glib", test_agrees_with_glib);
  return g_test_run ();
}
