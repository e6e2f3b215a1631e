# SPDX-License-Identifier: LGPL-2.1-or-later
# The shared library of the scripts in pipelines/: sourced by them, not run.
#
# vs_use_plugin [ELEMENT]: makes the visualsearch elements available (checked
#   with ELEMENT, default faisssearch), from the system
#   or, when not installed, from the build tree $BUILD_DIR (default build/).
# vs_use_build_tree [ELEMENT]: the same, from the build tree even when the
#   plugin is installed (for a script that has just built it).
# vs_k_max LIST: the largest cut-off of a K list such as 1,5,10.
# vs_folder_settings: the settings a folder gallery is embedded and indexed
#   with (index-folder.sh, evaluate-folder.sh), from the environment: MODEL,
#   INPUT_SIZE, RESIZE, PRECISION, BATCH_SIZE, INDEX_TYPE, METRIC, LABEL_FROM
#   and VIDEO_INTERVAL get their defaults, and the array `embedding` the
#   embedder properties they make (with WEIGHTS and SEED when set).
# vs_embedder_for INDEX: fills the array `embedder` with an embedder element
#   that adopts the settings INDEX was built with (embedder index=INDEX: model,
#   weights and seed, input size, resize, mean, std, normalize, as its catalog
#   INDEX.db records them), so the queries are embedded exactly as the gallery
#   was. These environment variables add to it:
#     PRECISION   auto, fp32, bf16 or int8 (int8 is recorded by the index; default auto)
#     CALIBRATION images PRECISION=int8 calibrates on
#     INTERVAL    embed every Nth frame (default 1)
#     MODEL       where the TorchScript file the index was built from is now,
#                 when it has moved (the embedder checks it is the same file)
#     WEIGHTS     the same for a torchvision .pth file

vs_die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# vs_usage STATUS: prints the calling script's header comment and exits with
# STATUS; on stderr when STATUS is not 0.
vs_usage() {
  local fd=1
  [ "$1" -eq 0 ] || fd=2
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&"$fd"
  exit "$1"
}

# vs_parse_args N "$@": the options the search scripts share, into the
# variables dataset, out, device and k (keeping the caller's defaults), and
# exactly N positional arguments into the array `positional`. Prints the
# usage and exits for --help (status 0) and for bad usage (status 2).
vs_parse_args() {
  local wanted=$1
  shift
  positional=()
  while [ $# -gt 0 ]; do
    case "$1" in
      -h|--help) vs_usage 0 ;;
      --dataset|--out|--device|-k)
        [ $# -ge 2 ] || { echo "$1 needs a value" >&2; vs_usage 2; }
        case "$1" in
          --dataset) dataset=$2 ;;
          --out) out=$2 ;;
          --device) device=$2 ;;
          -k) k=$2 ;;
        esac
        shift 2 ;;
      -*) echo "unknown option $1" >&2; vs_usage 2 ;;
      *) positional+=("$1"); shift ;;
    esac
  done
  [ ${#positional[@]} -eq "$wanted" ] || vs_usage 2
  [[ "$k" =~ ^[0-9]+$ ]] && [ "$k" -ge 1 ] || vs_die "-k must be a positive number, not '$k'."
}

# vs_k_max LIST: the largest of a list of cut-offs such as 1,5,10; dies
# when LIST is not such a list.
vs_k_max() {
  local k_max
  k_max=$(tr ',' '\n' <<<"$1" | tr -d ' ' | sort -n | tail -1)
  [[ "$k_max" =~ ^[0-9]+$ ]] && [ "$k_max" -ge 1 ] \
    || vs_die "K must be a list of whole numbers such as 1,5,10, not \"$1\"."
  echo "$k_max"
}

vs_folder_settings() {
  MODEL=${MODEL:-resnet18}
  INPUT_SIZE=${INPUT_SIZE:-224}
  RESIZE=${RESIZE:-256}
  PRECISION=${PRECISION:-auto}
  BATCH_SIZE=${BATCH_SIZE:-16}
  INDEX_TYPE=${INDEX_TYPE:-Flat}
  METRIC=${METRIC:-ip}
  LABEL_FROM=${LABEL_FROM:-folder}
  VIDEO_INTERVAL=${VIDEO_INTERVAL:-1.0}
  embedding=(model="$MODEL" input-size="$INPUT_SIZE" resize="$RESIZE" precision="$PRECISION"
             batch-size="$BATCH_SIZE")
  if [ -n "${WEIGHTS:-}" ]; then embedding+=(weights="$WEIGHTS"); fi
  if [ -n "${SEED:-}" ]; then embedding+=(seed="$SEED"); fi
  if [ "$PRECISION" = int8 ]; then
    [ -n "${CALIBRATION:-}" ] || vs_die "PRECISION=int8 needs CALIBRATION=DIR, a folder of images like the gallery's."
    embedding+=(calibration-location="$CALIBRATION")
  fi
}

vs_use_build_tree() {
  local repo element=${1:-faisssearch} build_dir plugin_dir
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  build_dir=${BUILD_DIR:-$repo/build}
  plugin_dir="$build_dir/ext/visualsearch"
  [ -d "$plugin_dir" ] || vs_die "the visualsearch plugin is neither installed nor built in $build_dir; run: meson setup build && ninja -C build"
  export GST_PLUGIN_PATH="$plugin_dir${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  gst-inspect-1.0 "$element" >/dev/null 2>&1 || vs_die "no $element in $plugin_dir (see gst-inspect-1.0 $element); rebuild with ninja -C $build_dir"
}

vs_use_plugin() {
  if gst-inspect-1.0 "${1:-faisssearch}" >/dev/null 2>&1; then return 0; fi
  vs_use_build_tree "$@"
}

# The catalog beside an index, as engine/index/catalog.cpp's catalog_path_for names it.
vs_catalog_of() { printf '%s.db' "$1"; }

vs_embedder_for() {
  local index=$1 catalog
  catalog=$(vs_catalog_of "$index")
  [ -f "$index" ] || vs_die "no index at $index; build one with pipelines/index-folder.sh or pipelines/index-cifar.sh (or galleryindexer / cifarindexer / faissindexer)."
  [ -f "$catalog" ] || vs_die "no catalog at $catalog beside the index; rebuild the index with pipelines/index-cifar.sh."
  embedder=(embedder index="$index" ${PRECISION:+precision="$PRECISION"} inference-interval="${INTERVAL:-1}")
  if [ -n "${MODEL:-}" ]; then embedder+=(model="$MODEL"); fi
  if [ -n "${WEIGHTS:-}" ]; then embedder+=(weights="$WEIGHTS"); fi
}

# Prints the "visualsearch" messages of `gst-launch-1.0 -m` output on stdin as
# a ranked list per frame.
vs_print_results() {
  local script
  script=$(cat <<'PY'
import sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
for line in sys.stdin:
    at = line.find("visualsearch, ")
    if at < 0:
        continue
    s = Gst.Structure.from_string(line[at:].strip())[0]
    print(f"frame at {s.get_value('timestamp') / Gst.SECOND:.3f} s, metric {s.get_string('metric')}:")
    rows = zip(s.get_value("ids"), s.get_value("distances"), s.get_value("label-names"),
               s.get_value("sources"))
    for rank, (i, d, name, source) in enumerate(rows, 1):
        print(f"  {rank:2d}. {name or '?':12s} {d:9.4f}  id {i}  {source or ''}")
PY
)
  /usr/bin/python3 -c "$script"
}
