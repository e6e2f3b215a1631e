# SPDX-License-Identifier: LGPL-2.1-or-later
"""The web page in Debian's headless chromium (selenium + chromium-driver),
against a visualsearch-server on 127.0.0.1 with a videotestsrc camera.

Checks: the index facts show; the gallery shows a page at a time, by label,
and a picture of it shows more like it with a link to its original; picking a file shows the query and k results
with the picture itself first; clicking a result shows pictures like it; the
live tab shows camera frames and results that update; a file that is no
picture, and the live tab of a server without a camera, show a sentence and
no broken-image icon; paths wrap after a slash, not inside a name; the page
fits a phone-sized window without horizontal scrolling, its query picture
leaving the results on the first screen; no request leaves the server (the
browser log has no CSP violation or failed load); with an index of faces, an
upload at phone width shows a box per face on the picture and each face's
matches. Screenshots go
to the build directory (tests/screenshots/), for people (tools/server-screenshot.sh makes
the README's picture).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_fixtures as sf  # noqa: E402
from checks import check, finish  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service as ChromeService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

SHOTS = os.path.join(sf.BUILD, "tests", "screenshots")


def wait_for(what, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = what()
            if value:
                return value
        except Exception:
            pass
        time.sleep(0.2)
    return None


BROKEN = """return [...document.images].filter(i => i.offsetParent !== null &&
    i.getAttribute('src') && i.complete && i.naturalWidth === 0).map(i => i.id || i.src)"""

# Each path segment (a span between <wbr>s) must sit on one line.
SPLIT_SEGMENTS = """return [...document.querySelectorAll('#results .segment')].filter(s => {
    const r = document.createRange(); r.selectNodeContents(s);
    return new Set([...r.getClientRects()].map(c => Math.round(c.top))).size > 1;
  }).map(s => s.textContent)"""


def browser(width, height):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-default-apps", "--disable-sync", "--metrics-recording-only"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = ChromeService(executable_path="/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


os.makedirs(SHOTS, exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    paths = sf.make_gallery(tmp)
    index = sf.build_index(tmp)
    query = os.path.join(tmp, "gallery", paths[14])
    server = sf.Server("--index", index, "--camera", "videotestsrc is-live=true pattern=ball")
    driver = None
    try:
        driver = browser(1280, 900)
        driver.set_page_load_timeout(60)
        driver.get(server.url + "/")
        facts = wait_for(lambda: "30 pictures" in driver.find_element(By.ID, "facts").text and
                         driver.find_element(By.ID, "facts").text)
        check(bool(facts), f"the page shows the index facts ({facts})")
        notice = driver.find_element(By.ID, "weights-notice")
        check(notice.is_displayed() and notice.text.startswith("Random weights")
              and "index-folder.sh" in notice.text,
              "a random-weights gallery shows a visible notice, saying how to get real matches",
              notice.text)

        # Before any upload: the gallery, a page at a time, by label.
        shown = wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#browse-grid li")) == 24
                         and driver.find_element(By.ID, "browse-page").text)
        check(shown == "1–24 of 30", f"the gallery shows its first page of 24 ({shown!r})")
        driver.find_element(By.ID, "browse-next").click()
        shown = wait_for(lambda: driver.find_element(By.ID, "browse-page").text == "25–30 of 30" and
                         len(driver.find_elements(By.CSS_SELECTOR, "#browse-grid li")))
        check(shown == 6, f"next: the last 6 ({shown})")
        Select(driver.find_element(By.ID, "browse-label")).select_by_value("1")
        green = wait_for(lambda: driver.find_element(By.ID, "browse-page").text == "1–10 of 10" and
                         [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#browse-grid li")])
        check(bool(green) and all("green" in t for t in green),
              f"a label shows its pictures only ({(green or [''])[0]!r})")
        picked = driver.find_elements(By.CSS_SELECTOR, "#browse-grid li")[2]
        picked_id = picked.get_attribute("data-id")
        picked.click()
        liked = wait_for(lambda: f"like #{picked_id}." in driver.find_element(By.ID, "status").text)
        original = driver.find_element(By.ID, "query-original")
        check(bool(liked) and original.is_displayed() and
              original.get_attribute("href").endswith(f"/api/items/{picked_id}/original"),
              f"a gallery picture shows more like it, and a link to its original ({picked_id})")

        driver.find_element(By.ID, "k").clear()
        driver.find_element(By.ID, "k").send_keys("6")
        driver.find_element(By.ID, "file").send_keys(query)
        items = wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#results li")) == 6 and
                         driver.find_elements(By.CSS_SELECTOR, "#results li"))
        check(bool(items), "picking a file shows k=6 results")
        first = items[0].text if items else ""
        check(paths[14] in first and "1." in first, f"the picture itself comes first ({first!r})")
        loaded = wait_for(lambda: driver.execute_script(
            "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"))
        check(bool(loaded), "every result thumbnail loads")
        check(driver.find_element(By.ID, "query-img").get_attribute("src").startswith("blob:"),
              "the query shows beside the results")
        driver.save_screenshot(os.path.join(SHOTS, "search.png"))

        second_id = items[1].get_attribute("data-id") if items else None
        items[1].click() if items else None
        status = wait_for(lambda: f"like #{second_id}." in driver.find_element(By.ID, "status").text)
        after = [li.get_attribute("data-id") for li in driver.find_elements(By.CSS_SELECTOR, "#results li")]
        check(bool(status) and len(after) == 6 and second_id not in after,
              f"clicking a result shows pictures like it ({second_id}: {after})")
        driver.save_screenshot(os.path.join(SHOTS, "more-like-this.png"))

        driver.find_element(By.ID, "tab-live").click()
        frame = wait_for(lambda: driver.execute_script(
            "const i = document.getElementById('live-img'); return i.naturalWidth"), timeout=120)
        check(frame == 640, f"the live tab shows the camera's frames ({frame})")
        first_status = wait_for(lambda: "Frame" in driver.find_element(By.ID, "live-status").text and
                                driver.find_element(By.ID, "live-status").text, timeout=120)
        later = wait_for(lambda: driver.find_element(By.ID, "live-status").text != first_status and
                         driver.find_element(By.ID, "live-status").text, timeout=60)
        live_items = driver.find_elements(By.CSS_SELECTOR, "#live-results li")
        check(bool(first_status) and bool(later) and len(live_items) == 5,
              f"live results update ({first_status!r} -> {later!r}, {len(live_items)} shown)")
        driver.save_screenshot(os.path.join(SHOTS, "live.png"))
        driver.find_element(By.ID, "tab-search").click()

        # Paths wrap between their parts: a long one in a result.
        driver.execute_script(
            "renderResults(document.getElementById('results'), [{id: 1, rank: 1, "
            "label_name: 'x', source: 'holidays/summer-2023/beach-front/IMG_0042-edited.jpg', "
            "thumbnail: '/api/items/1/thumbnail', distance: 0.1, similarity: 0.9}])")
        lines = driver.execute_script(
            "const s = document.querySelector('#results .source'); const r = document.createRange();"
            "r.selectNodeContents(s); return new Set([...r.getClientRects()].map(c => Math.round(c.top))).size")
        split = driver.execute_script(SPLIT_SEGMENTS)
        check(lines > 1 and not split,
              f"a long path wraps ({lines} lines) after its slashes, no name split ({split})")

        # A file that is not a picture: a sentence, no broken-image icon.
        notes = os.path.join(tmp, "notes.png")
        with open(notes, "w") as f:
            f.write("not a picture\n")
        driver.find_element(By.ID, "file").send_keys(notes)
        error = wait_for(lambda: "error" in driver.find_element(By.ID, "status").get_attribute("class")
                         and driver.find_element(By.ID, "status").text)
        time.sleep(0.5)
        broken = driver.execute_script(BROKEN)
        check(bool(error) and not broken,
              f"a file that is no picture: a sentence ({error!r}), no broken image ({broken})")

        log = driver.get_log("browser")
        # The server's 400 for that file is the one failed load expected.
        problems = [e["message"] for e in log if (e["level"] == "SEVERE" and
                    "/api/search" not in e["message"] and "blob:" not in e["message"]) or
                    "Content Security Policy" in e["message"]]
        check(not problems, f"no failed load or CSP violation in the browser log ({problems[:2]})")
        driver.quit()

        driver = browser(390, 844)
        driver.get(server.url + "/")
        wait_for(lambda: "30 pictures" in driver.find_element(By.ID, "facts").text)
        driver.find_element(By.ID, "file").send_keys(query)
        wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#results li")) == 10)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        check(overflow <= 0, f"on a 390 px wide phone screen nothing scrolls sideways ({overflow})")
        shown = driver.execute_script(
            "const q = document.getElementById('query').getBoundingClientRect();"
            "const r = document.querySelector('#results li').getBoundingClientRect();"
            "return [q.height, r.bottom, window.innerHeight]")
        check(shown[0] < 0.25 * shown[2] and shown[1] < shown[2],
              f"on a phone the query picture leaves the results on the first screen "
              f"(query {shown[0]:.0f} px high, first result ends at {shown[1]:.0f} of {shown[2]} px)")
        driver.save_screenshot(os.path.join(SHOTS, "phone.png"))
        driver.quit()
        driver = None
        server.stop()

        # A server without a camera: its live tab says so, with no broken image.
        server = sf.Server("--index", index)
        driver = browser(1280, 900)
        driver.get(server.url + "/")
        wait_for(lambda: "30 pictures" in driver.find_element(By.ID, "facts").text)
        driver.find_element(By.ID, "tab-live").click()
        said = wait_for(lambda: "no camera" in driver.find_element(By.ID, "live-status").text and
                        driver.find_element(By.ID, "live-status").text)
        broken = driver.execute_script(BROKEN)
        hidden = driver.execute_script("return document.getElementById('live-figure').hidden")
        check(bool(said) and hidden and not broken,
              f"no camera: the live tab says so ({said!r}) and shows no picture ({broken})")
    finally:
        if driver:
            driver.quit()
        server.stop()

# An index of faces, on a phone: the boxes are drawn on the uploaded picture,
# and each box's matches listed.
ASTRONAUT = "/usr/lib/python3/dist-packages/imageio/resources/images/astronaut.png"
if os.path.exists(ASTRONAUT) and shutil.which("gst-inspect-1.0") and subprocess.run(
        ["gst-inspect-1.0", "facedetect"], capture_output=True).returncode == 0:
    with tempfile.TemporaryDirectory() as tmp:
        faces = os.path.join(tmp, "faces")
        os.makedirs(faces)
        shutil.copy(ASTRONAUT, faces)
        index = os.path.join(tmp, "faces.faiss")
        subprocess.run(["gst-launch-1.0", "-q", "gallerysrc", f"location={faces}", "!",
                        "videoconvert", "!", "facedetect", "display=false", "updates=none", "!",
                        "videoconvert", "!", "embedder", "roi-types=face", "weights=random",
                        "input-size=64", "resize=72", "threads=1", "!", "faissindexer",
                        f"location={index}"], check=True, timeout=300, stderr=subprocess.DEVNULL)
        server = sf.Server("--index", index)
        driver = None
        try:
            driver = browser(390, 844)
            driver.get(server.url + "/")
            said = wait_for(lambda: "1 regions (face)" in driver.find_element(By.ID, "facts").text)
            check(bool(said), "the facts say the index holds faces, searched one by one")
            driver.find_element(By.ID, "file").send_keys(ASTRONAUT)
            boxes = wait_for(lambda: driver.execute_script(
                "const i = document.getElementById('query-img').getBoundingClientRect();"
                "const b = [...document.querySelectorAll('#query-frame .box')];"
                "return b.length && i.width > 200 && b.every(x => { const r = x.getBoundingClientRect();"
                "  return r.width > 10 && r.left >= i.left && r.right <= i.right + 1 &&"
                "         r.top >= i.top && r.bottom <= i.bottom + 1; }) && b.length"))
            lists = driver.find_elements(By.CSS_SELECTOR, "#region-results .region")
            matches = driver.find_elements(By.CSS_SELECTOR, "#region-results .region li")
            check(bool(boxes) and len(lists) == boxes and len(matches) >= 1 and
                  not driver.find_element(By.ID, "results").is_displayed(),
                  f"a face index: the upload shows a box per face on the picture and the matches "
                  f"of each ({boxes} boxes, {len(matches)} matches)")
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            check(overflow <= 0, f"... and nothing scrolls sideways at 390 px ({overflow})")
            driver.save_screenshot(os.path.join(SHOTS, "faces-phone.png"))
        finally:
            if driver:
                driver.quit()
            server.stop()
else:
    check(False, "facedetect (gstreamer1.0-opencv, opencv-data) and astronaut.png "
          "(python3-imageio) are installed: scripts/install-deps.sh")

print(f"screenshots in {SHOTS}")
finish()
