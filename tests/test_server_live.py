# SPDX-License-Identifier: LGPL-2.1-or-later
"""visualsearch-server --camera runs its camera pipeline only while a live
client watches: with none it takes next to no CPU, the first client starts
it (events flow), and it stops again when the last one leaves.
"""
import os
import select
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_fixtures as sf  # noqa: E402
from checks import check, finish  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU time the process took so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_share(pid, seconds):
    """The CPU the process takes over seconds, in cores."""
    start, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - start) / (time.monotonic() - t0)


class Log:
    """The server's stdout, read as it comes."""

    def __init__(self, server):
        self.fd = server.proc.stdout.fileno()
        self.text = ""

    def wait_for(self, needle, timeout=60):
        deadline = time.time() + timeout
        while needle not in self.text and time.time() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                self.text += chunk.decode(errors="replace")
        return needle in self.text


with tempfile.TemporaryDirectory() as tmp:
    sf.make_gallery(tmp)
    index = sf.build_index(tmp)
    server = sf.Server("--index", index, "--camera", "videotestsrc is-live=true pattern=ball")
    log = Log(server)
    try:
        time.sleep(1)
        idle = cpu_share(server.proc.pid, 3)
        check(idle < 0.1, f"no client: the server takes {idle:.3f} cores (under 0.1)")

        host, port = server.url[len("http://"):].split(":")
        client = socket.create_connection((host, int(port)), timeout=60)
        client.sendall(b"GET /api/live/events HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while got.count(b"event: neighbors") < 2:
            chunk = client.recv(65536)
            if not chunk:
                break
            got += chunk
        check(got.count(b"event: neighbors") >= 2, "a client's events stream gets the camera's frames")
        check(log.wait_for("live camera on"), "the first client starts the camera pipeline")
        watched = cpu_share(server.proc.pid, 2)
        print(f"       watched: {watched:.3f} cores")
        client.close()
        check(log.wait_for("live camera off"), "the last client leaving stops it")
        time.sleep(1)
        idle = cpu_share(server.proc.pid, 3)
        check(idle < 0.1, f"after the client left: {idle:.3f} cores (under 0.1)")

        status, _, body, _ = server.request("/api/index")
        check(status == 200 and server.alive(), "the server answers on")
        # And starts again for the next one.
        got = b""
        with socket.create_connection((host, int(port)), timeout=60) as again:
            again.sendall(b"GET /api/live/events HTTP/1.1\r\nHost: x\r\n\r\n")
            while b"event: neighbors" not in got:
                chunk = again.recv(65536)
                if not chunk:
                    break
                got += chunk
        check(b"event: neighbors" in got, "a client coming later starts it again")
    finally:
        server.stop()

finish()
