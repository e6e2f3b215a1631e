# SPDX-License-Identifier: LGPL-2.1-or-later
"""cifarindexer end to end on a tiny generated CIFAR-10 (python format) with
random embedder weights: the index and catalog it writes, its properties
reaching the children, pipelines/index-cifar.sh, and errors."""
import os
import sqlite3
import sys

import faiss
import gi
import numpy as np

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

sys.path.insert(0, os.path.join(os.environ["VS_SOURCE_DIR"], "tests"))
import checks  # noqa: E402
import cifar_fixtures  # noqa: E402
from checks import check, expect_error, finish, gst_launch, tmp_dir  # noqa: E402

NATIVE = ["weights=random", "resize=0", "input-size=32", "batch-size=8"]


def properties_are_the_childrens():
    indexer = Gst.ElementFactory.make("cifarindexer", None)
    children = {c.get_factory().get_name(): c for c in indexer.iterate_elements()}
    check(set(children) == {"cifarsrc", "embedder", "faissindexer"},
          "cifarindexer holds cifarsrc, embedder and faissindexer", set(children))
    proxied = {"dataset": ("cifarsrc", "location"), "split": ("cifarsrc", "split"),
               "model": ("embedder", "model"), "weights": ("embedder", "weights"),
               "seed": ("embedder", "seed"), "precision": ("embedder", "precision"),
               "batch-size": ("embedder", "batch-size"),
               "input-size": ("embedder", "input-size"), "resize": ("embedder", "resize"),
               "index": ("faissindexer", "location"),
               "index-type": ("faissindexer", "index-type"),
               "metric": ("faissindexer", "metric")}
    for name, (factory, child_name) in proxied.items():
        ours = indexer.find_property(name)
        theirs = children[factory].find_property(child_name)
        check(ours.value_type == theirs.value_type and ours.default_value == theirs.default_value,
              f"{name}: the type and default of {factory}'s {child_name}",
              (ours.value_type, theirs.value_type, ours.default_value, theirs.default_value))
    Gst.util_set_object_arg(indexer, "input-size", "32")
    Gst.util_set_object_arg(indexer, "split", "test")
    Gst.util_set_object_arg(indexer, "index", "/x/y.faiss")
    check(children["embedder"].get_property("input-size") == 32,
          "input-size reaches the embedder", children["embedder"].get_property("input-size"))
    check(children["cifarsrc"].get_property("split") == indexer.get_property("split"),
          "split reaches cifarsrc", children["cifarsrc"].get_property("split"))
    check(children["faissindexer"].get_property("location") == "/x/y.faiss"
          and indexer.get_property("index") == "/x/y.faiss",
          "index reaches faissindexer's location and reads back",
          (children["faissindexer"].get_property("location"), indexer.get_property("index")))


def indexes_the_split(tmp, dataset, train):
    index = os.path.join(tmp, "train.faiss")
    run = gst_launch("cifarindexer", "dataset=" + dataset, "index=" + index, *NATIVE)
    check(run.returncode == 0, "cifarindexer indexes the train split", run.stdout + run.stderr)

    gallery = faiss.read_index(index)
    check((gallery.ntotal, gallery.d) == (train, 512), f"{train} vectors of 512 dims",
          (gallery.ntotal, gallery.d))
    vectors = gallery.reconstruct_n(0, gallery.ntotal)
    # The embedder normalises, so inner product is cosine.
    norms = np.linalg.norm(vectors, axis=1)
    check(np.allclose(norms, 1.0, rtol=1e-4, atol=0), "unit vectors", norms)

    db = sqlite3.connect(index + ".db")
    items = db.execute("SELECT id, label, label_name, source FROM items ORDER BY id").fetchall()
    model, prep, dims, metric, count = db.execute(
        "SELECT model_id, preprocessing_id, dims, metric, count FROM index_facts").fetchone()
    db.close()
    expected = [(i, cifar_fixtures.label("cifar10", "train", i),
                 cifar_fixtures.NAMES10[cifar_fixtures.label("cifar10", "train", i)],
                 "cifar10/train/%d" % i) for i in range(train)]
    check(items == expected, "the catalog lists every record: id, label, name, source", items)
    check(model.startswith("resnet18"), "the model id names resnet18", model)
    check("resize=0" in prep and "crop=32" in prep, "the preprocessing id: resize=0, crop=32",
          prep)
    check((dims, metric, count) == (512, "ip", train), "the index facts", (dims, metric, count))

    # The same three elements spelled out give the same vectors.
    spelled = os.path.join(tmp, "spelled.faiss")
    run = gst_launch("cifarsrc", "location=" + dataset, "!", "embedder", *NATIVE, "!",
                     "faissindexer", "location=" + spelled)
    check(run.returncode == 0, "cifarsrc ! embedder ! faissindexer runs", run.stderr)
    check(np.array_equal(faiss.read_index(spelled).reconstruct_n(0, train), vectors),
          "the elements spelled out give the same vectors")


def split_and_index_type(tmp, dataset):
    index = os.path.join(tmp, "test.faiss")
    run = gst_launch("cifarindexer", "dataset=" + dataset, "index=" + index, "split=test",
                     "index-type=HNSW8", "metric=l2", *NATIVE)
    check(run.returncode == 0, "cifarindexer split=test index-type=HNSW8 metric=l2 runs",
          run.stderr)
    gallery = faiss.read_index(index)
    check(gallery.ntotal == cifar_fixtures.TEST10 and gallery.metric_type == faiss.METRIC_L2,
          "the test split in an l2 index", (gallery.ntotal, gallery.metric_type))


def missing_dataset_is_an_error(tmp, dataset):
    missing = os.path.join(tmp, "no-such-dataset")
    index = os.path.join(tmp, "never.faiss")
    run = gst_launch("cifarindexer", "dataset=" + missing, "index=" + index, *NATIVE)
    check(run.returncode != 0 and missing in run.stdout + run.stderr,
          "a missing dataset is an error naming it", run.stdout + run.stderr)
    check(not os.path.exists(index), "a missing dataset writes no index")


def index_cifar_script(tmp, dataset, train):
    index = os.path.join(tmp, "script/gallery.faiss")
    script = os.path.join(os.environ["VS_SOURCE_DIR"], "pipelines", "index-cifar.sh")
    env = dict(os.environ, WEIGHTS="random", INPUT_SIZE="32", RESIZE="0", BATCH_SIZE="8",
               BUILD_DIR=os.environ["VS_BUILD_DIR"])
    run = checks.run([script, dataset, index], env=env)
    check(run.returncode == 0, "index-cifar.sh runs", run.stdout + run.stderr)
    check("wrote %s" % index in run.stdout
          and "%d vectors, 512 dims, metric ip" % train in run.stdout,
          "index-cifar.sh says what it wrote", run.stdout)
    check(faiss.read_index(index).ntotal == train, f"index-cifar.sh indexes {train} vectors")

    run = checks.run([script, os.path.join(tmp, "missing")], timeout=60, env=env)
    expect_error(run, "index-cifar.sh refuses a missing dataset", "does not exist", rc=1)


def main():
    Gst.init(None)
    with tmp_dir() as tmp:
        dataset = os.path.join(tmp, "cifar-10-batches-py")
        cifar_fixtures.write_cifar10_py(dataset, "py2")
        train = sum(cifar_fixtures.TRAIN10)
        properties_are_the_childrens()
        indexes_the_split(tmp, dataset, train)
        split_and_index_type(tmp, dataset)
        missing_dataset_is_an_error(tmp, dataset)
        index_cifar_script(tmp, dataset, train)
    finish()


if __name__ == "__main__":
    main()
