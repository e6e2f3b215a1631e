# SPDX-License-Identifier: LGPL-2.1-or-later
"""visualsearch-server follows its gallery: an index rebuilt with one more
picture (gallerysrc ! embedder ! faissindexer, which renames the new index,
then the new catalog, over the old ones) is served within a bounded wait,
while requests that run across the switch all succeed; an unknown id is
answered with the ids served now.
"""
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time

from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_fixtures as sf  # noqa: E402
from checks import check, finish  # noqa: E402


def js(body):
    try:
        return json.loads(body)
    except ValueError:
        return None


class Stderr:
    """The server's stderr, read as it comes."""

    def __init__(self, server):
        self.fd = server.proc.stderr.fileno()
        self.text = ""

    def wait_for(self, needle, count, timeout=120):
        deadline = time.time() + timeout
        while self.text.count(needle) < count and time.time() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                self.text += chunk.decode(errors="replace")
        return self.text.count(needle) >= count


class Hammer(threading.Thread):
    """Searches, index facts and items in a loop until stopped; records every
    answer that is not a 200."""

    def __init__(self, server, png):
        super().__init__(daemon=True)
        self.server, self.png = server, png
        self.stop = threading.Event()
        self.done, self.failed = 0, []

    def run(self):
        while not self.stop.is_set():
            for path, data in (("/api/search?k=5", self.png), ("/api/index", None),
                               ("/api/items/3/similar?k=3", None), ("/api/items/3/thumbnail", None)):
                status, _, body, _ = self.server.request(path, data=data)
                self.done += 1
                if status != 200:
                    self.failed.append((path, status, body[:200]))


with tempfile.TemporaryDirectory() as tmp:
    sf.make_gallery(tmp)
    index = sf.build_index(tmp)
    gallery = os.path.join(tmp, "gallery")
    server = sf.Server("--index", index)
    stderr = Stderr(server)
    kept = "still serving the previous one"
    try:
        facts = js(server.request("/api/index")[2]) or {}
        check(facts.get("count") == 30, f"the server starts with 30 items ({facts.get('count')})")

        # A picture unlike the others, added the way a user adds one.
        new = Image.new("RGB", (90, 70), (240, 240, 20))
        ImageDraw.Draw(new).ellipse([10, 10, 70, 60], fill=(20, 20, 20))
        new_path = os.path.join(gallery, "yellow", "new.png")
        os.makedirs(os.path.dirname(new_path))
        new.save(new_path)
        with open(new_path, "rb") as f:
            new_png = f.read()
        with open(os.path.join(gallery, "red", "img3.png"), "rb") as f:
            hammer = Hammer(server, f.read())
        hammer.start()
        time.sleep(0.5)
        sf.build_index(tmp)  # renames the new index and catalog over the served ones

        # The switch is bounded by the poll, the settle time and one load: well
        # under a minute even at load 10.
        deadline = time.time() + 60
        count = 30
        while time.time() < deadline and count != 31:
            count = (js(server.request("/api/index")[2]) or {}).get("count")
            time.sleep(0.1)
        check(count == 31, f"/api/index counts the added picture ({count})")
        res = js(server.request("/api/search?k=3", data=new_png)[2]) or {}
        first = (res.get("neighbors") or [{}])[0]
        check(first.get("source") == "yellow/new.png" and first.get("label_name") == "yellow",
              f"a search finds the added picture first ({first})")
        status, _, body, _ = server.request(f"/api/items/{first.get('id')}")
        check(status == 200 and (js(body) or {}).get("source") == "yellow/new.png",
              "the added picture is an item of the API")
        status, _, body, _ = server.request("/api/items/999")
        check(status == 404 and "the gallery holds 31 items, ids 0 to 30" in
              (js(body) or {}).get("error", ""),
              f"an unknown id gets the count and the id range served now ({body[:120]})")
        time.sleep(0.5)
        hammer.stop.set()
        hammer.join(timeout=120)
        check(hammer.done > 8 and not hammer.failed,
              f"{hammer.done} requests across the switch, none failed ({hammer.failed[:3]})")

        # Files that do not load leave the served gallery as it is.
        with open(index, "r+b") as f:
            head = f.read()
        os.rename(index, index + ".good")
        with open(index + ".tmp", "wb") as f:
            f.write(head[: len(head) // 2])
        os.rename(index + ".tmp", index)
        check(stderr.wait_for(kept, 1), "the server says why it keeps the previous gallery",
              stderr.text[-300:])
        status, _, body, _ = server.request("/api/search?k=3", data=new_png)
        check(status == 200 and
              ((js(body) or {}).get("neighbors") or [{}])[0].get("source") == "yellow/new.png",
              "a truncated index replacing the served one is not taken over: searches go on")
        check(server.alive(), "the server is still running")

        # An index another embedder setting built is not taken over either:
        # the query pipeline's embedder would not match it.
        other = os.path.join(tmp, "other.faiss")
        subprocess.run(["gst-launch-1.0", "-q", "gallerysrc", f"location={gallery}", "!",
                        "embedder", "weights=random", "input-size=32", "resize=40", "threads=1",
                        "!", "faissindexer", f"location={other}"], check=True, timeout=300)
        os.rename(other, index)
        os.rename(other + ".db", index + ".db")
        check(stderr.wait_for(kept, 2) and "crop=32" in stderr.text,
              "... and why it keeps it again, naming the other settings", stderr.text[-300:])
        status, _, body, _ = server.request("/api/search?k=3", data=new_png)
        check(status == 200 and
              ((js(body) or {}).get("neighbors") or [{}])[0].get("source") == "yellow/new.png" and
              (js(server.request("/api/index")[2]) or {}).get("preprocessing", "").find("crop=64") >= 0,
              "an index of other embedder settings is not taken over: searches go on")
    finally:
        server.stop()

finish()
