#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""visualsearch-server --subscribe against a real broker (Debian's mosquitto
on a free loopback port, tests/test_metapublish.py's Broker):

- two publishing pipelines with different source-names: gallery pictures !
  embedder ! faisssearch ! metapublish method=mqtt (a second metapublish
  method=file records what was published), and pipelines/publish-camera.sh
  with CAMERA=videotestsrc (mosquitto_sub records what it published): GET
  /api/sources lists both, each with the latest frame and neighbours the
  pipeline published, thumbnails from the served gallery;
- publish-camera.sh --help documents it, a malformed BROKER is refused;
- a malformed message, a foreign JSON document and a result whose ids the
  gallery does not hold: the first two are counted as rejected, the server
  keeps running and answering, the third is shown without thumbnails;
- the page, in headless chromium at phone width: the Cameras tab shows a
  tile per source with its matches, thumbnails that load and the probe's
  label instead of a picture, no broken image, nothing scrolling sideways;
- a broker that is not there yet: the server starts, says so and that it
  is not connected, and connects once the broker comes;
- /api/index says "subscribe"; without --subscribe /api/sources is a 404;
  a bad --subscribe URL or topic filter is refused at start with a sentence.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_fixtures as sf  # noqa: E402
from checks import check, finish  # noqa: E402
from test_metapublish import Broker, Subscriber  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pipelines",
                      "publish-camera.sh")

WAIT = 60  # seconds: the bound of every wait for something that must happen


def sources(server):
    status, _, body, _ = server.request("/api/sources")
    assert status == 200, (status, body)
    return json.loads(body)


def wait_until(what, predicate):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def publish(tmp, index, port, source, head):
    """Runs head ! embedder ! faisssearch ! metapublish (mqtt, then file) to
    EOS; returns the documents the file got, the last one what the broker got
    last."""
    lines = os.path.join(tmp, source + ".jsonl")
    subprocess.run(["gst-launch-1.0", "-q", *head.split(), "!", "videoconvert", "!",
                    "embedder", f"index={index}", "threads=1", "!",
                    "faisssearch", f"index={index}", "k=3", "!",
                    "metapublish", "method=mqtt", f"address=127.0.0.1:{port}",
                    "topic=cams/%s/results", f"source-name={source}", "qos=1", "!",
                    "metapublish", "method=file", f"location={lines}",
                    f"source-name={source}", "!", "fakesink"],
                   check=True, timeout=300)
    with open(lines) as f:
        return [json.loads(line) for line in f]


def publish_camera(tmp, index, port, source):
    """Runs pipelines/publish-camera.sh on 6 videotestsrc frames; returns the
    documents mosquitto_sub received from it (the leaky queue before the
    embedder may drop frames, so how many is not known in advance)."""
    listener = Subscriber(port, "cams")
    try:
        assert listener.ready(), "mosquitto_sub did not start"
        run = subprocess.run([SCRIPT, index, f"127.0.0.1:{port}", "-k", "3"],
                             env=dict(os.environ, CAMERA="videotestsrc num-buffers=6",
                                      SOURCE_NAME=source, TOPIC="cams/%s/results", QOS="1",
                                      WIDTH="64", HEIGHT="64"),
                             capture_output=True, text=True, timeout=300)
        check(run.returncode == 0, "publish-camera.sh runs to the end", run.stderr)

        def mine():
            return [d for t, d in listener.documents() if t == f"cams/{source}/results"]
        # frames count the results published: the last one numbers them all
        wait_until("publish-camera.sh's results",
                   lambda: mine() and len(mine()) == mine()[-1]["frame"] + 1)
        return mine()
    finally:
        listener.stop()


def script_usage(tmp, index):
    run = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=60)
    check(run.returncode == 0 and "BROKER" in run.stdout and "SOURCE_NAME" in run.stdout,
          "publish-camera.sh --help documents it", run.stdout)
    run = subprocess.run([SCRIPT, index, "mqtt://broker/x"], capture_output=True, text=True,
                         timeout=60)
    check(run.returncode == 1 and "HOST:PORT" in run.stderr,
          "publish-camera.sh refuses a malformed BROKER", run.stderr)


def mosquitto_pub(port, topic, message):
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                    "-t", topic, "-m", message], check=True, timeout=WAIT)


def same_neighbors(shown, published):
    keys = ("id", "label", "label_name", "source", "rank", "distance", "similarity")
    return [{k: n[k] for k in keys} for n in shown] == \
        [{k: n[k] for k in keys} for n in published]


SHOTS = os.path.join(sf.BUILD, "tests", "screenshots")
BROKEN = """return [...document.images].filter(i => i.offsetParent !== null &&
    i.getAttribute('src') && i.complete && i.naturalWidth === 0).map(i => i.id || i.src)"""


def wait_for(what):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            value = what()
            if value:
                return value
        except Exception:
            pass
        time.sleep(0.2)
    return None


def page(server):
    """The Cameras tab at phone width, in the browser test_server_browser.py uses."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService
    from selenium.webdriver.common.by import By
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=390,844", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options,
                              service=ChromeService(executable_path="/usr/bin/chromedriver"))
    try:
        driver.set_page_load_timeout(60)
        driver.get(server.url + "/")
        tab = wait_for(lambda: driver.find_element(By.ID, "tab-cameras").is_displayed()
                       and driver.find_element(By.ID, "tab-cameras"))
        check(bool(tab), "the page shows the Cameras tab")
        tab.click()
        tiles = wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#cameras .camera"))
                         == 3 and driver.find_elements(By.CSS_SELECTOR, "#cameras .camera"))
        names = [t.find_element(By.TAG_NAME, "h2").text for t in tiles or []]
        check(names == ["door", "probe", "yard"], "a tile per source", names)
        loaded = wait_for(lambda: driver.execute_script(
            "const i = [...document.querySelectorAll('#cameras img')];"
            "return i.length === 6 && i.every(x => x.complete && x.naturalWidth > 0)"))
        check(loaded, "door's and yard's matches show the gallery's thumbnails")
        probe = driver.find_element(By.CSS_SELECTOR, "#cameras .camera[data-source=probe]").text
        check("nowhere" in probe and "not in this gallery" in probe,
              "a match outside the gallery shows its label and a sentence", probe)
        broken = driver.execute_script(BROKEN)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        check(not broken and overflow <= 0,
              f"no broken image ({broken}), nothing scrolls sideways ({overflow})")
        os.makedirs(SHOTS, exist_ok=True)
        driver.save_screenshot(os.path.join(SHOTS, "cameras-phone.png"))
    finally:
        driver.quit()


def bad_urls(index):
    for url, says in [("http://127.0.0.1/cams", "mqtt://"),
                      ("mqtt://127.0.0.1:1883", "names no topic"),
                      ("mqtt://127.0.0.1:99999/cams", "port"),
                      ("mqtt://127.0.0.1:1883/cams/#/x", "topic filter")]:
        run = subprocess.run([sf.SERVER, "--index", index, "--port", "0", "--subscribe", url],
                             capture_output=True, text=True, timeout=120)
        check(run.returncode != 0 and says in run.stderr,
              f"--subscribe {url} is refused, saying '{says}'",
              f"{run.returncode} {run.stderr}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        sf.make_gallery(tmp)
        index = sf.build_index(tmp)
        broker = Broker(tmp, "broker")
        server = sf.Server("--index", index,
                           "--subscribe", f"mqtt://127.0.0.1:{broker.port}/cams/+/results")
        try:  # the broker starts in here, so that a failure stops it
            check(sources(server)["connected"] is False,
                  "with no broker yet the server runs and says it is not connected")
            broker.start()
            status, _, body, _ = server.request("/api/index")
            check(json.loads(body).get("subscribe") is True, "/api/index says subscribe")
            wait_until("the server's subscription", lambda: sources(server)["connected"])
            # the subscription is made just after the connection: a probe
            # message that arrives says it is in place
            probe = json.dumps({"schema": "visualsearch-result/1", "source": "probe",
                                "frame": 0, "pts": None, "wall_time_us": 1,
                                "metric": "ip",
                                "neighbors": [{"id": 99999, "label": 4,
                                               "label_name": "nowhere", "source": "x.png",
                                               "rank": 1, "distance": 0.5,
                                               "similarity": 0.5}]})
            def probed():
                mosquitto_pub(broker.port, "cams/probe/results", probe)
                time.sleep(0.2)
                return any(s["source"] == "probe" for s in sources(server)["sources"])
            wait_until("a probe message", probed)

            mosquitto_pub(broker.port, "cams/junk/results", "not json {")
            mosquitto_pub(broker.port, "cams/junk/results", json.dumps({"schema": "other/1"}))
            a = publish(tmp, index, broker.port, "door",
                        f"gallerysrc location={tmp}/gallery")
            b = publish_camera(tmp, index, broker.port, "yard")
            check(len(a) == sf.PER_CLASS * len(sf.CLASSES) and len(b) >= 1,
                  "the pipelines published results", f"{len(a)} {len(b)}")

            def both():
                doc = sources(server)
                by = {s["source"]: s for s in doc["sources"]}
                if by.get("door", {}).get("messages") == len(a) and \
                        by.get("yard", {}).get("messages") == len(b):
                    return doc
                return None
            doc = wait_until("every result of both pipelines", both)
            by = {s["source"]: s for s in doc["sources"]}
            check(doc["schema"] == "visualsearch-sources/1"
                  and sorted(by) == ["door", "probe", "yard"],
                  "/api/sources lists the two cameras and the probe", sorted(by))
            for name, published in (("door", a), ("yard", b)):
                shown, last = by[name], published[-1]
                check(shown["frame"] == last["frame"] and shown["metric"] == last["metric"]
                      and shown["pts"] == last["pts"]
                      and same_neighbors(shown["neighbors"], last["neighbors"])
                      and len(shown["neighbors"]) == 3,
                      f"{name}: the latest result is the one published last",
                      f"{shown} {last}")
                urls = [n.get("thumbnail") for n in shown["neighbors"]]
                check(all(urls), f"{name}: neighbours have the gallery's thumbnails", urls)
                status, kind, _, _ = server.request(urls[0])
                check(status == 200 and kind == "image/jpeg", f"{name}: a thumbnail loads",
                      f"{status} {kind}")
            check("thumbnail" not in by["probe"]["neighbors"][0]
                  and by["probe"]["neighbors"][0]["label_name"] == "nowhere",
                  "an id the gallery does not hold has no thumbnail, its label is kept")
            check(doc["rejected"] == 2 and "schema" in (doc["last_rejection"] or ""),
                  "the malformed and the foreign message are rejected and counted",
                  f"{doc['rejected']} {doc['last_rejection']}")
            page(server)
            status, _, _, _ = server.request("/api/index")
            check(server.alive() and status == 200, "the server keeps serving")
        finally:
            server.stop()
            broker.stop()
        stderr = server.proc.stderr.read()
        check(stderr.count("ignoring a message") == 1,
              "one rejected message is logged, the next only counted", stderr)
        check("retrying" in stderr and "connected to 127.0.0.1" in stderr,
              "the missing broker and the connection made are logged", stderr)

        plain = sf.Server("--index", index)
        try:
            status, _, body, _ = plain.request("/api/sources")
            check(status == 404 and b"--subscribe" in body,
                  "without --subscribe /api/sources is a 404 that says how", body)
        finally:
            plain.stop()
        bad_urls(index)
        script_usage(tmp, index)
    finish()


if __name__ == "__main__":
    main()
