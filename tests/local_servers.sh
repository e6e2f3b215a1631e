# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Sourced by the shell tests that download from 127.0.0.1; not run.
#
# start_silent_server DIR: a server that accepts connections and never answers
#   (the kernel completes them from the listen backlog); sets silent_port, and
#   silent_pid for the caller to kill. DIR holds its port file.
# closed_port: prints a port on 127.0.0.1 where nothing listens.

start_silent_server() {
  /usr/bin/python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True); time.sleep(600)' > "$1/silent.port" &
  # shellcheck disable=SC2034  # the caller kills it
  silent_pid=$!
  silent_port=""
  for _ in $(seq 50); do
    silent_port=$(head -n 1 "$1/silent.port")
    [ -n "$silent_port" ] && return 0
    sleep 0.1
  done
  echo "FAIL: the silent test server did not start"
  exit 1
}

# Bound, then closed: nothing listens there.
closed_port() {
  /usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
