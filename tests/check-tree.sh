#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The tree as the project keeps it: every C and C++ file formatted by
# clang-format 14 with the nearest .clang-format (GStreamer's C style for the
# elements, the metadata library, tests and examples; Google's C++ style for
# engine/, server and tools), and every source file naming its license.
#
#   tests/check-tree.sh SOURCE_DIR       (meson test: format)
#   clang-format-14 -i FILE...           fixes what it reports
set -euo pipefail
cd "${1:?usage: check-tree.sh SOURCE_DIR}"
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "SKIP: not a git checkout, so there is no list of the tree's files"
  exit 77
fi
fmt=$(command -v clang-format-14 || true)
if [ -z "$fmt" ]; then
  echo "FAIL: clang-format-14 is not installed (scripts/install-deps.sh installs it)"
  exit 1
fi
status=0
mapfile -t sources < <(git ls-files -- '*.c' '*.cpp' '*.h')
if ! "$fmt" --dry-run --Werror "${sources[@]}" 2>/tmp/check-tree.$$; then
  grep -E "error:" /tmp/check-tree.$$ | sed -E 's/:[0-9]+: error:.*//' | sort | uniq -c \
    | awk '{ print "not formatted (" $1 " places): " $2 }'
  head -40 /tmp/check-tree.$$
  echo "FAIL: run clang-format-14 -i on the files above"
  status=1
fi
rm -f /tmp/check-tree.$$
missing=$(git ls-files -- '*.c' '*.cpp' '*.h' '*.py' '*.sh' '*.js' '*.css' '*.html' \
    'meson.build' '*/meson.build' | while read -r f; do
  [ -f "$f" ] && ! head -3 "$f" | grep -q "SPDX-License-Identifier: LGPL-2.1-or-later" \
    && echo "$f"; done || true)
if [ -n "$missing" ]; then
  echo "FAIL: no SPDX-License-Identifier line in the first three lines of:"
  echo "$missing"
  status=1
fi
[ "$status" -ne 0 ] || echo "OK: ${#sources[@]} C/C++ files formatted; every source file has its SPDX line"
exit "$status"
