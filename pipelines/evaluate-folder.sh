#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Retrieval quality on a folder of labelled pictures (and videos): splits it
# by label into queries and gallery, indexes the gallery, searches it with
# each query and prints Precision@k, Recall@k, mAP@k, MRR and per-class
# figures, also written as JSON.
#
#   pipelines/evaluate-folder.sh DIR
#
# The split (gallerysrc split=gallery / split=queries) is stratified and by
# file: of each label's n files, round(QUERY_FRACTION * n), at least 1 and at
# most n - 1, are queries, chosen by SPLIT_SEED; the same folder and seed
# always split the same way. Labels are the first-level folder names
# (LABEL_FROM=folder, as torchvision's ImageFolder) or come from a CSV
# (LABEL_FROM=csv:FILE). Everything else comes from the environment:
#   QUERY_FRACTION=0.2    share of each label's files used as queries
#   SPLIT_SEED=0          which files those are
#   K=1,5,10              cut-offs for the metrics
#   MODEL=resnet18        resnet18..resnet152, or a TorchScript file
#   WEIGHTS=              torchvision .pth; unset: the torchvision cache, or a
#                         download, or random weights when both fail (as in
#                         index-folder.sh); random: seeded random weights
#                         (offline tests only; the table then says so)
#   SEED=                 seed of WEIGHTS=random (the embedder's default: 42)
#   INPUT_SIZE=224        side the model sees
#   RESIZE=256            shorter side before the centre crop (0 stretches)
#   PRECISION=auto        auto (fastest within cosine 0.999 of fp32), fp32, bf16
#                         or int8 (calibrated on CALIBRATION, default DIR)
#   BATCH_SIZE=16         frames embedded together
#   INDEX_TYPE=Flat       FAISS index_factory string
#   METRIC=ip             ip (cosine on the normalised embeddings) or l2
#   VIDEO_INTERVAL=1.0    seconds between the frames taken from a video
#   OUT_DIR=evaluate-folder-out   where the gallery index and the report go
#   OUTPUT=$OUT_DIR/metrics.json  retrieval metrics (JSON)
#   BUILD_DIR=build       build tree used when the plugin is not installed
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

case "${1:-}" in
  -h|--help) vs_usage 0 ;;
esac
[ $# -eq 1 ] || vs_usage 2
dir=$1
[ -d "$dir" ] || vs_die "$dir is not a folder."

QUERY_FRACTION=${QUERY_FRACTION:-0.2}
SPLIT_SEED=${SPLIT_SEED:-0}
K=${K:-1,5,10}
CALIBRATION=${CALIBRATION:-$dir}
vs_folder_settings
OUT_DIR=${OUT_DIR:-evaluate-folder-out}
OUTPUT=${OUTPUT:-$OUT_DIR/metrics.json}

k_max=$(vs_k_max "$K")
# gst-launch-1.0 would only warn about a value out of range and keep the default.
awk -v f="$QUERY_FRACTION" 'BEGIN { exit !(f ~ /^[0-9]*\.?[0-9]+$/ && f >= 0.001 && f <= 0.999) }' \
  || vs_die "QUERY_FRACTION must be a number from 0.001 to 0.999, not \"$QUERY_FRACTION\"."
[[ "$SPLIT_SEED" =~ ^[0-9]+$ ]] && [ "$SPLIT_SEED" -le 4294967295 ] \
  || vs_die "SPLIT_SEED must be a whole number from 0 to 4294967295, not \"$SPLIT_SEED\"."
vs_use_plugin retrievaleval

mkdir -p "$OUT_DIR"
index="$OUT_DIR/gallery.faiss"
walk=(location="$dir" label-from="$LABEL_FROM" video-interval="$VIDEO_INTERVAL"
      query-fraction="$QUERY_FRACTION" split-seed="$SPLIT_SEED")
embedder=(embedder "${embedding[@]}")

echo "evaluate-folder: indexing the gallery side of $dir (query-fraction $QUERY_FRACTION, split-seed $SPLIT_SEED) with ${embedder[*]:1}"
start=$(date +%s)
gst-launch-1.0 -q gallerysrc "${walk[@]}" split=gallery ! "${embedder[@]}" ! \
  faissindexer location="$index" index-type="$INDEX_TYPE" metric="$METRIC" \
  || vs_die "indexing failed (see the error above)."
echo "evaluate-folder: indexed in $(( $(date +%s) - start )) s -> $index"

echo "evaluate-folder: searching with the queries, k=$K"
start=$(date +%s)
# The queries are embedded as the index records its gallery was, and
# retrievaleval reads the gallery's catalog through faisssearch.
gst-launch-1.0 -q gallerysrc "${walk[@]}" split=queries ! \
  embedder index="$index" precision="$PRECISION" batch-size="$BATCH_SIZE" ! \
  faisssearch index="$index" k="$k_max" post-messages=false ! \
  retrievaleval k="$K" output="$OUTPUT" print-table=true \
  || vs_die "evaluation failed (see the error above)."
echo "evaluate-folder: evaluated in $(( $(date +%s) - start )) s -> $OUTPUT"
model_id=$(vs_model_id "$index")
if vs_random_model_id "$model_id"; then
  echo "evaluate-folder: RANDOM WEIGHTS ($model_id): the figures above show that the pipeline runs, not how well it retrieves; random weights put every picture about equally close, so they are near chance. Fetch real weights (models/fetch-weights.sh ${MODEL}) for figures that mean something."
fi
