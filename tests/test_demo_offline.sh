#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# pipelines/demo.sh as a new user runs it on a machine without network: from a
# clean copy of the tree (the already built build tree reused), an empty home,
# no arguments and no environment but the two download URLs, pointed at
# 127.0.0.1: CIFAR-10 at a server that accepts and never answers, the weights
# at a closed port. The demo must fall back to the mini gallery and random
# weights, say so in a banner before the work and at the end, and leave the
# video and the contact sheet, from an index of the mini gallery's training
# images.
set -euo pipefail
: "${VS_SOURCE_DIR:?}" "${VS_BUILD_DIR:?}"
source "$VS_SOURCE_DIR/tests/local_servers.sh"
PY=/usr/bin/python3

work=$(mktemp -d)
silent_pid=""
cleanup() { [ -n "$silent_pid" ] && kill "$silent_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The files a clone holds, with the working changes: no build tree, no demo-out.
tree="$work/tree"
mkdir -p "$tree" "$work/home"
if git -C "$VS_SOURCE_DIR" rev-parse --git-dir >/dev/null 2>&1; then
  while IFS= read -r -d '' f; do
    if [ -e "$VS_SOURCE_DIR/$f" ]; then printf '%s\0' "$f"; fi  # not deleted in the work tree
  done < <(git -C "$VS_SOURCE_DIR" ls-files -z --cached --others --exclude-standard) \
    | tar -C "$VS_SOURCE_DIR" --null -T - -cf - | tar -C "$tree" -xf -
else
  tar -C "$VS_SOURCE_DIR" --exclude='./build*' --exclude=./demo-out -cf - . | tar -C "$tree" -xf -
fi
if [ ! -x "$tree/pipelines/demo.sh" ] || [ -e "$tree/demo-out" ]; then fail "the copy of the tree is not clean"; fi

start_silent_server "$work"
cifar_url="http://127.0.0.1:$silent_port/cifar-10-python.tar.gz"
weights_url="http://127.0.0.1:$(closed_port)"

status=0
env -i PATH="$PATH" HOME="$work/home" BUILD_DIR="$VS_BUILD_DIR" \
  CIFAR10_URL="$cifar_url" VS_WEIGHTS_BASE_URL="$weights_url" \
  "$tree/pipelines/demo.sh" > "$work/out.log" 2>&1 || status=$?
cat "$work/out.log"
[ "$status" -eq 0 ] || fail "the demo exited with $status"

log="$work/out.log"
# It builds the plugin and the server, not the tests' programs.
built=$(grep -m1 "^building " "$log" || true)
[[ "$built" == *ext/visualsearch/libgstvisualsearch.so* ]] || fail "the demo did not build the plugin: $built"
[[ "$built" != *tests/* ]] || fail "the demo built test programs: $built"
grep -qF "downloading $cifar_url" "$log" || fail "the demo did not try CIFAR10_URL"
grep -qF "downloading $weights_url/resnet18-f37072fd.pth" "$log" || fail "the demo did not try VS_WEIGHTS_BASE_URL"
banners=$(grep -n "OFFLINE DEFAULTS" "$log" | cut -d: -f1)
[ "$(echo "$banners" | wc -l)" -eq 2 ] || fail "expected the banner twice, at the start and at the end"
first=$(echo "$banners" | head -n 1) last=$(echo "$banners" | tail -n 1)
indexing=$(grep -n "== 4/6" "$log" | cut -d: -f1)
sheet=$(grep -n "== 6/6" "$log" | cut -d: -f1)
if [ "$first" -gt "$indexing" ] || [ "$last" -lt "$sheet" ]; then
  fail "the banner is not both before the work and after it"
fi
for at in $banners; do
  # The banner runs from its title to the closing line of #.
  # One sed, no pipe: a reader that stops early would kill the writer with SIGPIPE.
  banner=$(sed -n "${at},\$ { p; /^#\{20,\}\$/q }" "$log")
  for said in "mini gallery data/cifar-10-mini" "random weights (WEIGHTS=random)" "NOT meaningful" \
              "models/fetch-weights.sh resnet18" "CIFAR10_DIR=/path/to/cifar-10-batches-py pipelines/demo.sh"; do
    grep -qF "$said" <<<"$banner" || fail "the banner at line $at does not say: $said"
  done
done

out="$tree/demo-out"
[ "$(head -c 8 "$out/contact-sheet.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
  || fail "no PNG contact sheet at $out/contact-sheet.png"
$PY - "$out" "$tree/data/cifar-10-mini/cifar-10-batches-py" <<'PY'
import os, pickle, sqlite3, struct, sys
import faiss
out, mini = sys.argv[1:]
def fail(what):
    sys.exit(f"FAIL: {what}")

with open(os.path.join(out, "search.avi"), "rb") as f:
    head = f.read(64)
# RIFF....AVI LIST....hdrl avih....: the main header's dwTotalFrames is at byte 48.
if head[:4] != b"RIFF" or head[8:12] != b"AVI " or head[24:28] != b"avih":
    fail("search.avi is not an AVI file")
frames = struct.unpack_from("<I", head, 48)[0]
if frames != 100:
    fail(f"search.avi holds {frames} frames, not the 100 test images")

labels = []
for b in range(1, 6):
    with open(os.path.join(mini, f"data_batch_{b}"), "rb") as f:
        labels += pickle.load(f, encoding="bytes")[b"labels"]
index = os.path.join(out, "cifar10-train.faiss")
if faiss.read_index(index).ntotal != len(labels):
    fail(f"the index does not hold the {len(labels)} training images of the mini gallery")
db = sqlite3.connect(index + ".db")
items = db.execute("SELECT id, label, source FROM items ORDER BY id").fetchall()
expected = [(i, label, f"cifar10/train/{i}") for i, label in enumerate(labels)]
if items != expected:
    fail("the catalog's items are not the mini gallery's training images, in order")
model, = db.execute("SELECT model_id FROM index_facts").fetchone()
if model != "resnet18:random-seed42":
    fail(f"the index was built by {model}, not the random-weight fallback")
PY
echo "PASS: the demo without network falls back to the mini gallery and random weights, says so, and leaves its outputs"
