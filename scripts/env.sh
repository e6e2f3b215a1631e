# SPDX-License-Identifier: LGPL-2.1-or-later
# Makes an uninstalled build usable as typed, in the current shell: source it
# (do not run it) after a build, from any directory:
#
#   . scripts/env.sh            # or: . /path/to/visualsearch/scripts/env.sh
#   gst-inspect-1.0 embedder
#   visualsearch-server --help
#
# It prepends, from the build directory $BUILD_DIR (default build/ in the
# source tree; a relative BUILD_DIR is taken from the source tree too):
#   GST_PLUGIN_PATH   the plugin (BUILD_DIR/ext/visualsearch)
#   GI_TYPELIB_PATH   the metadata library's typelib (BUILD_DIR/gst-libs/gst/visualsearch)
#   LD_LIBRARY_PATH   the metadata library itself (the same folder)
#   PATH              visualsearch-server (BUILD_DIR/server) and
#                     visualsearch-find-duplicates (BUILD_DIR/tools)
# and says what it set. Sourcing it again does not add a folder twice. Not
# needed after `meson install`; the scripts in pipelines/ find the build tree
# by themselves. Works in bash, zsh and dash (dash: source it from the source
# tree, or set VISUALSEARCH_SRC to it, since dash cannot tell a sourced
# file's path).

vs_env_src=${VISUALSEARCH_SRC:-}
if [ -z "$vs_env_src" ]; then
  if [ -n "${BASH_SOURCE:-}" ]; then
    vs_env_src=$BASH_SOURCE
  elif [ -n "${ZSH_VERSION:-}" ]; then
    eval 'vs_env_src=${(%):-%x}'
  elif [ -f scripts/env.sh ]; then
    vs_env_src=scripts/env.sh
  fi
  case "$vs_env_src" in
    */scripts/env.sh | scripts/env.sh) vs_env_src=$(cd "$(dirname "$vs_env_src")/.." && pwd) ;;
    *) vs_env_src= ;;
  esac
fi

# vs_env_prepend VAR DIR: DIR in front of the colon list VAR, once.
vs_env_prepend() {
  eval "vs_env_old=\${$1:-}"
  case ":$vs_env_old:" in
    *":$2:"*) ;;
    *) eval "export $1=\"\$2\${vs_env_old:+:\$vs_env_old}\"" ;;
  esac
  eval "export $1"
  echo "env.sh: $1 += $2"
}

if [ -z "$vs_env_src" ]; then
  echo "env.sh: cannot tell where the source tree is: source scripts/env.sh from the source tree, or set VISUALSEARCH_SRC=/path/to/visualsearch" >&2
  false
else
  vs_env_build=${BUILD_DIR:-build}
  case "$vs_env_build" in
    /*) ;;
    *) vs_env_build=$vs_env_src/$vs_env_build ;;
  esac
  if [ ! -f "$vs_env_build/ext/visualsearch/libgstvisualsearch.so" ]; then
    echo "env.sh: no visualsearch plugin built in $vs_env_build; build it first: cd $vs_env_src && meson setup build && ninja -C build" >&2
    false
  else
    vs_env_prepend GST_PLUGIN_PATH "$vs_env_build/ext/visualsearch"
    vs_env_prepend GI_TYPELIB_PATH "$vs_env_build/gst-libs/gst/visualsearch"
    vs_env_prepend LD_LIBRARY_PATH "$vs_env_build/gst-libs/gst/visualsearch"
    vs_env_prepend PATH "$vs_env_build/server"
    vs_env_prepend PATH "$vs_env_build/tools"
  fi
fi
vs_env_status=$?
unset vs_env_src vs_env_build vs_env_old
unset -f vs_env_prepend
# The status of the last step, without ending the shell that sourced this.
[ "$vs_env_status" -eq 0 ]
