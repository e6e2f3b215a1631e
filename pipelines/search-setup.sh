# Sourced by search-image.sh, search-video.sh and search-webcam.sh; not run.
#
# vs_use_plugin: makes the visualsearch elements available, from the system
#   or, when not installed, from the build tree $BUILD_DIR (default build/).
# vs_embedder_for INDEX: fills the array `embedder` with an embedder element
#   configured exactly as the one that built INDEX, read from its catalog
#   (INDEX.db): model, random weights and seed, input size, resize, mean, std.
#   A query embedded any other way would be refused by faisssearch. These
#   environment variables override what the catalog says:
#     MODEL       resnet18..resnet152, or a TorchScript file (required when
#                 the index was built from TorchScript)
#     WEIGHTS     a torchvision .pth file; "random" for seeded random weights;
#                 unset: the catalog's random seed, else the torchvision cache
#     SEED        seed of WEIGHTS=random
#     INPUT_SIZE  RESIZE  MEAN  STD
#     PRECISION   fp32 or bf16 (not recorded in the catalog; default fp32)
#     INTERVAL    embed every Nth frame (default 1)

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

vs_use_plugin() {
  local repo
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if gst-inspect-1.0 faisssearch >/dev/null 2>&1; then return 0; fi
  local plugin_dir="${BUILD_DIR:-$repo/build}/plugin"
  [ -d "$plugin_dir" ] || vs_die "the visualsearch plugin is neither installed nor built in ${BUILD_DIR:-$repo/build}; run: meson setup build && ninja -C build"
  export GST_PLUGIN_PATH="$plugin_dir${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  gst-inspect-1.0 faisssearch >/dev/null 2>&1 || vs_die "no faisssearch element in $plugin_dir; rebuild with ninja -C ${BUILD_DIR:-build}"
}

# The value of key=... in a preprocessing id such as
# "rgb;resize=0;crop=224;mean=0.485,0.456,0.406;std=0.229,0.224,0.225".
vs_preprocessing_value() {
  tr ';' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n 1
}

vs_embedder_for() {
  local index=$1 catalog="$1.db" facts model_id preprocessing model tag seed=""
  [ -f "$index" ] || vs_die "no index at $index; build one with pipelines/index-cifar.sh (or cifarindexer / faissindexer)."
  [ -f "$catalog" ] || vs_die "no catalog at $catalog beside the index; rebuild the index with pipelines/index-cifar.sh."
  facts=$(sqlite3 -readonly -separator $'\t' "$catalog" \
    "SELECT model_id, preprocessing_id FROM index_facts" 2>/dev/null) \
    || vs_die "cannot read the catalog $catalog; rebuild the index with pipelines/index-cifar.sh."
  model_id=${facts%%$'\t'*}
  preprocessing=${facts#*$'\t'}
  model=${model_id%%:*}
  tag=${model_id#*:}
  [[ "$tag" =~ ^random-seed([0-9]+)$ ]] && seed=${BASH_REMATCH[1]}

  model=${MODEL:-$model}
  case "$model" in
    resnet18|resnet34|resnet50|resnet101|resnet152) ;;
    *) [ -n "${MODEL:-}" ] || vs_die "the index was built by model '$model_id'; set MODEL to the TorchScript file that made it." ;;
  esac
  embedder=(embedder model="$model"
            input-size="${INPUT_SIZE:-$(vs_preprocessing_value "$preprocessing" crop)}"
            resize="${RESIZE:-$(vs_preprocessing_value "$preprocessing" resize)}"
            mean="${MEAN:-$(vs_preprocessing_value "$preprocessing" mean)}"
            std="${STD:-$(vs_preprocessing_value "$preprocessing" std)}"
            precision="${PRECISION:-fp32}"
            inference-interval="${INTERVAL:-1}")
  if [ -n "${WEIGHTS:-}" ]; then
    embedder+=(weights="$WEIGHTS")
    [ "$WEIGHTS" = random ] && embedder+=(seed="${SEED:-${seed:-42}}")
  elif [ -n "$seed" ]; then
    echo "$(basename "$0"): the index was built with random weights (seed $seed); so are the queries." >&2
    embedder+=(weights=random seed="${SEED:-$seed}")
  fi
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
