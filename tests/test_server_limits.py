# SPDX-License-Identifier: LGPL-2.1-or-later
"""visualsearch-server's memory under large requests, on 127.0.0.1 only.

Checks, by the server's peak resident set (VmHWM) over its peak after start:
a 256 MB body to / and a 256 MB chunked body to /api/index, refused from their
headers, leave it where it was; 6 clients searching with 7000x7000 PNGs at
once (147 MB of pixels each) stay within 400 MB, and with --queue-mb 1 some of
them get 503 with Retry-After; thumbnails of 8 such originals are made off the
main loop, so /api/index answers while they are being made.

Not in suite 'asan': ASan's redzones and quarantine hold freed memory, which
these bounds would count.
"""
import io
import os
import socket
import sys
import tempfile
import threading
import time

from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_fixtures as sf  # noqa: E402
from checks import check, finish  # noqa: E402

MB = 1 << 20


def send_body(server, head, size, chunked=False):
    """Sends head and then size bytes of body as fast as the server takes
    them; returns the status line of the answer, or what stopped the send."""
    host, port = server.url[len("http://"):].split(":")
    block = b"\0" * MB
    with socket.create_connection((host, int(port)), timeout=60) as s:
        try:
            s.sendall(head)
            for _ in range(size // MB):
                s.sendall(b"100000\r\n" + block + b"\r\n" if chunked else block)
            s.sendall(b"0\r\n\r\n" if chunked else b"")
        except OSError:
            pass  # the server closed after answering; the answer may still be there
        try:
            return s.recv(200).split(b"\r\n")[0]
        except OSError as e:
            return str(e).encode()


def search_all(server, data, clients):
    """(statuses, Retry-After headers) of clients searching data at once."""
    statuses, retry = [], []
    lock = threading.Lock()

    def client():
        status, _, _, headers = server.request("/api/search?k=1", data=data, timeout=300)
        with lock:
            statuses.append(status)
            retry.append(headers.get("Retry-After"))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return statuses, retry


def big_png(colour):
    out = io.BytesIO()
    Image.new("RGB", (7000, 7000), colour).save(out, "PNG")
    return out.getvalue()


with tempfile.TemporaryDirectory() as tmp:
    paths = sf.make_gallery(tmp)
    index = sf.build_index(tmp)
    png = big_png((120, 30, 30))

    # --- bodies refused from their headers are never held
    server = sf.Server("--index", index, "--token", "s3cret")
    try:
        idle = server.status_kb("VmHWM")
        first = send_body(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                          % (256 * MB), 256 * MB)
        second = send_body(server, b"POST /api/index HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n", 256 * MB, chunked=True)
        grown = (server.status_kb("VmHWM") - idle) // 1024
        print(f"peak RSS {idle // 1024} MB idle, +{grown} MB after a 256 MB body to / ({first}) "
              f"and 256 MB chunked to /api/index ({second})", flush=True)
        check(grown < 64, f"256 MB bodies refused from their headers: peak RSS +{grown} MB (< 64)")
        check(server.request("/api/index", headers={"Authorization": "Bearer s3cret"})[0] == 200,
              "the server answers after them")
    finally:
        server.stop()

    # --- large pictures: shrunk after decoding, one full-size decode at a time
    server = sf.Server("--index", index)
    try:
        server.request("/api/search?k=1", data=open(os.path.join(tmp, "gallery", paths[0]),
                                                     "rb").read())
        idle = server.status_kb("VmHWM")
        statuses, _ = search_all(server, png, 6)
        grown = (server.status_kb("VmHWM") - idle) // 1024
        print(f"6 clients x 7000x7000 PNG ({len(png) // 1024} KB): statuses "
              f"{sorted(set(statuses))}, peak RSS {idle // 1024} MB -> +{grown} MB", flush=True)
        check(statuses.count(200) > 0 and set(statuses) <= {200, 503},
              f"6 searches with 7000x7000 PNGs at once: 200 or 503 ({statuses})")
        check(grown < 400, f"... peak RSS +{grown} MB (< 400; 147 MB of pixels each)")
    finally:
        server.stop()
    server = sf.Server("--index", index, "--queue-mb", "1")
    try:
        statuses, retry = search_all(server, png, 8)
        busy = [r for s, r in zip(statuses, retry) if s == 503]
        check(statuses.count(200) > 0 and busy and all(r == "1" for r in busy),
              f"--queue-mb 1: 8 such searches at once, some 503 with Retry-After ({statuses})")
    finally:
        server.stop()

    # --- thumbnails of large originals, made off the main loop
    bare = sf.build_bare_index(tmp, os.path.join(tmp, "bare.faiss"))
    for rel in paths[:8]:
        with open(os.path.join(tmp, "gallery", rel), "wb") as f:
            f.write(png)
    server = sf.Server("--index", bare)
    try:
        done = []
        lock = threading.Lock()

        def thumbnail(i):
            status, ctype, body, _ = server.request(f"/api/items/{i}/thumbnail", timeout=300)
            with lock:
                done.append((status, ctype))

        threads = [threading.Thread(target=thumbnail, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        start = time.time()
        status = server.request("/api/index")[0]
        with lock:
            made_before = len(done)
        took = time.time() - start
        for t in threads:
            t.join(timeout=600)
        print(f"/api/index in {took * 1000:.0f} ms while 8 thumbnails of 7000x7000 originals "
              f"were made ({made_before} made before it)", flush=True)
        check(status == 200 and made_before <= 4,
              f"/api/index is answered while thumbnails are made ({made_before} of 8 before it)")
        check(sorted(done) == [(200, "image/jpeg")] * 8, f"the 8 thumbnails ({done})")
        start = time.time()
        again = server.request("/api/items/3/thumbnail")
        check(again[0] == 200 and again[1] == "image/jpeg",
              f"a thumbnail asked again (from the cache: {(time.time() - start) * 1000:.0f} ms)")
    finally:
        server.stop()

finish()
