#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""metapublish against a real broker: Debian's mosquitto, started here on a
free loopback port, and mosquitto_sub as the consumer.

- method=file: one JSON line per searched frame, equal to faisssearch's bus
  message for the same frame; `location=-` writes the lines to stdout, the
  embedding as base64 equal to the JSON array.
- method=mqtt: what the subscriber receives equals the bus messages.
- The broker stopped and restarted mid-stream (the stream is held at two
  frames by a pad probe, so no step depends on timing): the pipeline keeps
  running, reconnects, published + dropped == frames, and only the oldest
  beyond max-queued are lost.
- A broker that takes no message (a fake one that never acknowledges):
  the pipeline runs to EOS, 1000 wait in flight and max-queued more, the
  older ones are dropped, and the unacknowledged count as failed at stop.
- TLS with tls-ca-file (a CA made here with openssl) publishes; a CA that
  did not sign the broker's certificate is an error.
- A login refused (a password file) is an error; a broker that is not there
  is a warning and everything queued beyond max-queued is dropped; a
  malformed address, a wildcard topic and a missing location are errors.

Usage: test_metapublish.py (VS_BUILD_DIR set by meson)
"""
import base64
import json
import os
import pwd
import socket
import struct
import subprocess
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from checks import check, finish, tmp_dir  # noqa: E402
from test_search_e2e import EMBEDDER, PER_BATCH, TEST_IMAGES, write_cifar10  # noqa: E402

MOSQUITTO = "/usr/sbin/mosquitto"
TRAIN = 5 * PER_BATCH
WAIT = 30  # seconds: the bound of every wait for something that must happen


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A mosquitto on 127.0.0.1:port with its own config (and, for the
    restart, a persistence file, so that the subscriber's session and the
    messages queued for it survive the restart)."""

    def __init__(self, tmp, name, users=None, persistence=False, tls=None):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        # run as root, mosquitto would switch to the user "mosquitto", who
        # cannot read the test's private directory
        lines = [f"listener {self.port} 127.0.0.1",
                 f"user {pwd.getpwuid(os.getuid()).pw_name}"]
        if users:
            passwords = os.path.join(self.dir, "passwords")
            for i, (user, password) in enumerate(users.items()):
                subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b",
                                passwords, user, password], check=True, timeout=30)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            lines += [f"cafile {tls['ca']}", f"certfile {tls['cert']}", f"keyfile {tls['key']}"]
        if persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "log"), "a"))
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: "
                           + open(os.path.join(self.dir, "log")).read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(WAIT)
        self.proc = None


class Subscriber:
    """mosquitto_sub -v on TOPIC/#: every line it prints, collected by a
    thread. ready() returns once a message published now reaches it."""

    def __init__(self, port, topic, auth=(), session=()):
        self.port, self.topic, self.auth = port, topic, list(auth)
        self.proc = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port),
                                      "-v", "-q", "1", "-t", topic + "/#", *auth, *session],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def ready(self):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port),
                            "-t", self.topic + "/ready", "-m", "ready", *self.auth],
                           timeout=WAIT, capture_output=True)
            until = time.monotonic() + 0.5
            while time.monotonic() < until:
                with self.lock:
                    if any(line.startswith(self.topic + "/ready ") for line in self.lines):
                        return True
                time.sleep(0.02)
        return False

    def documents(self):
        """(topic, document) of every result received, in order."""
        with self.lock:
            lines = list(self.lines)
        out = []
        for line in lines:
            topic, _, payload = line.partition(" ")
            if not topic.endswith("/ready"):
                out.append((topic, json.loads(payload)))
        return out

    def received(self):
        """How many results arrived so far."""
        with self.lock:
            return sum(1 for line in self.lines
                       if not line.partition(" ")[0].endswith("/ready"))

    def wait_for(self, count):
        deadline = time.monotonic() + WAIT
        while len(self.documents()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.documents()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(WAIT)


class Pipeline:
    """A pipeline run in this process; its bus is read by pump(), from the
    test's thread. The metapublish must be named pub."""

    def __init__(self, description):
        self.pipeline = Gst.parse_launch(description)
        self.pub = self.pipeline.get_by_name("pub")
        self.bus = self.pipeline.get_bus()
        self.results, self.warnings, self.infos, self.errors = [], [], [], []
        self.eos = False

    def play(self):
        self.pipeline.set_state(Gst.State.PLAYING)
        return self

    def pump(self, seconds=0.05):
        msg = self.bus.timed_pop(int(seconds * Gst.SECOND))
        while msg is not None:
            if msg.type == Gst.MessageType.ELEMENT and msg.get_structure().has_name("visualsearch"):
                self.results.append(msg.get_structure().copy())
            elif msg.type == Gst.MessageType.WARNING:
                self.warnings.append(msg.parse_warning()[0].message)
            elif msg.type == Gst.MessageType.INFO:
                self.infos.append(msg.parse_info()[0].message)
            elif msg.type == Gst.MessageType.ERROR:
                self.errors.append(msg.parse_error()[0].message)
            elif msg.type == Gst.MessageType.EOS:
                self.eos = True
            msg = self.bus.pop()

    def wait(self, predicate, seconds=WAIT):
        deadline = time.monotonic() + seconds
        while not predicate() and time.monotonic() < deadline:
            self.pump()
        return predicate()

    def counters(self):
        return {name: self.pub.get_property(name) for name in ("published", "dropped", "failed")}

    def stop(self):
        self.pipeline.set_state(Gst.State.NULL)
        self.pump(0)


def search(dataset, index, split, publish):
    return (f"cifarsrc location={dataset} split={split} ! {EMBEDDER} ! "
            f"faisssearch index={index} k=3 ! metapublish name=pub {publish} ! fakesink")


def score(neighbor, metric):
    """FAISS's score of a published neighbour, as the bus message has it. The
    shared neighbour list writes it as "distance"; where the list also has a
    "similarity" (distance then being 1 - inner product for ip), the ip score
    is the similarity."""
    if "similarity" in neighbor and metric == "ip":
        return neighbor["similarity"]
    return neighbor["distance"]


def same_as_bus(documents, results, what, source):
    """Every document equals the bus message of its frame (by PTS)."""
    by_pts = {s.get_value("timestamp"): s for s in results}
    bad = []
    for doc in documents:
        s = by_pts.get(doc.get("pts"))
        n = doc.get("neighbors", [])
        if (s is None or doc["schema"] != "visualsearch-result/1" or doc["source"] != source
                or doc["metric"] != s.get_value("metric")
                or [x["id"] for x in n] != list(s.get_value("ids"))
                or [score(x, doc["metric"]) for x in n] != list(s.get_value("distances"))
                or [x["label"] for x in n] != list(s.get_value("labels"))
                or [x["label_name"] for x in n] != list(s.get_value("label-names"))
                or [x["source"] for x in n] != list(s.get_value("sources"))
                or [x["rank"] for x in n] != list(range(1, len(n) + 1))):
            bad.append(doc)
    check(documents and not bad, f"{what}: each document equals the bus message of its frame",
          None if documents and not bad else (bad[:2] or "no documents"))


def file_method(tmp, dataset, index):
    out = os.path.join(tmp, "results.jsonl")
    run = Pipeline(search(dataset, index, "train", f"method=file location={out} "
                          "source-name=cam-a include-embedding=array")).play()
    run.wait(lambda: run.eos or run.errors)
    counters = run.counters()
    run.stop()
    check(run.eos and not run.errors, "method=file runs to EOS", run.errors)
    with open(out) as f:
        docs = [json.loads(line) for line in f]
    check(len(docs) == TRAIN and counters == {"published": TRAIN, "dropped": 0, "failed": 0},
          "method=file: a line per searched frame, all counted as published", (len(docs), counters))
    same_as_bus(docs, run.results, "method=file", "cam-a")
    check([d["frame"] for d in docs] == list(range(TRAIN))
          and [d["sample"]["source"] for d in docs]
          == [f"cifar10/train/{i}" for i in range(TRAIN)],
          "the documents number the frames and carry the frame's own item")
    check(all(len(d["embedding"]["values"]) == d["embedding"]["dims"] == 512
              and d["embedding"]["normalized"] and "wall_time" in d for d in docs),
          "include-embedding=array: the 512 values of the embedding")

    result = checks.gst_launch(*search(dataset, index, "train",
                                       "method=file location=- source-name=cam-a "
                                       "include-embedding=base64").split(), timeout=120)
    lines = result.stdout.splitlines()
    check(result.returncode == 0 and len(lines) == TRAIN,
          "location=- writes one line per frame to stdout", result.stderr[-500:] or len(lines))
    decoded = [list(struct.unpack(f"<{d['embedding']['dims']}f",
                                  base64.b64decode(d["embedding"]["base64"])))
               for d in map(json.loads, lines)]
    worst = max(abs(a - b) for doc, values in zip(docs, decoded)
                for a, b in zip(doc["embedding"]["values"], values))
    check(len(decoded) == TRAIN and worst < 1e-6,
          "include-embedding=base64: float32 little-endian bytes equal to the array", worst)


def mqtt_equals_bus(tmp, dataset, index):
    broker = Broker(tmp, "anonymous")
    broker.start()
    sub = Subscriber(broker.port, "vs")
    try:
        check(sub.ready(), "mosquitto_sub is subscribed")
        run = Pipeline(search(dataset, index, "train",
                              f"method=mqtt address=127.0.0.1:{broker.port} topic=vs/%s "
                              "source-name=cam-b qos=1")).play()
        run.wait(lambda: run.eos or run.errors)
        run.stop()
        counters = run.counters()
        mqtt_warnings = [w for w in run.warnings if "MQTT" in w]
        check(run.eos and not run.errors and not mqtt_warnings, "method=mqtt runs to EOS",
              run.errors + mqtt_warnings)
        check(counters == {"published": TRAIN, "dropped": 0, "failed": 0},
              "every frame's document is acknowledged by the broker", counters)
        received = sub.wait_for(TRAIN)
        check(len(received) == TRAIN and all(t == "vs/cam-b" for t, _ in received),
              "the subscriber receives a message per frame on vs/cam-b",
              [t for t, _ in received][:3] + [len(received)])
        same_as_bus([d for _, d in received], run.results, "method=mqtt", "cam-b")
    finally:
        sub.stop()
        broker.stop()


def broker_restart(tmp, dataset, index):
    max_queued = 4
    broker = Broker(tmp, "restart", persistence=True)
    broker.start()
    # a persistent session (-c, fixed id, qos 1): what is published while
    # mosquitto_sub reconnects to the restarted broker waits for it there
    sub = Subscriber(broker.port, "vs", session=("-c", "-i", "vs-test-restart"))
    run = None
    gates = {10: (threading.Event(), threading.Event()), 20: (threading.Event(), threading.Event())}
    seen = [0]

    def probe(pad, info):
        gate = gates.get(seen[0])
        if gate:
            gate[0].set()
            gate[1].wait(2 * WAIT)
        seen[0] += 1
        return Gst.PadProbeReturn.OK

    try:
        check(sub.ready(), "mosquitto_sub (persistent session) is subscribed")
        run = Pipeline(search(dataset, index, "train",
                              f"method=mqtt address=127.0.0.1:{broker.port} topic=vs/cam "
                              f"source-name=cam qos=1 max-queued={max_queued} "
                              "reconnect-delay-max=2"))
        run.pub.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)
        run.play()
        check(run.wait(lambda: gates[10][0].is_set() and run.counters()["published"] == 10),
              "frames 0-9 are published before the broker stops", run.counters())
        check(len(sub.wait_for(10)) >= 10, "... and received")
        broker.stop()
        check(run.wait(lambda: any("No connection to the MQTT broker" in w
                                   for w in run.warnings)),
              "the lost connection is a warning", run.warnings)
        gates[10][1].set()
        check(run.wait(gates[20][0].is_set), "the pipeline keeps running without the broker")
        c = run.counters()
        check(c == {"published": 10, "dropped": 10 - max_queued, "failed": 0}
              and any("Dropping the oldest results" in w for w in run.warnings),
              f"frames 10-19 while down: the oldest {10 - max_queued} dropped, with a warning",
              (c, run.warnings))
        broker.start()
        check(run.wait(lambda: run.counters()["published"] == 10 + max_queued
                       and any("Connected to the MQTT broker" in i for i in run.infos)),
              "it reconnects and sends the queued results (an info message says so)",
              (run.counters(), run.infos))
        gates[20][1].set()
        run.wait(lambda: run.eos or run.errors)
        check(run.wait(lambda: run.counters()["published"] == TRAIN - (10 - max_queued)),
              "the frames after the restart are published", run.counters())
        c = run.counters()
        run.stop()
        check(run.eos and not run.errors and c["published"] + c["dropped"] == TRAIN
              and c["failed"] == 0, "published + dropped == frames, none failed", c)
        expected = set(range(10)) | set(range(10 + 10 - max_queued, TRAIN))
        deadline = time.monotonic() + WAIT
        while (len({d["frame"] for _, d in sub.documents()}) < len(expected)
               and time.monotonic() < deadline):
            time.sleep(0.05)
        received = sub.documents()
        # (at qos 1 the broker may deliver a message twice to a subscriber
        # whose acknowledgement the stop cut off)
        frames = sorted({d["frame"] for _, d in received})
        check(frames == sorted(expected),
              "the subscriber gets every frame except the dropped oldest ones",
              sorted(set(expected) ^ set(frames)) or frames)
        same_as_bus([d for _, d in received], run.results, "across the restart", "cam")
    finally:
        for opened, release in gates.values():
            release.set()
        if run:
            run.stop()
        sub.stop()
        broker.stop()


def broker_late(tmp, dataset, index):
    """A pipeline started before its broker connects once the broker comes,
    and sends what waited: libmosquitto's own thread never retries a first
    connection that failed."""
    broker = Broker(tmp, "late")
    run = sub = None
    held, release = threading.Event(), threading.Event()
    seen = [0]

    def probe(pad, info):
        if seen[0] == 3:
            held.set()
            release.wait(2 * WAIT)
        seen[0] += 1
        return Gst.PadProbeReturn.OK

    try:
        run = Pipeline(search(dataset, index, "train",
                              f"method=mqtt address=127.0.0.1:{broker.port} topic=late/cam "
                              "source-name=cam reconnect-delay-max=1"))
        run.pub.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)
        run.play()
        check(run.wait(lambda: held.is_set() and any("No connection to the MQTT broker" in w
                                                      for w in run.warnings)),
              "no broker yet: a warning, and the stream goes on", run.warnings)
        broker.start()
        sub = Subscriber(broker.port, "late")
        check(sub.ready(), "mosquitto_sub is subscribed to the late broker")
        check(run.wait(lambda: run.counters()["published"] == 3
                       and any("Connected to the MQTT broker" in i for i in run.infos)),
              "the broker that came late is connected, and the 3 waiting results are sent",
              (run.counters(), run.infos))
        release.set()
        check(run.wait(lambda: run.eos or bool(run.errors)) and not run.errors,
              "the stream ends without an error", run.errors)
        check(run.wait(lambda: run.counters()["published"] == TRAIN),
              f"all {TRAIN} results published", run.counters())
        frames = {d["frame"] for _, d in sub.wait_for(TRAIN - 3)}
        check(set(range(3, TRAIN)) <= frames, "the subscriber gets the frames after it came",
              sorted(set(range(3, TRAIN)) - frames))
    finally:
        release.set()
        if run:
            run.stop()
        if sub:
            sub.stop()
        broker.stop()


def bad_input(tmp, dataset, index):
    broker = Broker(tmp, "auth", users={"camera": "s3cret"})
    broker.start()
    sub = Subscriber(broker.port, "vs", auth=("-u", "camera", "-P", "s3cret"))
    address = f"address=127.0.0.1:{broker.port}"
    try:
        check(sub.ready(), "mosquitto_sub logs in and is subscribed")
        run = Pipeline(search(dataset, index, "test", f"method=mqtt {address} topic=vs/auth "
                              "qos=1 username=camera password=s3cret")).play()
        run.wait(lambda: run.eos or run.errors)
        run.stop()
        check(run.eos and not run.errors and run.counters()["published"] == TEST_IMAGES
              and len(sub.wait_for(TEST_IMAGES)) == TEST_IMAGES,
              "with the right password every frame is published", (run.errors, run.counters()))

        run = Pipeline(search(dataset, index, "test", f"method=mqtt {address} topic=vs/auth "
                              "username=camera password=wrong")).play()
        run.wait(lambda: run.errors)
        run.stop()
        c = run.counters()
        # (the error usually comes before the first frame and fails the preroll)
        check(any("refused the connection (Connection Refused: not authorised.)" in e
                  and "username, password" in e for e in run.errors)
              and c["published"] == c["dropped"] == 0,
              "a wrong password is an error and nothing is published",
              (run.errors, c))
    finally:
        sub.stop()
        broker.stop()

    nobody = free_port()
    run = Pipeline(search(dataset, index, "test", f"method=mqtt address=127.0.0.1:{nobody} "
                          "max-queued=5")).play()
    run.wait(lambda: run.eos or run.errors)
    run.stop()
    c = run.counters()
    check(run.eos and not run.errors
          and any(f"No connection to the MQTT broker at 127.0.0.1:{nobody} (Connection refused)"
                  in w for w in run.warnings),
          "no broker at the address: a warning, and the pipeline runs to EOS",
          (run.errors, run.warnings))
    check(c == {"published": 0, "dropped": TEST_IMAGES - 5, "failed": 5},
          "no broker: the oldest beyond max-queued dropped, the rest unsent at stop", c)

    for publish, phrase in (
            ("method=mqtt address=127.0.0.1:99999", "Invalid MQTT broker address"),
            ("method=mqtt address=localhost:1883x", "Invalid MQTT broker address"),
            ("method=mqtt topic=vs/#", "Invalid MQTT topic"),
            ("method=mqtt password=x", "password is set but username is not"),
            ("method=file", "method=file needs location"),
            (f"method=file location={tmp}/no/such/dir/x.jsonl", "Could not open")):
        run = Pipeline(search(dataset, index, "test", publish)).play()
        run.wait(lambda: run.errors or run.eos)
        run.stop()
        check(any(phrase in e for e in run.errors) and run.counters()["published"] == 0,
              f"{publish}: an error naming the problem", run.errors)


def make_certificates(directory):
    """A CA and a broker certificate it signs, for 127.0.0.1 (openssl)."""
    os.makedirs(directory)

    def path(name):
        return os.path.join(directory, name)

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path("ca.key"),
            "-out", path("ca.crt"), "-days", "2", "-subj", "/CN=visualsearch test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", path("broker.key"),
            "-out", path("broker.csr"), "-subj", "/CN=127.0.0.1")
    with open(path("ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", path("broker.csr"), "-CA", path("ca.crt"), "-CAkey",
            path("ca.key"), "-CAcreateserial", "-out", path("broker.crt"), "-days", "2",
            "-extfile", path("ext.cnf"))
    return {"ca": path("ca.crt"), "cert": path("broker.crt"), "key": path("broker.key")}


def tls(tmp, dataset, index):
    certs = make_certificates(os.path.join(tmp, "certs"))
    broker = Broker(tmp, "tls", tls=certs)
    broker.start()
    sub = Subscriber(broker.port, "vs", auth=("--cafile", certs["ca"]))
    try:
        check(sub.ready(), "mosquitto_sub is subscribed over TLS")
        run = Pipeline(search(dataset, index, "test",
                              f"method=mqtt address=127.0.0.1:{broker.port} topic=vs/tls "
                              f"tls-ca-file={certs['ca']}")).play()
        run.wait(lambda: run.eos or run.errors)
        run.stop()
        check(run.eos and not run.errors and run.counters()["published"] == TEST_IMAGES
              and len(sub.wait_for(TEST_IMAGES)) == TEST_IMAGES,
              "tls-ca-file: every frame is published over TLS", (run.errors, run.counters()))
        # the broker's own certificate is not the CA that signed it
        run = Pipeline(search(dataset, index, "test",
                              f"method=mqtt address=127.0.0.1:{broker.port} topic=vs/tls "
                              f"tls-ca-file={certs['cert']}")).play()
        run.wait(lambda: run.errors)
        run.stop()
        check(any("The TLS handshake with the MQTT broker" in e and "tls-ca-file" in e
                  for e in run.errors) and run.counters()["published"] == 0,
              "a CA that did not sign the broker's certificate: an error naming tls-ca-file",
              run.errors)
    finally:
        sub.stop()
        broker.stop()


class StalledBroker:
    """Accepts one MQTT client, answers its CONNECT with a CONNACK, then reads
    everything and acknowledges nothing: a broker that stopped taking
    messages."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            conn, _ = self.server.accept()
            conn.recv(4096)                  # CONNECT
            conn.sendall(b"\x20\x02\x00\x00")  # CONNACK, accepted
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def close(self):
        self.server.close()


def stalled_broker(tmp, dataset, index):
    frames = 1020
    broker = StalledBroker()
    try:
        run = Pipeline(f"videotestsrc num-buffers={frames} ! video/x-raw,width=32,height=32 ! "
                       f"videoconvert ! {EMBEDDER} ! metapublish name=pub method=mqtt "
                       f"address=127.0.0.1:{broker.port} qos=1 max-queued=5 "
                       "include-embedding=base64 ! fakesink").play()
        run.wait(lambda: run.eos or run.errors, seconds=4 * WAIT)
        during = run.counters()
        run.stop()
        after = run.counters()
        check(run.eos and not run.errors, "a broker that acknowledges nothing never blocks the "
              "pipeline (embeddings alone are published too)", run.errors)
        check(during == {"published": 0, "dropped": frames - 1000 - 5, "failed": 0}
              and any("Dropping the oldest results" in w for w in run.warnings),
              "1000 in flight, max-queued more wait, the oldest beyond are dropped", during)
        check(after == {"published": 0, "dropped": frames - 1005, "failed": 1005},
              "at stop the unacknowledged ones count as failed", after)
    finally:
        broker.close()


def main():
    Gst.init(None)
    with tmp_dir() as tmp:
        dataset = os.path.join(tmp, "cifar-10-batches-py")
        write_cifar10(dataset, seed=11)
        index = os.path.join(tmp, "gallery.faiss")
        result = checks.gst_launch("cifarsrc", f"location={dataset}", "split=train", "!",
                                   *EMBEDDER.split(), "!", "faissindexer", f"location={index}")
        check(result.returncode == 0, "the gallery is indexed", result.stderr[-500:])
        for part in (file_method, mqtt_equals_bus, broker_restart, broker_late, bad_input, tls,
                     stalled_broker):
            start = time.monotonic()
            part(tmp, dataset, index)
            print(f"({part.__name__}: {time.monotonic() - start:.1f} s)", flush=True)
    finish()


if __name__ == "__main__":
    main()
