# SPDX-License-Identifier: LGPL-2.1-or-later
"""visualsearch-server's JSON API on a generated gallery, on 127.0.0.1 only.

Checks: the index facts; every gallery picture finds itself at rank 1, with
the neighbours faisssearch gives in a pipeline of its own; multipart uploads;
more like this; thumbnails; every error status (400, 401, 404, 405, 411,
413) with a JSON message; 50 malformed requests and the server still
answering; path traversal; the token; a connection whose headers never end
closed after --idle-timeout; refusing a non-loopback bind without
one; the live camera's events and MJPEG frames; the security headers; an
index of faces: an upload searched face by face, a picture without a face,
live events listing each frame's faces.
"""
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

import gi
from PIL import Image

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_fixtures as sf  # noqa: E402
from checks import check, finish  # noqa: E402


def js(body):
    try:
        return json.loads(body)
    except ValueError:
        return None


def read_stream(server, path, marker, count):
    """The start of a streaming answer, read until marker appeared count times."""
    host, port = server.url[len("http://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while got.count(marker) < count:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    return got


def raw(server, data, timeout=10, whole=True):
    """Sends bytes on a fresh connection; returns what came back (maybe b"")
    until the server closed. whole=False: the client does not end its side, as
    one whose body would follow, so b"" if the server waits for that body."""
    host, port = server.url[len("http://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        try:
            s.sendall(data)
            if whole:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except OSError:
            pass
        return out


def refused_from_headers(server, what, head, status):
    reply = raw(server, head, whole=False)
    _, _, body = reply.partition(b"\r\n\r\n")
    check(reply.startswith(b"HTTP/1.1 %d" % status) and b"Connection: close" in reply and
          len((js(body) or {}).get("error", "")) > 10,
          f"{what}: {status} from the headers, without the body ({reply[:12]} {body[:60]})")


def listen_backlog(server):
    """The backlog of the server's listening socket, as ss reports it."""
    port = server.url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True,
                         timeout=30).stdout.split()
    return int(out[2]) if len(out) > 2 else 0


with tempfile.TemporaryDirectory() as tmp:
    paths = sf.make_gallery(tmp)
    index = sf.build_index(tmp)
    gallery = os.path.join(tmp, "gallery")
    server = sf.Server("--index", index, "--max-upload", "1")
    try:
        # --- the index
        status, ctype, body, headers = server.request("/api/index")
        facts = js(body) or {}
        check(status == 200 and ctype.startswith("application/json") and
              facts.get("count") == 30 and facts.get("dims") == 512 and
              facts.get("metric") == "ip" and facts.get("thumbnails") is True,
              f"/api/index: 30 items, 512 dims, ip, thumbnails ({str(facts)[:120]})")
        check(facts.get("random_weights") is True and ":random-seed" in facts.get("model", ""),
              "/api/index says the fixture's weights are random", facts.get("model"))
        check([(l["label_name"], l["count"]) for l in facts.get("labels", [])] ==
              [(name, 10) for name, _ in sorted(sf.CLASSES)], "/api/index: labels with their counts")
        csp = headers.get("Content-Security-Policy", "")
        check("default-src 'none'" in csp and "script-src 'self'" in csp and
              headers.get("X-Content-Type-Options") == "nosniff",
              "a strict Content-Security-Policy and nosniff on every answer")

        # --- every picture finds itself first
        found = 0
        for i, rel in enumerate(paths):
            with open(os.path.join(gallery, rel), "rb") as f:
                status, _, body, _ = server.request("/api/search?k=5", data=f.read())
            res = js(body) or {}
            n = res.get("neighbors", [])
            found += status == 200 and len(n) == 5 and n[0]["source"] == rel and \
                n[0]["id"] == i and n[0]["rank"] == 1 and abs(n[0]["distance"]) < 1e-3 and \
                abs(n[0]["similarity"] - 1) < 1e-3
        check(found == len(paths), f"each of the {len(paths)} gallery pictures finds itself at rank 1 ({found})")
        check(all(key in res.get("timings", {}) for key in ("decode_ms", "embed_search_ms", "total_ms")),
              "a search reports its timings")
        first = res["neighbors"][0] if res.get("neighbors") else {}
        check(first.get("thumbnail") == f"/api/items/{first.get('id')}/thumbnail" and
              first.get("label_name") == rel.split("/")[0],
              "a neighbour carries its label name and thumbnail URL")

        # --- the same neighbours as faisssearch in a pipeline of its own
        picture = os.path.join(gallery, paths[12])
        Gst.init(None)
        p = Gst.parse_launch(f"filesrc location={picture} ! pngdec ! videoconvert ! "
                             f"video/x-raw,format=RGB ! embedder index={index} ! "
                             f"faisssearch index={index} k=8 name=search ! fakesink")
        ids = []
        bus = p.get_bus()
        p.set_state(Gst.State.PLAYING)
        msg = bus.timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR |
                                     Gst.MessageType.ELEMENT)
        while msg and msg.type == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s and s.has_field("ids"):
                ids = list(s.get_value("ids"))
            msg = bus.timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.EOS |
                                         Gst.MessageType.ERROR | Gst.MessageType.ELEMENT)
        p.set_state(Gst.State.NULL)
        with open(picture, "rb") as f:
            res = js(server.request("/api/search?k=8", data=f.read())[2]) or {}
        check(ids and [n["id"] for n in res.get("neighbors", [])] == ids,
              f"the server's neighbours are faisssearch's in a plain pipeline ({ids[:4]}...)")

        # --- multipart upload, k, max-distance
        with open(os.path.join(gallery, paths[3]), "rb") as f:
            png = f.read()
        boundary = "vsboundary"
        multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
                     f"filename=\"q.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + png + \
            f"\r\n--{boundary}--\r\n".encode()
        status, _, body, _ = server.request(
            "/api/search?k=3", data=multipart,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        res = js(body) or {}
        check(status == 200 and [n["source"] for n in res.get("neighbors", [])][:1] == [paths[3]] and
              len(res["neighbors"]) == 3, "a multipart/form-data upload searches its file (k=3)")
        status, _, body, _ = server.request("/api/search?k=30&max-distance=0.0001", data=png)
        res = js(body) or {}
        check(status == 200 and [n["source"] for n in res.get("neighbors", [])] == [paths[3]],
              "max-distance keeps only neighbours at most that far (ip: 1 - similarity)")

        # --- items, thumbnails, more like this
        status, _, body, _ = server.request("/api/items/13")
        check(status == 200 and js(body) == {"id": 13, "label": 1, "label_name": "green",
                                             "source": paths[13],
                                             "thumbnail": "/api/items/13/thumbnail"},
              "/api/items/13 is the catalog's item")
        status, ctype, body, _ = server.request("/api/items/13/thumbnail")
        try:
            thumb = Image.open(io.BytesIO(body))
            thumb_ok = thumb.format == "JPEG" and max(thumb.size) <= 128
        except Exception:
            thumb_ok = False
        check(status == 200 and ctype == "image/jpeg" and thumb_ok,
              "/api/items/13/thumbnail is the catalog's JPEG thumbnail")
        status, _, body, _ = server.request("/api/items/13/similar?k=4")
        res = js(body) or {}
        sims = res.get("neighbors", [])
        check(status == 200 and len(sims) == 4 and all(n["id"] != 13 for n in sims) and
              [n["rank"] for n in sims] == [1, 2, 3, 4],
              "more like this: k neighbours of the stored vector, the item itself left out")
        with open(os.path.join(gallery, paths[13]), "rb") as f:
            upload = js(server.request("/api/search?k=5", data=f.read())[2]) or {}
        check([n["id"] for n in upload.get("neighbors", [])][1:] == [n["id"] for n in sims],
              "more like this agrees with searching the item's own picture")

        # --- errors: status and a JSON message a person can act on
        def error_case(what, expect, path, **kw):
            status, ctype, body, _ = server.request(path, **kw)
            msg = (js(body) or {}).get("error", "")
            check(status == expect and ctype.startswith("application/json") and len(msg) > 10,
                  f"{what}: {expect} with a message ({status}: {msg[:70]})")
        error_case("an undecodable picture", 400, "/api/search", data=b"not a picture" * 10)
        error_case("a truncated PNG", 400, "/api/search", data=png[:len(png) // 2])
        error_case("an empty body", 400, "/api/search", data=b"")
        error_case("k=0", 400, "/api/search?k=0", data=png)
        error_case("k past --k-max", 400, "/api/search?k=5000", data=png)
        error_case("max-distance=abc", 400, "/api/search?max-distance=abc", data=png)
        error_case("an upload past --max-upload", 413, "/api/search", data=b"\0" * (1 << 20 | 1))
        error_case("GET /api/search", 405, "/api/search")
        error_case("an unknown id", 404, "/api/items/30")
        error_case("a negative id", 404, "/api/items/-1")
        error_case("a huge id", 404, "/api/items/99999999999999999999999")
        error_case("an unknown item resource", 404, "/api/items/3/nothing")
        error_case("an unknown API", 404, "/api/nothing")
        reply = raw(server, b"POST /api/search HTTP/1.1\r\nHost: x\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        check(reply.startswith(b"HTTP/1.1 411"), f"an upload without Content-Length: 411 ({reply[:20]})")
        # --- refused from the headers, before any of the body is read
        big = b"Content-Length: 300000000\r\n\r\n"
        refused_from_headers(server, "a 300 MB body to /", b"POST / HTTP/1.1\r\nHost: x\r\n" + big,
                             405)
        refused_from_headers(server, "a 300 MB upload past --max-upload",
                             b"POST /api/search HTTP/1.1\r\nHost: x\r\n" + big, 413)
        refused_from_headers(server, "a chunked upload",
                             b"POST /api/search HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n", 411)
        refused_from_headers(server, "a body to GET /api/index",
                             b"GET /api/index HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
                             413)
        refused_from_headers(server, "Content-Length: 99999999999999999999",
                             b"POST /api/search HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 99999999999999999999\r\n\r\n", 400)
        refused_from_headers(server, "two different Content-Lengths",
                             b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                             b"Content-Length: 600000\r\n\r\nhello", 400)
        reply = raw(server, b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                            b"Content-Length: 3\r\n\r\nabc")
        check(reply.startswith(b"HTTP/1.1 400") and b"not an image" in reply,
              f"two equal Content-Lengths: the body is read (an undecodable picture: {reply[:12]})")
        backlog = listen_backlog(server)
        check(backlog >= 128, f"the listen backlog holds {backlog} connections (>= 128)")

        bomb = io.BytesIO()
        Image.new("L", (9000, 9000)).save(bomb, "PNG")
        error_case("a picture past the pixel limit", 413, "/api/search?k=1", data=bomb.getvalue())

        # --- 50 malformed requests, then a good one
        rng = random.Random(3)
        malformed = [
            b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\xff" * 100,
            b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
            b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            b"GET /api/items/1 HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 2000 + b"\r\n",
            b"POST /api/search?k=%ZZ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
            b"boundary=zz\r\nContent-Length: 10\r\n\r\n--zz\r\nxxxx",
            b"GET /api/items/%00 HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        while len(malformed) < 50:
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
            malformed.append(rng.choice([junk, b"POST /api/search HTTP/1.1\r\nHost: x\r\n"
                                         b"Content-Length: " + str(len(junk)).encode() +
                                         b"\r\n\r\n" + junk]))
        # Junk without an end of headers gets no answer: the server waits for
        # the rest, and the client gives up after a second.
        for data in malformed:
            raw(server, data, timeout=1)
        status, _, body, _ = server.request("/api/search?k=1", data=png)
        check(server.alive() and status == 200 and
              (js(body) or {}).get("neighbors", [{}])[0].get("source") == paths[3],
              "after 50 malformed requests the server still answers a good one")

        # --- the page, and nothing outside the web root
        status, ctype, body, _ = server.request("/")
        check(status == 200 and ctype.startswith("text/html") and b"app.js" in body,
              "/ serves the page")
        status, ctype, _, _ = server.request("/app.js")
        check(status == 200 and ctype.startswith("text/javascript"), "/app.js as JavaScript")
        leaks = []
        for path in [b"/../../../../etc/passwd", b"/%2e%2e/%2e%2e/etc/passwd", b"/..%2f..%2fetc%2fpasswd",
                     b"//etc/passwd", b"/index.html/../../main.cpp", b"/../main.cpp", b"/.hidden",
                     b"/web/", b"/%2e%2e%2fmeson.build", b"/etc/passwd",
                     b"/api/items/1/../../../../etc/passwd"]:
            reply = raw(server, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if b"root:" in reply or b"#include" in reply or b"project(" in reply or \
                    not (reply.startswith(b"HTTP/1.1 404") or reply.startswith(b"HTTP/1.1 400")):
                leaks.append((path, reply[:40]))
        check(not leaks, f"path traversal and listings get 404 or 400, never a file ({leaks[:2]})")
        # Under the sanitizers, a report at exit would show here.
        check(server.stop() == 0, "the server stops cleanly on SIGTERM (exit status 0)")
    finally:
        server.stop()

    # --- the token
    server = sf.Server("--index", index, "--token", "s3cret", "--idle-timeout", "3")
    try:
        # A client that never ends its headers (slowloris) is dropped.
        host, port = server.url[len("http://"):].split(":")
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(b"GET /api/index HTTP/1.1\r\nHost: x\r\n")
            start = time.time()
            try:
                closed = s.recv(100) == b""
            except OSError:
                closed = False
            waited = time.time() - start
        check(closed and 2 < waited < 20,
              f"a connection that never ends its headers is closed after --idle-timeout ({waited:.1f} s)")
        status, _, body, _ = server.request("/api/index")
        check(status == 401 and "token" in (js(body) or {}).get("error", ""),
              "with --token, a request without it: 401")
        refused_from_headers(server, "a 300 MB body to /api/index without the token",
                             b"POST /api/index HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 300000000\r\n\r\n", 401)
        refused_from_headers(server, "a chunked body to /api/items/1 without the token",
                             b"GET /api/items/1 HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n", 401)
        status = server.request("/api/index", headers={"Authorization": "Bearer wrong"})[0]
        check(status == 401, "a wrong token: 401")
        status = server.request("/api/index", headers={"Authorization": "Bearer s3cret"})[0]
        check(status == 200, "Authorization: Bearer TOKEN: 200")
        status = server.request("/api/items/1/thumbnail?token=s3cret")[0]
        check(status == 200, "?token=TOKEN (for <img> and EventSource): 200")
        check(server.request("/api/search", data=png)[0] == 401, "a search without the token: 401")
        check(server.request("/")[0] == 200, "the page itself loads without the token")
    finally:
        server.stop()

    # --- a request that trickles in, a byte at a time, well within --idle-timeout
    server = sf.Server("--index", index, "--idle-timeout", "5", "--request-timeout", "3")
    try:
        host, port = server.url[len("http://"):].split(":")
        request = b"GET /api/index HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        reply, start = b"", time.time()
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.settimeout(1)
            for byte in request:
                try:
                    s.sendall(bytes([byte]))
                    reply = s.recv(1000)
                    break  # answered (or closed: b"")
                except socket.timeout:
                    pass
                except OSError:
                    break
                if time.time() - start > 25:
                    break
        waited = time.time() - start
        check(reply.startswith(b"HTTP/1.1 408") and 2 < waited < 20,
              f"a request still arriving after --request-timeout: 408 and closed "
              f"({waited:.1f} s, {reply[:12]})")
    finally:
        server.stop()

    res = subprocess.run([sf.SERVER, "--index", index, "--bind", "0.0.0.0",
                                        "--port", "0"], capture_output=True, text=True, timeout=60)
    check(res.returncode == 2 and "--token" in res.stderr,
          f"binding beyond loopback without --token is refused ({res.stderr.strip()[:80]})")
    res = subprocess.run([sf.SERVER, "--index", os.path.join(tmp, "none.faiss"),
                                        "--port", "0"], capture_output=True, text=True, timeout=60)
    check(res.returncode == 1 and "none.faiss" in res.stderr,
          f"a missing index is an error naming it ({res.stderr.strip()[:80]})")

    # --- a folder gallery indexed without thumbnails: originals from the folder its catalog records
    bare = sf.build_bare_index(tmp, os.path.join(tmp, "bare.faiss"))
    server = sf.Server("--index", bare)
    try:
        status, ctype, body, _ = server.request("/api/items/4/thumbnail")
        check(status == 200 and ctype == "image/jpeg" and body[:2] == b"\xff\xd8",
              f"no catalog thumbnails, no --gallery: the original is read from the folder the "
              f"catalog records ({status} {ctype})")
    finally:
        server.stop()
    server = sf.Server("--index", bare, "--gallery", os.path.join(tmp, "elsewhere"))
    try:
        status = server.request("/api/items/4/thumbnail")[0]
        check(status == 404, f"--gallery still wins over the recorded folder ({status})")
    finally:
        server.stop()

    # --- the live camera
    server = sf.Server("--index", index, "--camera", "videotestsrc is-live=true pattern=ball")
    try:
        got = read_stream(server, b"/api/live/events", b"event: neighbors", 3)
        events = [json.loads(line[len(b"data: "):]) for line in got.split(b"\n")
                  if line.startswith(b"data: {")]
        check(got.startswith(b"HTTP/1.1 200") and b"text/event-stream" in got and
              len(events) >= 2 and all(len(e["neighbors"]) == 5 for e in events) and
              events[-1]["frame"] > events[0]["frame"],
              f"/api/live/events streams the camera's neighbours ({len(events)} events)")
        got = read_stream(server, b"/live.mjpeg", b"--vsframe", 3)
        frames = []
        for part in got.split(b"--vsframe")[1:-1]:
            head, _, data = part.partition(b"\r\n\r\n")
            try:
                frames.append(Image.open(io.BytesIO(data)).size)
            except Exception:
                pass
        check(b"multipart/x-mixed-replace; boundary=vsframe" in got and len(frames) >= 2 and
              all(size == (640, 480) for size in frames),
              f"/live.mjpeg streams 640x480 JPEG frames ({frames[:2]})")
        check(server.request("/api/index")[0] == 200 and server.alive(),
              "the server keeps answering after live clients leave")
    finally:
        server.stop()

# --- an index of faces: uploads and camera frames searched face by face
ASTRONAUT = "/usr/lib/python3/dist-packages/imageio/resources/images/astronaut.png"
if not check(Gst.ElementFactory.find("facedetect") is not None and os.path.exists(ASTRONAUT),
             "facedetect (gstreamer1.0-opencv, opencv-data) and astronaut.png "
             "(python3-imageio) are installed: scripts/install-deps.sh"):
    finish()
with tempfile.TemporaryDirectory() as tmp:
    faces = os.path.join(tmp, "faces")
    os.makedirs(faces)
    astronaut = Image.open(ASTRONAUT).convert("RGB")
    astronaut.save(os.path.join(faces, "astronaut.png"))
    astronaut.transpose(Image.FLIP_LEFT_RIGHT).save(os.path.join(faces, "mirrored.png"))
    index = os.path.join(tmp, "faces.faiss")
    subprocess.run(["gst-launch-1.0", "-q", "gallerysrc", f"location={faces}", "!",
                    "videoconvert", "!", "facedetect", "display=false", "updates=none", "!",
                    "videoconvert", "!", "embedder", "roi-types=face", "weights=random",
                    "input-size=64", "resize=72", "threads=1", "!", "faissindexer",
                    f"location={index}"], check=True, timeout=300, stderr=subprocess.DEVNULL)
    server = sf.Server("--index", index, "--camera",
                       f"filesrc location={ASTRONAUT} ! pngdec ! imagefreeze is-live=true")
    try:
        check((js(server.request("/api/index")[2]) or {}).get("roi_types") == "face",
              "/api/index names the index's roi-types")
        with open(ASTRONAUT, "rb") as f:
            status, _, body, _ = server.request("/api/search?k=2", data=f.read())
        res = js(body) or {}
        regions = res.get("regions") or []
        q = res.get("query", {})
        inside = all(0 <= r["x"] and r["x"] + r["w"] <= q.get("width", 0) and 0 <= r["y"] and
                     r["y"] + r["h"] <= q.get("height", 0) and r["w"] > 40 for r in regions)
        best = [r["neighbors"][0] for r in regions if r.get("neighbors")]
        check(status == 200 and res.get("neighbors") == [] and len(regions) >= 1 and inside and
              all(r["roi_type"] == "face" and len(r["neighbors"]) == 2 for r in regions),
              "an upload to a face index is searched face by face: boxes inside the picture, "
              "k neighbours each", str(res)[:300])
        check(any(n["source"].startswith("astronaut.png#xywh=") and n["similarity"] > 0.999 and
                  n["thumbnail"] == f"/api/items/{n['id']}/thumbnail" for n in best),
              "astronaut.png's face finds its own crop first, with its thumbnail URL", best)
        buf = io.BytesIO()
        Image.new("RGB", (200, 150), (40, 120, 200)).save(buf, "PNG")
        status, _, body, _ = server.request("/api/search?k=2", data=buf.getvalue())
        res = js(body) or {}
        check(status == 200 and res.get("regions") == [] and
              "no region of type face" in res.get("message", ""),
              "a picture without a face: 200, no region, and a message saying why", res)

        # The events before the last marker have arrived whole.
        got = read_stream(server, b"/api/live/events", b"event: neighbors", 3)
        whole = got.rsplit(b"event: neighbors", 1)[0]
        events = [json.loads(line[len(b"data: "):]) for line in whole.split(b"\n")
                  if line.startswith(b"data: {")]
        check(len(events) >= 2 and all(e.get("width") == 640 and e.get("height") == 480 and
                                       len(e.get("regions", [])) >= 1 and
                                       len(e["regions"][0]["neighbors"]) == 2
                                       for e in events),
              "live events of a face index list each frame's faces, boxes in frame pixels, "
              "with their neighbours", str(events)[:300])
    finally:
        server.stop()

finish()
