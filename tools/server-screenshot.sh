#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Makes docs/images/server-search.png, the README's picture of the search
# page: a gallery of real photos is indexed with pipelines/index-folder.sh,
# served by visualsearch-server, and searched with a photo in Debian's
# headless chromium (selenium + chromedriver), saved at a desktop width.
#
#   tools/server-screenshot.sh [OUTPUT.png]     (default docs/images/server-search.png)
#
# The gallery: the colour and grey photos of scikit-image's data
# (python3-skimage) in the folder "photos", and PER_CLASS (default 20) test
# pictures of each CIFAR-10 class from CIFAR10_DIR (a cifar-10-batches-py
# folder; default data/cifar-10-mini, which holds 10 per class) in class
# folders. The query is a crop of chelsea.png (a cat) that is not in the
# gallery. With the official weights in the torch hub cache (see
# models/README.md) the neighbours mean something; without them index-folder.sh
# falls back to random weights and the page says so in a notice, which stays
# in the picture. The picture is reduced to 256 colours to stay small.
#
# Needs a build (BUILD_DIR, default build/), python3-skimage, chromium and
# chromium-driver, python3-selenium and python3-pil (scripts/install-deps.sh
# installs all but python3-skimage). Run with the python3 that has them:
# PYTHON (default /usr/bin/python3).
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 2 && !/^#/ { exit } NR > 2 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;; esac
repo=$(cd "$(dirname "$0")/.." && pwd)
output=$(realpath -m "${1:-$repo/docs/images/server-search.png}")
build=$(realpath -m "${BUILD_DIR:-$repo/build}")
cifar=$(realpath -m "${CIFAR10_DIR:-$repo/data/cifar-10-mini}")
PYTHON=${PYTHON:-/usr/bin/python3}
server="$build/server/visualsearch-server"
die() { echo "server-screenshot: $*" >&2; exit 1; }
[ -x "$server" ] || die "no visualsearch-server in $build; build first: meson setup build && ninja -C build"
skimage_data=$("$PYTHON" -c 'import os, skimage.data; print(os.path.dirname(skimage.data.__file__))' 2>/dev/null) \
  || die "scikit-image is missing: apt-get install -y python3-skimage"
[ -f "$cifar/test_batch" ] || die "no CIFAR-10 test_batch in $cifar (set CIFAR10_DIR to a cifar-10-batches-py folder)"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "server-screenshot: making the gallery in $work/gallery"
"$PYTHON" - "$skimage_data" "$cifar" "$work" "${PER_CLASS:-20}" <<'PY'
import os, pickle, sys
import numpy as np
from PIL import Image
data, cifar, work, per_class = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
gallery = os.path.join(work, "gallery")
os.makedirs(os.path.join(gallery, "photos"))
photos = ["astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png",
          "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png",
          "moon.png", "retina.jpg", "rocket.jpg"]
for name in photos:
    picture = Image.open(os.path.join(data, name))
    picture.convert("RGB" if picture.mode not in ("L", "RGB") else picture.mode).save(
        os.path.join(gallery, "photos", os.path.splitext(name)[0] + ".jpg"), quality=90)
with open(os.path.join(cifar, "batches.meta"), "rb") as f:
    names = [n.decode() for n in pickle.load(f, encoding="bytes")[b"label_names"]]
with open(os.path.join(cifar, "test_batch"), "rb") as f:
    batch = pickle.load(f, encoding="bytes")
pixels = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
taken = {}
for i, label in enumerate(batch[b"labels"]):
    if taken.get(label, 0) >= per_class:
        continue
    taken[label] = taken.get(label, 0) + 1
    folder = os.path.join(gallery, names[label])
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(pixels[i]).save(os.path.join(folder, f"{names[label]}-{i:05d}.png"))
# The query: chelsea the cat, cropped to her face, not in the gallery.
cat = Image.open(os.path.join(data, "chelsea.png")).convert("RGB")
cat.crop((60, 0, 360, 300)).save(os.path.join(work, "chelsea-face.jpg"), quality=90)
print(f"server-screenshot: {len(photos)} photos and {sum(taken.values())} CIFAR-10 pictures")
PY

BUILD_DIR=$build "$repo/pipelines/index-folder.sh" "$work/gallery" "$work/gallery.faiss"

# The plugin and the server of the build tree, as the README says.
BUILD_DIR=$build . "$repo/scripts/env.sh" > /dev/null
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$server" --index "$work/gallery.faiss" --gallery "$work/gallery" --port "$port" > "$work/server.log" 2>&1 &
server_pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 600); do
  curl -sf "$url/api/index" > /dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; die "the server stopped"; }
  sleep 0.1
done
curl -sf "$url/api/index" > /dev/null || die "the server did not answer on $url within 60 s"

"$PYTHON" - "$url" "$work/chelsea-face.jpg" "$output" <<'PY'
import io, sys, time
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
url, query, output = sys.argv[1:4]
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
            "--window-size=1280,900", "--hide-scrollbars", "--no-first-run",
            "--disable-extensions", "--disable-background-networking"]:
    options.add_argument(arg)
driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
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
    raise SystemExit(f"server-screenshot: the page did not show {what.__doc__} within {timeout} s")
try:
    driver.get(url + "/")
    def facts():
        "the index facts"
        return "pictures" in driver.find_element(By.ID, "facts").text
    wait_for(facts)
    driver.find_element(By.ID, "k").clear()
    driver.find_element(By.ID, "k").send_keys("10")
    driver.find_element(By.ID, "file").send_keys(query)
    def results():
        "10 results with their thumbnails"
        return len(driver.find_elements(By.CSS_SELECTOR, "#results li")) == 10 and driver.execute_script(
            "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)")
    wait_for(results)
    driver.execute_script("document.activeElement.blur()")  # no text cursor in the picture
    time.sleep(0.5)
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
finally:
    driver.quit()
shot.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(output, optimize=True)
print(f"server-screenshot: wrote {output} ({shot.width}x{shot.height})")
PY
