# SPDX-License-Identifier: LGPL-2.1-or-later
"""A bounded load test of visualsearch-server, on 127.0.0.1 only: 16 clients
search at once, one round of 10 s to warm up and two rounds of 20 s, then it
stops by itself. Checks: no error and no wrong answer; the server's RSS does
not grow from the second round to the third (a leak per request would show as
hundreds of MB over the thousands of requests). Prints p50/p95 latency and the
throughput of each round.
"""
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_fixtures as sf  # noqa: E402
from checks import check, finish  # noqa: E402

CLIENTS = 16


def run_round(server, pictures, seconds):
    latencies, errors = [], []
    lock = threading.Lock()
    stop = time.time() + seconds

    def client(n):
        i = n
        while time.time() < stop:
            rel, data = pictures[i % len(pictures)]
            i += CLIENTS
            start = time.time()
            try:
                status, _, body, _ = server.request("/api/search?k=3", data=data, timeout=60)
                ok = status == 200 and f'"source":"{rel}"'.encode() in body[:400]
            except Exception as e:  # a refused or reset connection counts
                ok, body = False, str(e).encode()
            with lock:
                if ok:
                    latencies.append(time.time() - start)
                else:
                    errors.append(body[:200])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    latencies.sort()
    return latencies, errors


with tempfile.TemporaryDirectory() as tmp:
    paths = sf.make_gallery(tmp)
    index = sf.build_index(tmp)
    pictures = []
    for rel in paths:
        with open(os.path.join(tmp, "gallery", rel), "rb") as f:
            pictures.append((rel, f.read()))
    server = sf.Server("--index", index)
    try:
        rss = []
        for n, seconds in enumerate([10, 20, 20], 1):
            latencies, errors = run_round(server, pictures, seconds)
            rss.append(server.rss_kb())
            count = len(latencies)
            p50 = latencies[count // 2] * 1000 if count else float("nan")
            p95 = latencies[int(count * 0.95)] * 1000 if count else float("nan")
            print(f"round {n}: {count} searches in {seconds} s ({count / seconds:.1f}/s), "
                  f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, {len(errors)} errors, RSS {rss[-1] // 1024} MB",
                  flush=True)
            check(not errors and count > 0, f"round {n}: {count} searches, no error ({errors[:1]})")
        check(server.alive(), "the server is still up")
        check(rss[2] <= rss[1] * 1.05 + 8 * 1024,
              f"RSS does not grow between the last two rounds ({rss[1] // 1024} -> {rss[2] // 1024} MB)")
    finally:
        server.stop()

finish()
