#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""CifarDataset on CIFAR-10/100 files in both formats, written by cifar_fixtures.py,
truncated at every byte around and after the pixels, and mutated at random.

Usage: test_cifar_dataset.py PATH/TO/cifar_probe
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cifar_fixtures as fx  # noqa: E402
from checks import check, finish  # noqa: E402

PROBE = sys.argv[1]


def probe(location, split="train", kind="fine", strict="strict"):
    out = os.path.join(TMP, "out.rgb")
    r = subprocess.run([PROBE, location, split, kind, strict, out], capture_output=True, timeout=120)
    if r.returncode not in (0, 2):
        raise SystemExit(f"cifar_probe crashed ({r.returncode}) on {location}: {r.stderr.decode()}")
    text = r.stdout.decode()
    res = {"rc": r.returncode, "text": text, "warnings": [], "records": []}
    for line in text.splitlines():
        parts = line.split("\t")
        if parts[0] == "name":
            res["name"] = parts[1]
        elif parts[0] == "warning":
            res["warnings"].append(parts[1])
        elif parts[0] == "record":
            res["records"].append((parts[1], int(parts[2]), parts[3], int(parts[4])))
    if r.returncode == 0:
        with open(out, "rb") as f:
            res["rgb"] = np.frombuffer(f.read(), np.uint8).reshape(-1, 32, 32, 3)
    return res


def expected(dataset, splits, kind="fine", train_counts=None):
    """[(source, label, hwc image)] in the order the dataset reads them."""
    out = []
    for split, count in splits:
        for i in range(count):
            img = fx.images(dataset, split, i, 1).reshape(3, 32, 32).transpose(1, 2, 0)
            out.append((f"{dataset}/{split}/{i}", fx.label(dataset, split, i, kind), img))
    return out


def compare(res, want, names, what):
    if not check(res["rc"] == 0, f"{what}: opens ({res['text'][:300]})"):
        return
    check(len(res["records"]) == len(want), f"{what}: {len(res['records'])} records, want {len(want)}")
    for pos, (rec, (source, label, img)) in enumerate(zip(res["records"], want)):
        ok = (rec[0] == source and rec[1] == label and rec[2] == names[label] and rec[3] == pos
              and np.array_equal(res["rgb"][pos], img))
        if not check(ok, f"{what}: record {pos} is {rec}, want {source} label {label}"):
            break


def expect_error(res, words, what):
    ok = res["rc"] == 2 and all(w in res["text"] for w in words)
    check(ok, f"{what}: expected an error with {words}, got {res['text'][:400]!r}")


def run(d):
    n10 = sum(fx.TRAIN10)
    for sub in ["cifar-10-batches-py", "cifar10-py3", "cifar10-p5", "cifar-10-batches-bin"]:
        loc = os.path.join(d, sub)
        compare(probe(loc), expected("cifar10", [("train", n10)]), fx.NAMES10, f"{sub} train")
        compare(probe(loc, "test"), expected("cifar10", [("test", fx.TEST10)]), fx.NAMES10, f"{sub} test")
        compare(probe(loc, "all"), expected("cifar10", [("train", n10), ("test", fx.TEST10)]),
                fx.NAMES10, f"{sub} all")
    for sub in ["cifar-100-python", "cifar-100-binary"]:
        loc = os.path.join(d, sub)
        both = [("train", fx.TRAIN100), ("test", fx.TEST100)]
        compare(probe(loc, "all"), expected("cifar100", both), fx.FINE100, f"{sub} fine")
        compare(probe(loc, "all", "coarse"), expected("cifar100", both, "coarse"), fx.COARSE100,
                f"{sub} coarse")

    # The parent directory finds the dataset inside it.
    res = probe(d, "test")
    check(res["rc"] == 0 and res.get("name") == "cifar10", f"parent directory: {res['text'][:200]}")

    # One batch file: its own split; data_batch_3 is numbered after batches 1 and 2.
    for sub, name in [("cifar-10-batches-py", "data_batch_3"), ("cifar-10-batches-bin", "data_batch_3.bin")]:
        res = probe(os.path.join(d, sub, name), "test")
        first = fx.TRAIN10[0] + fx.TRAIN10[1]
        want = [(f"cifar10/train/{first + i}", fx.label("cifar10", "train", first + i),
                 fx.images("cifar10", "train", first + i, 1).reshape(3, 32, 32).transpose(1, 2, 0))
                for i in range(fx.TRAIN10[2])]
        compare(res, want, fx.NAMES10, f"single file {name}")
    compare(probe(os.path.join(d, "cifar-100-binary", "test.bin")),
            expected("cifar100", [("test", fx.TEST100)]), fx.FINE100, "single file test.bin")

    b = os.path.join(d, "broken")
    expect_error(probe(os.path.join(d, "nope")), ["nope", "does not exist"], "missing location")
    expect_error(probe(os.path.join(b, "empty-dir")), ["empty-dir", "holds no CIFAR dataset"], "empty dir")
    expect_error(probe(os.path.join(b, "missing-batch")), ["data_batch_3", "missing"], "missing batch")
    res = probe(os.path.join(b, "missing-batch"), "test")
    check(res["rc"] == 0, "a missing train batch does not matter for split=test")
    expect_error(probe(os.path.join(d, "cifar-10-batches-bin"), "train", "coarse"),
                 ["coarse labels exist only in CIFAR-100"], "coarse on cifar10")

    # A truncated batch keeps its complete records (data_batch_2 keeps 3), also
    # when python 3's protocol 2 stored the pixels as text; later batches
    # follow on.
    for sub, name, complete in [("truncated-bin", "data_batch_2.bin", "3 of 4"),
                                ("truncated-py", "data_batch_2", "3 of 5"),
                                ("truncated-py3", "data_batch_2", "3 of 5")]:
        trunc = os.path.join(b, sub)
        expect_error(probe(trunc), [name, f"the file is truncated: {complete} records complete",
                                    "re-download"], f"{sub}, strict")
        res = probe(trunc, "train", "fine", "lenient")
        check(res["rc"] == 0 and len(res["records"]) == n10 - 2, f"{sub} keeps {n10 - 2} records")
        check(any(f"{complete} records complete" in w and name in w for w in res["warnings"]),
              f"{sub} warns: {res['warnings']}")
        if res["rc"] == 0:
            full = expected("cifar10", [("train", n10)])
            kept = full[:fx.TRAIN10[0] + 3] + full[fx.TRAIN10[0] + fx.TRAIN10[1]:]
            check(all(np.array_equal(res["rgb"][i], kept[i][2]) and res["records"][i][1] == kept[i][1]
                      for i in range(len(kept))), f"{sub}: kept records are right")
            check(res["records"][-1][0] == f"cifar10/train/{n10 - 3}", f"{sub}: later records renumbered")

    expect_error(probe(os.path.join(b, "bad-label-bin"), "test"),
                 ["test_batch.bin", "record 0 has label 200"], "label out of range")
    expect_error(probe(os.path.join(b, "not-a-pickle"), "test"), ["test_batch", "at byte"], "not a pickle")
    expect_error(probe(os.path.join(b, "wrong-shape"), "test"), ["test_batch", "3072"], "wrong shape")
    mismatch = os.path.join(b, "labels-mismatch")
    expect_error(probe(mismatch, "test"), ["test_batch", "holds 2 images but 3 labels", "re-download"],
                 "labels and images disagree, strict")
    res = probe(mismatch, "test", "fine", "lenient")
    compare(res, expected("cifar10", [("test", 2)]), [str(i) for i in range(10)],
            "labels and images disagree, lenient")
    check(any("kept the first 2 records" in w for w in res["warnings"]),
          f"labels and images disagree warns: {res['warnings']}")
    expect_error(probe(os.path.join(b, "bad-label-bin"), "test", "fine", "lenient"),
                 ["label 200"], "a bad label is an error even when not strict")

    res = probe(os.path.join(b, "no-meta-bin"), "test")
    compare(res, expected("cifar10", [("test", fx.TEST10)]), [str(i) for i in range(10)],
            "no label names")
    check(any("batches.meta.txt is missing" in w for w in res["warnings"]),
          f"no label names warns: {res['warnings']}")


def cut_batches(d):
    """Batches as the official files lay them out, in every pickle style:
    [(what, path, records, pixels as stored, encoding of the pixels)]."""
    n = 8
    out = []
    for style in ["py2", "py3", "p5"]:
        os.makedirs(os.path.join(d, style))
        path = os.path.join(d, style, "test_batch")
        fx.dump({b"batch_label": b"testing batch 1 of 1",
                 b"labels": [fx.label("cifar10", "test", i) for i in range(n)],
                 b"data": fx.images("cifar10", "test", 0, n),
                 b"filenames": [b"img_%d.png" % i for i in range(n)]}, path, style)
        out.append((f"cifar10 {style}", path, n, "latin1-text" if style == "py3" else "bytes"))
    # CIFAR-100's files hold the data last.
    os.makedirs(os.path.join(d, "c100"))
    path = os.path.join(d, "c100", "test")
    fx.dump({b"filenames": [b"x.png"] * fx.TEST100, b"batch_label": b"test",
             b"fine_labels": [fx.label("cifar100", "test", i) for i in range(fx.TEST100)],
             b"coarse_labels": [fx.label("cifar100", "test", i, "coarse") for i in range(fx.TEST100)],
             b"data": fx.images("cifar100", "test", 0, fx.TEST100)}, path, "py2")
    out.append(("cifar100 py2", path, fx.TEST100, "bytes"))
    return out


def test_cuts(d):
    """A batch cut anywhere keeps exactly its complete records (not strict):
    every byte before the pixels and after them (labels, filenames, the
    array's shape and dtype, the dict's end), and around every record
    boundary plus a sample inside the pixels."""
    rng = np.random.default_rng(11)
    scratch = os.path.join(d, "scratch")
    os.makedirs(scratch)
    for what, path, n, encoding in cut_batches(d):
        with open(path, "rb") as f:
            data = f.read()
        dataset = "cifar100" if what.startswith("cifar100") else "cifar10"
        pixels = fx.images(dataset, "test", 0, n).tobytes()
        # Where the file holds the first k records' pixels, for each k.
        stored = (lambda b: b.decode("latin1").encode()) if encoding == "latin1-text" else bytes
        start = data.find(stored(pixels))
        if not check(start > 0, f"{what}: pixels found in the file"):
            continue
        ends = [start + len(stored(pixels[:k * 3072])) for k in range(n + 1)]
        sizes = set(range(0, start + 3)) | set(range(ends[-1] - 2, len(data) + 1))
        for e in ends:
            sizes |= set(range(e - 2, e + 3))
        sizes |= set(int(x) for x in rng.integers(start, ends[-1], 60))

        r = subprocess.run([PROBE, "cuts", path, scratch], input="\n".join(map(str, sorted(sizes))),
                           capture_output=True, text=True, timeout=300)
        if not check(r.returncode == 0, f"{what}: cuts probe ran: {r.returncode} {r.stderr[:300]}"):
            continue
        lines = r.stdout.splitlines()
        check(len(lines) == len(sizes), f"{what}: {len(lines)} cuts reported of {len(sizes)}")
        wrong = []
        for line in lines:
            _, size, kept = line.split("\t")[:3]
            size = int(size)
            want = max([0] + [k for k in range(n + 1) if ends[k] <= size])
            if kept != str(want) or "MISMATCH" in line:
                wrong.append(f"cut at {size}: {line.split(chr(9), 2)[2][:200]}, want {want}")
        check(not wrong, f"{what}: {len(wrong)} of {len(lines)} cuts keep the wrong records: {wrong[:5]}")
        tail = len(data) - ends[-1]
        print(f"{what}: {len(lines)} cuts checked, the {tail} bytes after the pixels each one")


with tempfile.TemporaryDirectory() as TMP:
    data = os.path.join(TMP, "data")
    fx.main(data)
    run(data)
    test_cuts(os.path.join(TMP, "cuts"))
finish()
