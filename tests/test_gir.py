#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Python applications read the metas through the GstVisualSearch-1.0 typelib:
examples/read-metas.py, run against the build tree (GI_TYPELIB_PATH and
LD_LIBRARY_PATH at build/gst-libs/gst/visualsearch), prints every frame's
sample, embedding and neighbours, and they agree with the index it searched and
with what the C example (neighbors-app, reading the struct directly) prints
for the same frames. The metric enum, GstVisualSearchMetric, is reachable from
Python with its GType, values and nicks, and is the type of faissindexer's and
faisssearch's metric properties.

Usage: test_gir.py READ_METAS_PY NEIGHBORS_APP   (VS_BUILD_DIR, VS_SOURCE_DIR set by meson)
"""
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
import cifar_fixtures  # noqa: E402
from checks import check, finish, tmp_dir  # noqa: E402

READ_METAS, NEIGHBORS_APP = sys.argv[1], sys.argv[2]
META_DIR = os.path.join(os.environ["VS_BUILD_DIR"], "gst-libs", "gst", "visualsearch")
EMBEDDER = "embedder weights=random input-size=32 resize=0"
GALLERY = sum(cifar_fixtures.TRAIN10)
K = 5
FRAMES = 3


def run(*args, env=None):
    p = checks.run(args, timeout=240, env=env)
    check(p.returncode == 0, f"{os.path.basename(args[0])} runs",
          None if p.returncode == 0 else f"exit status {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p.stdout


def neighbours(out, pattern):
    """Per frame, the list of neighbour tuples that `pattern` matches, in order."""
    frames = []
    for line in out.splitlines():
        if line.startswith("frame "):
            frames.append([])
        m = re.match(pattern, line)
        if m:
            frames[-1].append(m.groupdict())
    return frames


PY_NEIGHBOUR = (r"\s+\d+\. id (?P<id>-?\d+) distance (?P<d>\S+) "
                r"label (?P<label>-?\d+) (?P<name>\S+) source (?P<src>\S+)")


def samples(out):
    got = re.findall(r"sample id (-?\d+) label (-?\d+) (\S+) source (\S+)", out)
    want = [(str(i), str(cifar_fixtures.label("cifar10", "test", i)),
             cifar_fixtures.NAMES10[cifar_fixtures.label("cifar10", "test", i)])
            for i in range(FRAMES)]
    check([s[:3] for s in got] == want, "each frame's sample meta: id, label and name", got)
    check(all(s[3] != "-" for s in got), "each frame's sample meta has its source", got)


def embeddings(out):
    emb = re.findall(r"embedding dims (\d+) values (\d+) norm ([\d.]+) normalized (\w+)", out)
    check(len(emb) == FRAMES, f"{FRAMES} embedding metas", emb)
    for dims, n_values, norm, normalized in emb:
        check(int(dims) == 512 and int(n_values) == 512,
              "512 dims, and get_values() returns 512 values", (dims, n_values))
        check(math.isclose(float(norm), 1.0, abs_tol=1e-4) and normalized == "True",
              "a unit embedding, marked normalized", (norm, normalized))


def neighbour_metas(out):
    got = re.findall(r"neighbours (\d+) metric (\w+)", out)
    check(got == [(str(K), "ip")] * FRAMES, f"{K} inner-product neighbours per frame", got)
    frames = neighbours(out, PY_NEIGHBOUR)
    check([len(f) for f in frames] == [K] * FRAMES, f"{K} neighbours listed per frame",
          [len(f) for f in frames])
    for q, f in enumerate(frames):
        ids = [int(n["id"]) for n in f]
        check(len(set(ids)) == K and all(i in range(GALLERY) for i in ids),
              f"frame {q}: {K} different gallery ids", ids)
        distances = [float(n["d"]) for n in f]
        check(distances == sorted(distances, reverse=True),
              f"frame {q}: inner product: nearest (largest) first", distances)
        labels = [cifar_fixtures.label("cifar10", "train", int(n["id"])) for n in f]
        check([int(n["label"]) for n in f] == labels
              and [n["name"] for n in f] == [cifar_fixtures.NAMES10[label] for label in labels],
              f"frame {q}: each neighbour's label and name are its gallery item's", f)
        check(all(n["src"] != "-" for n in f), f"frame {q}: each gallery item's source is kept", f)


# Python sees GstVisualSearchMetric as a registered enum: its GType, values and
# nicks, and the type of faissindexer's and faisssearch's metric properties,
# set from the nicks gst-launch-1.0 takes.
METRIC_SCRIPT = """
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstVisualSearch", "1.0")
from gi.repository import Gst, GObject, GstVisualSearch
Gst.init(None)
M = GstVisualSearch.Metric
print("gtype", M.__gtype__.name, GObject.type_is_a(M.__gtype__, GObject.GEnum))
for v in (M.IP, M.L2):  # the GIR names a registered enum's members by nick
    print("value", int(v), v.value_nick, v.value_name)
for name in ("faissindexer", "faisssearch"):
    spec = Gst.ElementFactory.make(name, None).find_property("metric")
    print("property", name, spec.value_type.name,
          bool(spec.flags & GObject.ParamFlags.WRITABLE))
indexer = Gst.ElementFactory.make("faissindexer", None)
for nick in ("l2", "ip"):
    Gst.util_set_object_arg(indexer, "metric", nick)
    got = indexer.get_property("metric")
    print("set", nick, got == GstVisualSearch.metric_from_string(nick)[1],
          GstVisualSearch.metric_to_string(got))
"""


# Region results through the typelib: a GstVideo ROI meta, its embedding and
# neighbours written and read with the library's functions.
REGION_SCRIPT = """
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
gi.require_version("GstVisualSearch", "1.0")
from gi.repository import Gst, GstVideo, GstVisualSearch
Gst.init(None)
buf = Gst.Buffer.new_allocate(None, 16, None)
roi = GstVideo.buffer_add_video_region_of_interest_meta(buf, "face", 1, 2, 3, 4)
print("none", GstVisualSearch.region_get_embedding(roi), GstVisualSearch.region_get_neighbors_info(roi)[0])
GstVisualSearch.region_set_embedding(roi, [0.25, 0.5], "model", "prep", True)
print("values", GstVisualSearch.region_get_embedding(roi))
print("info", GstVisualSearch.region_get_embedding_info(roi))
print("param", roi.get_param(GstVisualSearch.REGION_EMBEDDING_PARAM).get_value("dims"))
"""


def regions(env):
    lines = run("/usr/bin/python3", "-c", REGION_SCRIPT, env=env).splitlines()
    check(lines == ["none [] False", "values [0.25, 0.5]",
                    "info (True, model_id='model', preprocessing_id='prep', normalized=True)",
                    "param 2"], "region embeddings through the typelib (GstVideo ROI metas)",
          lines)


def metric_enum(env):
    out = run("/usr/bin/python3", "-c", METRIC_SCRIPT, env=env)
    print(out)
    lines = out.splitlines()
    check("gtype GstVisualSearchMetric True" in lines,
          "GstVisualSearch.Metric is the registered enum GstVisualSearchMetric", out)
    check([line for line in lines if line.startswith("value ")]
          == ["value 0 ip GST_VISUALSEARCH_METRIC_INNER_PRODUCT",
              "value 1 l2 GST_VISUALSEARCH_METRIC_L2"],
          "its values, nicks and C names: Metric.IP 0 ip, Metric.L2 1 l2", out)
    check("property faissindexer GstVisualSearchMetric True" in lines,
          "faissindexer's metric property is a writable GstVisualSearchMetric", out)
    check("property faisssearch GstVisualSearchMetric False" in lines,
          "faisssearch's metric property is a read-only GstVisualSearchMetric", out)
    check("set l2 True l2" in lines and "set ip True ip" in lines,
          "faissindexer metric=l2 and metric=ip, as gst-launch sets them, read back", out)


def same_as_c(out, pipeline):
    c_out = run(NEIGHBORS_APP, pipeline)
    c = neighbours(c_out, r"\s+\d+\. id (?P<id>-?\d+) label (?P<label>-?\d+) (?P<name>\S+) "
                          r"distance (?P<d>\S+) source (?P<src>\S+)")
    check(len(c) == FRAMES, f"neighbors-app prints {FRAMES} frames", c_out)
    check(neighbours(out, PY_NEIGHBOUR) == c, "Python reads the neighbours C reads", c_out)


def main():
    with tmp_dir() as tmp:
        cifar = os.path.join(tmp, "cifar-10-batches-py")
        cifar_fixtures.write_cifar10_py(cifar, "py2")
        index = os.path.join(tmp, "gallery.faiss")
        run("gst-launch-1.0", "-q", "cifarsrc", f"location={cifar}", "split=train", "!",
            *EMBEDDER.split(), "!", "faissindexer", f"location={index}")
        pipeline = (f'cifarsrc location="{cifar}" split=test num-buffers={FRAMES} ! '
                    f'{EMBEDDER} ! faisssearch index="{index}" k={K} ! '
                    'appsink name=sink sync=false')
        env = dict(os.environ, GI_TYPELIB_PATH=META_DIR,
                   LD_LIBRARY_PATH=META_DIR + os.pathsep + os.environ.get("LD_LIBRARY_PATH", ""))
        metric_enum(env)
        regions(env)
        out = run("/usr/bin/python3", READ_METAS, pipeline, env=env)
        print(out)
        check(f"{FRAMES} frames, {FRAMES} with visualsearch metas" in out, "every frame is read")
        samples(out)
        embeddings(out)
        neighbour_metas(out)
        same_as_c(out, pipeline)
    finish()


if __name__ == "__main__":
    main()
