#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Retrieval quality on CIFAR: index one split, query with the other, print
# Precision@k, Recall@k, mAP@k, MRR and per-class precision, and draw the
# gallery's embedding map.
#
#   pipelines/evaluate-cifar.sh [DATASET_DIR]
#
# DATASET_DIR (or CIFAR10_DIR) is a CIFAR-10/100 directory in either official
# format, e.g. cifar-10-batches-py. Everything else comes from the environment:
#   MODEL=resnet18        embedder model (resnet18..152 or a TorchScript file)
#   WEIGHTS=              torchvision .pth; unset: the torchvision cache, else a
#                         download, else random weights with a notice; random:
#                         seeded random weights (offline smoke tests only)
#   INPUT_SIZE=224        side the model sees
#   RESIZE=0              shorter side before the centre crop; 0 stretches the
#                         32x32 image straight to INPUT_SIZE (INPUT_SIZE=32
#                         RESIZE=0 is CIFAR's native resolution)
#   PRECISION=auto        auto (fastest within cosine 0.999 of fp32), fp32 or bf16
#   BATCH_SIZE=64         frames embedded together
#   K=1,5,10              cut-offs for the metrics
#   INDEX_SPLIT=train     split that becomes the gallery
#   QUERY_SPLIT=test      split that queries it; the same split as the gallery
#                         turns on leave-one-out (exclude-self)
#   NUM_QUERIES=          evaluate only the first N query images
#   INDEX_TYPE=Flat       FAISS index_factory string
#   METRIC=ip             ip (cosine on the normalised embeddings) or l2
#   OUT_DIR=evaluate-cifar-out   where the index, catalog and reports go
#   OUTPUT=$OUT_DIR/metrics.json retrieval metrics (JSON)
#   MAP=$OUT_DIR/embedding-map.png   embedding map; MAP=none skips it
#   BUILD_DIR=build       build tree used when the plugin is not installed
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

die() { echo "evaluate-cifar: $*" >&2; exit 1; }

case "${1:-}" in
  -h|--help) awk 'NR > 1 && !/^#/ { exit } /SPDX-License-Identifier/ { next } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
esac

dataset=${1:-${CIFAR10_DIR:-}}
[ -n "$dataset" ] || die "give the CIFAR dataset directory (argument or CIFAR10_DIR), e.g. cifar-10-batches-py."
[ -e "$dataset" ] || die "$dataset does not exist."

MODEL=${MODEL:-resnet18}
WEIGHTS=${WEIGHTS:-}
INPUT_SIZE=${INPUT_SIZE:-224}
RESIZE=${RESIZE:-0}
PRECISION=${PRECISION:-auto}
BATCH_SIZE=${BATCH_SIZE:-64}
K=${K:-1,5,10}
INDEX_SPLIT=${INDEX_SPLIT:-train}
QUERY_SPLIT=${QUERY_SPLIT:-test}
NUM_QUERIES=${NUM_QUERIES:-}
INDEX_TYPE=${INDEX_TYPE:-Flat}
METRIC=${METRIC:-ip}
OUT_DIR=${OUT_DIR:-evaluate-cifar-out}
OUTPUT=${OUTPUT:-$OUT_DIR/metrics.json}
MAP=${MAP:-$OUT_DIR/embedding-map.png}
BUILD_DIR=${BUILD_DIR:-$repo/build}

source "$here/lib.sh"
vs_weights_fallback
vs_use_plugin retrievaleval
k_max=$(vs_k_max "$K")
exclude_self=false
neighbours=$k_max
if [ "$INDEX_SPLIT" = "$QUERY_SPLIT" ]; then
  # The gallery finds each query itself; leave it out and fetch one more.
  exclude_self=true
  neighbours=$((k_max + 1))
fi

mkdir -p "$OUT_DIR"
index="$OUT_DIR/cifar-$INDEX_SPLIT.faiss"

embedder=(embedder model="$MODEL" input-size="$INPUT_SIZE" resize="$RESIZE"
          precision="$PRECISION" batch-size="$BATCH_SIZE")
[ -n "$WEIGHTS" ] && embedder+=(weights="$WEIGHTS")

echo "evaluate-cifar: indexing the $INDEX_SPLIT split of $dataset with ${embedder[*]:1}"
start=$(date +%s)
gst-launch-1.0 -q cifarsrc location="$dataset" split="$INDEX_SPLIT" ! "${embedder[@]}" ! \
  faissindexer location="$index" index-type="$INDEX_TYPE" metric="$METRIC" \
  || die "indexing failed (see the error above)."
echo "evaluate-cifar: indexed in $(( $(date +%s) - start )) s -> $index"

query_limit=()
[ -n "$NUM_QUERIES" ] && query_limit=(num-buffers="$NUM_QUERIES")
echo "evaluate-cifar: querying with the $QUERY_SPLIT split, k=$K, exclude-self=$exclude_self"
start=$(date +%s)
# The queries are embedded as the index records its gallery was, and
# retrievaleval reads the gallery's catalog through faisssearch.
gst-launch-1.0 -q cifarsrc location="$dataset" split="$QUERY_SPLIT" "${query_limit[@]}" ! \
  embedder index="$index" precision="$PRECISION" batch-size="$BATCH_SIZE" ! \
  faisssearch index="$index" k="$neighbours" post-messages=false ! \
  retrievaleval k="$K" exclude-self="$exclude_self" output="$OUTPUT" print-table=true \
  || die "evaluation failed (see the error above)."
echo "evaluate-cifar: evaluated in $(( $(date +%s) - start )) s -> $OUTPUT"
model_id=$(vs_model_id "$index")
if vs_random_model_id "$model_id"; then
  echo "evaluate-cifar: RANDOM WEIGHTS ($model_id): the figures above show that the pipeline runs, not how well it retrieves; random weights put every picture about equally close, so they are near chance. Fetch real weights (models/fetch-weights.sh $MODEL) for figures that mean something."
fi

if [ "$MAP" != "none" ]; then
  /usr/bin/python3 "$repo/tools/embedding-map.py" "$index" --output "$MAP" \
    --json "${MAP%.png}.json" || die "the embedding map failed (see above)."
fi
