# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the server tests share: a generated gallery indexed through the
plugin, and a visualsearch-server started on a free 127.0.0.1 port.

The gallery is 3 classes x 10 pictures of flat colour with random squares,
indexed by gallerysrc ! embedder (seeded random resnet18 at 64x64) !
faissindexer, so the catalog holds thumbnails and the embedder's settings.
"""
import os
import random
import re
import select
import subprocess
import time
import urllib.error
import urllib.request

from PIL import Image, ImageDraw

BUILD = os.environ.get("VS_BUILD_DIR", "build")
SERVER = os.path.join(BUILD, "server", "visualsearch-server")
CLASSES = [("red", (200, 30, 30)), ("green", (30, 200, 30)), ("blue", (30, 30, 200))]
PER_CLASS = 10


def make_gallery(root):
    """Writes the pictures under root/gallery and returns their relative paths
    in gallerysrc's walk order, which is also their index ids."""
    rng = random.Random(7)
    paths = []
    for name, colour in CLASSES:
        folder = os.path.join(root, "gallery", name)
        os.makedirs(folder, exist_ok=True)
        for i in range(PER_CLASS):
            im = Image.new("RGB", (80 + 3 * i, 60 + 2 * i), colour)
            draw = ImageDraw.Draw(im)
            for _ in range(5):
                x, y = rng.randrange(60), rng.randrange(40)
                draw.rectangle([x, y, x + 15, y + 15],
                               fill=tuple(rng.randrange(256) for _ in range(3)))
            im.save(os.path.join(folder, f"img{i}.png"))
            paths.append(f"{name}/img{i}.png")
    return sorted(paths)


def build_index(root, extra=""):
    """Indexes root/gallery into root/gallery.faiss; returns the index path."""
    index = os.path.join(root, "gallery.faiss")
    subprocess.run(["gst-launch-1.0", "-q", "gallerysrc", f"location={root}/gallery", "!",
                    "embedder", "weights=random", "input-size=64", "resize=72", "threads=1",
                    "!", "faissindexer", f"location={index}", *extra.split()],
                   check=True, timeout=300)
    return index


def build_bare_index(root, index):
    """Indexes root/gallery into index with galleryindexer and no catalog
    thumbnails, so that the server makes them from the originals."""
    subprocess.run(["gst-launch-1.0", "-q", "galleryindexer", f"location={root}/gallery",
                    f"index={index}", "thumbnail-size=0", "weights=random", "input-size=64",
                    "resize=72"], check=True, timeout=300)
    return index


class Server:
    """visualsearch-server on a free loopback port, stopped on exit."""

    def __init__(self, *args, startup=180):
        self.proc = subprocess.Popen([SERVER, "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.url = None
        deadline = time.time() + startup
        line = ""
        while time.time() < deadline and self.proc.poll() is None:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1)
            if ready:
                line = self.proc.stdout.readline()
                m = re.search(r"at (http://127\.0\.0\.1:\d+)/", line)
                if m:
                    self.url = m.group(1)
                    break
        if not self.url:
            self.stop()
            raise RuntimeError(f"the server did not start: {line} {self.proc.stderr.read()}")

    def request(self, path, data=None, headers=None, method=None, timeout=60):
        """(status, content type, body bytes); never raises for HTTP errors."""
        req = urllib.request.Request(self.url + path, data=data, headers=headers or {},
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                return res.status, res.headers.get("Content-Type", ""), res.read(), res.headers
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read(), e.headers

    def status_kb(self, field):
        """A figure of /proc/PID/status in KB: VmRSS now, VmHWM its peak."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def rss_kb(self):
        return self.status_kb("VmRSS")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
