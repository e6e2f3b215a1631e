/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Linked into every test program of a build with -Db_sanitize=address...:
 * LeakSanitizer ignores what shared libraries allocate in their initialisers,
 * before main(). Those allocations happen once per process, so they cannot
 * grow, and some are leaked by design (GLib's first quark block, replaced and
 * dropped once a program has more than 2048 quarks, as every GStreamer
 * program does); their stacks stop inside the uninstrumented library, so no
 * suppression can name them. Anything allocated from main() on is checked. */
#include <sanitizer/lsan_interface.h>

static void
lsan_ignore_initialisers (void)
{
  __lsan_disable ();
}

/* The executable's .preinit_array runs before any shared library's
 * initialisers, its .init_array after all of them. */
__attribute__ ((section (".preinit_array"),
    used)) static void (*const vs_lsan_preinit) (void) =
    lsan_ignore_initialisers;

__attribute__ ((constructor)) static void
lsan_check_from_main (void)
{
  __lsan_enable ();
}
