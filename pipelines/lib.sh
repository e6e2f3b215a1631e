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
#   and VIDEO_INTERVAL get their defaults, WEIGHTS vs_weights_fallback's, and
#   the array `embedding` the embedder properties they make (with WEIGHTS and
#   SEED when set).
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
# vs_weights_fallback: the weights fallback of every script that embeds (the
#   demo, index-folder.sh, evaluate-folder.sh): with WEIGHTS unset and a ResNet
#   MODEL whose official weights are not in the torch hub cache, tries
#   models/fetch-weights.sh and, when that fails, sets WEIGHTS=random and says
#   plainly what random weights mean for the scores; vs_random_fallback is
#   then true. Dies when WEIGHTS names a file that does not exist.
# vs_random_notice WHY: that notice, on stderr.
# vs_index_settings INDEX: for an update of INDEX, the settings it was built
#   with (MODEL, WEIGHTS, SEED, INPUT_SIZE, RESIZE, PRECISION int8, METRIC,
#   INDEX_TYPE, as its catalog INDEX.db records them) become the defaults;
#   dies when one set in the environment contradicts the index.
# vs_model_id INDEX: the model id INDEX's catalog records (e.g.
#   resnet18:random-seed42); empty when it has none.
# vs_random_model_id ID: whether the model id ID names random weights.

vs_die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# vs_usage STATUS: prints the calling script's header comment and exits with
# STATUS; on stderr when STATUS is not 0.
vs_usage() {
  local fd=1
  [ "$1" -eq 0 ] || fd=2
  awk 'NR > 1 && !/^#/ { exit } /SPDX-License-Identifier/ { next } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&"$fd"
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
  vs_weights_fallback
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

# The official torchvision weights file of a ResNet name, as
# engine/model/embedding_engine.cpp's official_weights_filename knows them.
vs_official_weights_file() {
  case "$1" in
    resnet18) echo resnet18-f37072fd.pth ;;
    resnet34) echo resnet34-b627a593.pth ;;
    resnet50) echo resnet50-11ad3fa6.pth ;;
    resnet101) echo resnet101-cd907fc2.pth ;;
    resnet152) echo resnet152-f82ba261.pth ;;
    *) return 1 ;;
  esac
}

# The folders the embedder looks in for official weights (its
# default_weights_paths), the first being where a download should go.
vs_hub_dirs() {
  if [ -n "${TORCH_HOME:-}" ]; then echo "$TORCH_HOME/hub/checkpoints"; fi
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/torch/hub/checkpoints"
}

vs_random_model_id() { [[ "$1" == *:random-seed* ]]; }  # engine/model/model_id.h

vs_model_id() {
  local catalog
  catalog=$(vs_catalog_of "$1")
  [ -f "$catalog" ] || return 0
  sqlite3 -readonly "$catalog" "SELECT model_id FROM index_facts" 2>/dev/null || true
}

vs_random_notice() {
  local line
  line=$(printf '%.0s#' {1..78})
  {
    printf '%s\n' "$line"
    printf '# RANDOM WEIGHTS: %s.\n' "$1"
    printf '# Random weights embed every picture in nearly the same direction, so every\n'
    printf '# score reads about the same (similarity 0.99 and more) and says nothing about\n'
    printf '# what the pictures show; near-duplicate limits then link almost everything.\n'
    printf '# The pipeline runs end to end, but the neighbours found are not meaningful.\n'
    printf '# For real results: models/fetch-weights.sh %s, then index anew (MODE=rebuild).\n' "${MODEL:-resnet18}"
    printf '%s\n' "$line"
  } >&2
}

vs_weights_fallback() {
  vs_random_fallback=false
  local file dir
  case "${WEIGHTS:-}" in
    random) return 0 ;;
    "") ;;
    *)
      [ -f "$WEIGHTS" ] || vs_die "WEIGHTS=$WEIGHTS does not exist: fix the path, or unset WEIGHTS to use (or download) the official ${MODEL:-resnet18} weights, or set WEIGHTS=random for an offline try."
      return 0 ;;
  esac
  # A TorchScript MODEL carries its own weights.
  file=$(vs_official_weights_file "${MODEL:-resnet18}") || return 0
  while IFS= read -r dir; do
    [ -f "$dir/$file" ] && return 0
  done < <(vs_hub_dirs)
  if [ "${vs_index_weights:-}" = official ]; then
    vs_die "the index was built with the official $MODEL weights, which are not in the torch hub cache ($(vs_hub_dirs | head -1)): run models/fetch-weights.sh $MODEL, or index anew with MODE=rebuild WEIGHTS=random."
  fi
  echo "$(basename "$0"): no $MODEL weights in the torch hub cache; trying to download them" >&2
  dir=$(vs_hub_dirs | head -1)
  if VS_WEIGHTS_DIR="$dir" "$(dirname "${BASH_SOURCE[0]}")/../models/fetch-weights.sh" "$MODEL" >&2 \
      && [ -f "$dir/$file" ]; then
    return 0
  fi
  WEIGHTS=random
  vs_random_fallback=true
  vs_random_notice "the $MODEL weights are not in the torch hub cache and could not be downloaded, so this run uses seeded random weights (WEIGHTS=random)"
}

vs_index_settings() {
  local index=$1 catalog assignments
  catalog=$(vs_catalog_of "$index")
  [ -f "$index" ] && [ -f "$catalog" ] || return 0
  assignments=$(/usr/bin/python3 - "$catalog" <<'PY'
import shlex
import sqlite3
import sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
db.row_factory = sqlite3.Row
row = db.execute("SELECT * FROM index_facts").fetchone()
facts = {key: row[key] for key in row.keys()} if row else {}
# Catalogs older than schema 4 record no embedder settings.
config, metric, index_type = (facts.get(k) for k in ("embedder_config", "metric", "index_type"))
out = {"METRIC": metric, "INDEX_TYPE": index_type}
if config:
    s = Gst.Structure.from_string(config)[0]
    out["MODEL"] = s.get_string("model")
    out["WEIGHTS"] = s.get_string("weights") if s.has_field("weights") else ""
    out["SEED"] = str(s.get_value("seed")) if s.has_field("seed") else ""
    for var, field in (("INPUT_SIZE", "input-size"), ("RESIZE", "resize")):
        out[var] = str(s.get_value(field)) if s.has_field(field) else ""
    out["PRECISION"] = s.get_string("precision") if s.has_field("precision") else ""
for var, value in out.items():
    print(f"index_{var}={shlex.quote(value or '')}")
print(f"index_has_config={'yes' if config else ''}")
PY
) || vs_die "cannot read the settings of $index from its catalog $catalog."
  eval "$assignments"
  # A setting given that contradicts the index is an error; one not given
  # becomes the index's.
  adopt() {
    local var=$1 recorded=$2 given=${!1:-}
    [ -n "$recorded" ] || return 0
    if [ -n "$given" ] && [ "$given" != "$recorded" ]; then
      case "$var" in MODEL|WEIGHTS)
        [ -e "$given" ] && [ "$(realpath "$given")" = "$recorded" ] && return 0 ;;
      esac
      vs_die "$var=$given contradicts the index $index, which was built with $var=$recorded: leave $var unset to update it with the index's own settings, or index anew with MODE=rebuild."
    fi
    printf -v "$var" '%s' "$recorded"
  }
  adopt METRIC "$index_METRIC"
  adopt INDEX_TYPE "$index_INDEX_TYPE"
  [ -n "$index_has_config" ] || return 0
  adopt MODEL "$index_MODEL"
  adopt INPUT_SIZE "$index_INPUT_SIZE"
  adopt RESIZE "$index_RESIZE"
  if [ -n "$index_WEIGHTS" ]; then
    adopt WEIGHTS "$index_WEIGHTS"
    [ "$index_WEIGHTS" != random ] || adopt SEED "$index_SEED"
  elif [ -z "${WEIGHTS:-}" ]; then
    vs_index_weights=official
  elif vs_official_weights_file "$index_MODEL" >/dev/null; then
    vs_die "WEIGHTS=$WEIGHTS contradicts the index $index, which was built with the official $index_MODEL weights: leave WEIGHTS unset to update it with the index's own settings, or index anew with MODE=rebuild."
  fi
  if [ "$index_PRECISION" = int8 ]; then
    adopt PRECISION int8
  elif [ "${PRECISION:-}" = int8 ]; then
    vs_die "PRECISION=int8 contradicts the index $index, which was not built in int8 (int8 changes the embeddings): leave PRECISION unset, or index anew with MODE=rebuild."
  fi
}

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
