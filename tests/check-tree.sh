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
# The engine's layering: a domain (engine/X/) includes only itself and
# engine/base/, never a sibling domain, and nothing in engine/ includes the
# layers above it (ext/, gst-libs/, server/): no back-up imports.
layering=$(git ls-files -- 'engine/*.c' 'engine/*.cpp' 'engine/*.h' | while read -r f; do
  [ -f "$f" ] || continue
  domain=$(echo "$f" | cut -d/ -f2)
  grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$f" \
      | sed -E 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]*)[>"].*/\1 \2/' \
      | while read -r line target; do
    case "$target" in
      ext/*|gst-libs/*|server/*|gst/visualsearch/*)
        echo "$f:$line: includes $target, a layer above engine/" ;;
      engine/*/*)
        to=$(echo "$target" | cut -d/ -f2)
        [ "$to" = "$domain" ] || [ "$to" = base ] && continue
        echo "$f:$line: includes $target: engine/$domain/ may include only engine/$domain/ and engine/base/" ;;
      engine/*)
        echo "$f:$line: includes $target, which is in no domain" ;;
    esac
  done
done)
if [ -n "$layering" ]; then
  echo "$layering"
  echo "FAIL: move what two domains share to engine/base/, or give the caller an interface to fill"
  status=1
fi
[ "$status" -ne 0 ] || echo "OK: ${#sources[@]} C/C++ files formatted; every source file has its SPDX line; the engine's domains include only themselves and base/"
exit "$status"
