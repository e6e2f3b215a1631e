#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the gallery for the search scripts: embeds a CIFAR-10/100 split with
# cifarindexer (cifarsrc ! embedder ! faissindexer) and writes a FAISS index
# and its SQLite catalog (INDEX.db).
#
#   pipelines/index-cifar.sh [DATASET_DIR [INDEX]]
#
# DATASET_DIR (or CIFAR10_DIR) is a CIFAR-10/100 directory in either official
# format (e.g. cifar-10-batches-py) or one batch file. INDEX defaults to
# cifar-$SPLIT.faiss in the current directory. The rest comes from the
# environment:
#   SPLIT=train           train, test or all
#   MODEL=resnet18        resnet18..resnet152, or a TorchScript file
#   WEIGHTS=              torchvision .pth; unset: the torchvision cache, else a
#                         download, else random weights with a notice;
#                         random: seeded random weights (offline tests only)
#   SEED=                 seed of WEIGHTS=random (the embedder's default: 42)
#   INPUT_SIZE=224        side the model sees
#   RESIZE=0              shorter side before the centre crop; 0 stretches the
#                         32x32 image straight to INPUT_SIZE (INPUT_SIZE=32
#                         RESIZE=0 is CIFAR's native resolution)
#   PRECISION=auto        auto (fastest within cosine 0.999 of fp32), fp32 or bf16
#   BATCH_SIZE=64         frames embedded together
#   INDEX_TYPE=Flat       FAISS index_factory string (IVF256,Flat, HNSW32, ...)
#   METRIC=ip             ip (cosine on the normalised embeddings) or l2
#   BUILD_DIR=build       build tree used when the plugin is not installed
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

die() { echo "index-cifar: $*" >&2; exit 1; }

case "${1:-}" in
  -h|--help) awk 'NR > 1 && !/^#/ { exit } /SPDX-License-Identifier/ { next } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
esac
[ $# -le 2 ] || die "too many arguments; usage: index-cifar.sh [DATASET_DIR [INDEX]]"

dataset=${1:-${CIFAR10_DIR:-}}
[ -n "$dataset" ] || die "give the CIFAR dataset directory (argument or CIFAR10_DIR), e.g. cifar-10-batches-py."
[ -e "$dataset" ] || die "$dataset does not exist."

SPLIT=${SPLIT:-train}
index=${2:-cifar-$SPLIT.faiss}
MODEL=${MODEL:-resnet18}
INPUT_SIZE=${INPUT_SIZE:-224}
RESIZE=${RESIZE:-0}
PRECISION=${PRECISION:-auto}
BATCH_SIZE=${BATCH_SIZE:-64}
INDEX_TYPE=${INDEX_TYPE:-Flat}
METRIC=${METRIC:-ip}
BUILD_DIR=${BUILD_DIR:-$repo/build}

source "$here/lib.sh"
vs_weights_fallback
vs_use_plugin cifarindexer

mkdir -p "$(dirname "$index")"
indexer=(cifarindexer dataset="$dataset" index="$index" split="$SPLIT" model="$MODEL"
         input-size="$INPUT_SIZE" resize="$RESIZE" precision="$PRECISION"
         batch-size="$BATCH_SIZE" index-type="$INDEX_TYPE" metric="$METRIC")
[ -n "${WEIGHTS:-}" ] && indexer+=(weights="$WEIGHTS")
[ -n "${SEED:-}" ] && indexer+=(seed="$SEED")

echo "index-cifar: ${indexer[*]}"
start=$(date +%s)
# gst-launch prints the indexer's progress messages; keep just those.
gst-launch-1.0 "${indexer[@]}" | sed -un 's/^Progress: (faissindexer) /index-cifar: /p' \
  || die "indexing failed (see the error above); any previous $index is intact."
seconds=$(( $(date +%s) - start ))

catalog=$(vs_catalog_of "$index")
facts=$(sqlite3 -readonly -separator ', ' "$catalog" \
  "SELECT count || ' vectors', dims || ' dims', 'metric ' || metric, 'model ' || model_id,
          'preprocessing ' || preprocessing_id FROM index_facts") \
  || die "the catalog $catalog cannot be read."
echo "index-cifar: wrote $index ($(du -h "$index" | cut -f1)) and its catalog $catalog in $seconds s"
echo "index-cifar: $facts"
