#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# models/fetch-weights.sh against a real HTTP server on 127.0.0.1: a good file
# lands in the cache, a file whose hash does not match its name is refused and
# leaves nothing behind, a missing file is a clear error, and a server that
# accepts the connection but never answers fails the download instead of
# hanging (the demo then falls back to random weights).
set -euo pipefail
: "${VS_SOURCE_DIR:?}"
source "$VS_SOURCE_DIR/tests/local_servers.sh"
PY=/usr/bin/python3
fetch="$VS_SOURCE_DIR/models/fetch-weights.sh"

work=$(mktemp -d)
server_pid="" silent_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  [ -n "$silent_pid" ] && kill "$silent_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www" "$work/home"
head -c 4096 /dev/urandom > "$work/payload"
sha=$(sha256sum "$work/payload" | cut -d' ' -f1)
good="custom-${sha:0:8}.pth"
cp "$work/payload" "$work/www/$good"
# Served under an official name, but its bytes do not match that name's hash.
cp "$work/payload" "$work/www/resnet18-f37072fd.pth"

$PY -m http.server 0 --bind 127.0.0.1 --directory "$work/www" > "$work/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 50); do
  port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$work/server.log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: the test HTTP server did not start"; cat "$work/server.log"; exit 1; }

export VS_WEIGHTS_BASE_URL="http://127.0.0.1:$port" TORCH_HOME="$work/home"
cache="$work/home/hub/checkpoints"

"$fetch" "$good"
cmp "$cache/$good" "$work/payload" || { echo "FAIL: downloaded file differs"; exit 1; }
"$fetch" "$good" | grep -q "already there" || { echo "FAIL: second fetch re-downloaded"; exit 1; }

if "$fetch" resnet18 2> "$work/err"; then echo "FAIL: hash mismatch accepted"; exit 1; fi
grep -q "corrupt" "$work/err" || { echo "FAIL: no corrupt-file message"; cat "$work/err"; exit 1; }
[ ! -e "$cache/resnet18-f37072fd.pth" ] || { echo "FAIL: corrupt file left in the cache"; exit 1; }
[ -z "$(find "$cache" -name '.*' -type f)" ] || { echo "FAIL: temporary file left behind"; exit 1; }

if "$fetch" resnet50 2> "$work/err"; then echo "FAIL: missing file accepted"; exit 1; fi
grep -q "could not download" "$work/err" || { echo "FAIL: no download error message"; cat "$work/err"; exit 1; }

if "$fetch" vgg16 2> "$work/err"; then echo "FAIL: unknown model accepted"; exit 1; fi
grep -q "unknown model" "$work/err" || { echo "FAIL: no unknown-model message"; exit 1; }
start_silent_server "$work"
if VS_WEIGHTS_BASE_URL="http://127.0.0.1:$silent_port" "$fetch" resnet34 2> "$work/err"; then
  echo "FAIL: a server that never answers was taken for a download"; exit 1
fi
grep -q "could not download" "$work/err" || { echo "FAIL: no download error from a silent server"; cat "$work/err"; exit 1; }
[ -z "$(find "$cache" -name '.*' -type f)" ] || { echo "FAIL: temporary file left behind by a stalled download"; exit 1; }
echo "PASS: fetch-weights download, hash check, errors, stalled server"
