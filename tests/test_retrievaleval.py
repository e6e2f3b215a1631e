# SPDX-License-Identifier: LGPL-2.1-or-later
"""retrievaleval against an independent NumPy computation of the metrics.

Usage: test_retrievaleval.py FEED_TOOL

Random galleries and ranked lists go through the real element (appsrc !
retrievaleval, driven by the retrievaleval-feed tool); its JSON output and its
element message must equal NumPy's figures to 1e-6. Also checks leave-one-out
on a hand-made case, the JSON schema, skipped buffers and the element's errors.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from retrieval_reference import numpy_metrics

FEED = sys.argv[1]
TOL = 1e-6

TOP_KEYS = {"schema", "skipped", "catalog", "gallery_items", "exclude_self", "k",
            "queries", "queries_with_relevant", "precision", "recall", "map", "mrr",
            "accuracy", "per_class"}
CLASS_KEYS = {"label", "queries", "queries_with_relevant", "precision", "recall", "map",
              "mrr", "accuracy"}


def write_spec(path, gallery, queries, bare=0):
    """gallery: [(label, name, source)]; queries: [(label, name, source, [ids])].
    Names may be bytes, written as they are."""
    def line(*fields):
        return b"\t".join(f if isinstance(f, bytes) else str(f).encode() for f in fields) + b"\n"
    with open(path, "wb") as f:
        for label, name, source in gallery:
            f.write(line("gallery", label, name, source))
        for label, name, source, ids in queries:
            f.write(line("query", label, name, source, *ids))
        for _ in range(bare):
            f.write(b"bare\n")


def run_feed(tmp, gallery, queries, props, bare=0, expect_error=False):
    spec = os.path.join(tmp, "spec.tsv")
    catalog = os.path.join(tmp, "gallery.faiss.db")
    output = os.path.join(tmp, "metrics.json")
    if os.path.exists(output):
        os.remove(output)
    write_spec(spec, gallery, queries, bare)
    args = [FEED, spec, catalog] + [f"{k}={v}" for k, v in props.items()]
    if not expect_error:
        args.append(f"output={output}")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if expect_error:
        assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
        return proc.stderr
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    with open(output, encoding="utf-8") as f:  # strictly
        return json.load(f), proc.stdout


def assert_figures_close(got, want, where):
    for key in ("queries", "queries_with_relevant"):
        assert got[key] == want[key], (where, key, got[key], want[key])
    for key in ("precision", "recall", "map"):
        assert set(got[key]) == set(want[key]), (where, key)
        for k in want[key]:
            assert abs(got[key][k] - want[key][k]) <= TOL, (where, key, k, got[key][k], want[key][k])
    for key in ("mrr", "accuracy"):
        assert abs(got[key] - want[key]) <= TOL, (where, key, got[key], want[key])


def random_case(rng, exclude_self):
    names = ["airplane", "auto mobile", 'quo"ted', "deer", "dog", "frog"]
    n_gallery, n_labels = 240, len(names)
    g_labels = rng.integers(0, n_labels - 1, n_gallery)  # the last label has no gallery item
    gallery = [(int(l), names[l], f"synth/train/{i}") for i, l in enumerate(g_labels)]
    queries = []
    for q in range(150):
        if exclude_self and q % 2 == 0:   # the gallery queried with its own images
            own = int(rng.integers(n_gallery))
            label, source = gallery[own][0], gallery[own][2]
            ids = list(rng.choice(np.delete(np.arange(n_gallery), own), 21, replace=False))
            if rng.random() < 0.8:         # usually it finds itself, near the top
                ids.insert(int(rng.integers(0, 3)), own)
            ids = ids[:21]
        else:
            label = int(rng.integers(n_labels))
            source = f"synth/test/{q}"
            ids = list(rng.choice(n_gallery, 21, replace=False))
        queries.append((label, names[label], source, [int(i) for i in ids]))
    return gallery, queries


def check_against_numpy(tmp, rng, exclude_self, k_text, ks):
    gallery, queries = random_case(rng, exclude_self)
    props = {"k": k_text, "exclude-self": str(exclude_self).lower()}
    unlabelled = (-1, "", "synth/test/unlabelled", queries[0][3])
    result, stdout = run_feed(tmp, gallery, queries + [unlabelled], props, bare=2)
    overall, per_class = numpy_metrics(gallery, queries, ks, exclude_self)

    assert set(result) == TOP_KEYS, sorted(set(result) ^ TOP_KEYS)
    assert result["schema"] == "visualsearch-retrieval-metrics/1"
    assert result["k"] == ks, result["k"]
    assert result["exclude_self"] is exclude_self
    assert result["skipped"] == 3  # two bare buffers and the unlabelled query
    assert result["gallery_items"] == len(gallery)
    assert_figures_close(result, overall, "overall")
    assert set(result["per_class"]) == set(per_class), (result["per_class"].keys(), per_class.keys())
    for name, want in per_class.items():
        got = result["per_class"][name]
        assert set(got) == CLASS_KEYS, sorted(set(got) ^ CLASS_KEYS)
        assert got["label"] == want["label"]
        assert_figures_close(got, want, name)
    # the label absent from the gallery has no recall or mAP denominators
    assert result["queries_with_relevant"] < result["queries"]

    # The element message carries the same figures.
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
    Gst.init(None)
    line = next(l for l in stdout.splitlines() if l.startswith("MESSAGE "))
    s = Gst.Structure.from_string(line[len("MESSAGE "):])[0]
    assert s.get_name() == "retrieval-metrics"
    assert abs(s.get_value("mrr") - overall["mrr"]) <= TOL
    assert abs(s.get_value("accuracy") - overall["accuracy"]) <= TOL
    assert list(s.get_value("k")) == ks
    for i, k in enumerate(ks):
        assert abs(s.get_value("precision")[i] - overall["precision"][str(k)]) <= TOL
        assert abs(s.get_value("map")[i] - overall["map"][str(k)]) <= TOL
    assert len(s.get_value("per-class")) == len(per_class)
    # The table goes to the debug log, not to the application's stdout.
    assert "P@k" not in stdout and "MRR" not in stdout, stdout


def check_print_table(tmp):
    """print-table=true puts the table on stdout, for gst-launch-1.0 users."""
    gallery = [(0, "cat", "s0"), (1, "dog", "s1")]
    _, stdout = run_feed(tmp, gallery, [(0, "cat", "q0", [0, 1])],
                         {"k": "1,2", "print-table": "true"})
    assert "P@k" in stdout and "MRR" in stdout, stdout


def check_leave_one_out(tmp):
    gallery = [(0, "cat", "s0"), (0, "cat", "s1"), (1, "dog", "s2"), (0, "cat", "s3")]
    query = (0, "cat", "s0", [0, 2, 1, 3])
    result, _ = run_feed(tmp, gallery, [query], {"k": "1,2,3", "exclude-self": "true"})
    # s0 is gone (list c, b, d); cat has 3 gallery items, 2 once s0 is left out
    assert result["precision"] == {"1": 0.0, "2": 0.5, "3": 2 / 3}, result["precision"]
    assert result["recall"] == {"1": 0.0, "2": 0.5, "3": 1.0}, result["recall"]
    assert abs(result["map"]["3"] - (0.5 + 2 / 3) / 2) <= TOL
    assert result["mrr"] == 0.5 and result["accuracy"] == 0.0

    result, _ = run_feed(tmp, gallery, [query], {"k": "1,2,3", "exclude-self": "false"})
    assert result["precision"]["1"] == 1.0 and abs(result["recall"]["1"] - 1 / 3) <= TOL

    # A gallery item sharing the label but not the source stays in the list.
    gallery2 = [(0, "cat", "s0"), (0, "cat", "s0-copy-elsewhere"), (1, "dog", "s2")]
    result, _ = run_feed(tmp, gallery2, [(0, "cat", "s0", [0, 1, 2])],
                         {"k": "1,2", "exclude-self": "true"})
    assert result["precision"] == {"1": 1.0, "2": 0.5}, result["precision"]
    assert result["recall"]["1"] == 1.0


def check_untrusted_names(tmp):
    """Label names in the sample metas are whatever bytes upstream put there:
    the JSON is valid UTF-8 (U+FFFD for invalid sequences) with quotes,
    backslashes and control characters escaped."""
    names = [(b"ca\xfft", "ca\ufffdt"), (b'd"o\\g\x01\x1f\x7f', 'd"o\\g\x01\x1f\x7f'),
             (b"\xed\xa0\x80", "\ufffd" * 3)]
    gallery = [(label, raw, f"s{label}") for label, (raw, _) in enumerate(names)]
    queries = [(label, raw, f"q{label}", [label, (label + 1) % 3]) for label, (raw, _) in enumerate(names)]
    result, _ = run_feed(tmp, gallery, queries, {"k": "1,2"})
    assert {k: v["label"] for k, v in result["per_class"].items()} == \
        {text: label for label, (_, text) in enumerate(names)}, result["per_class"].keys()


def check_errors(tmp):
    gallery = [(i % 2, "ab"[i % 2], f"s{i}") for i in range(12)]
    queries = [(0, "a", "q", list(range(10)))]
    err = run_feed(tmp, gallery, queries, {"k": "1,x"}, expect_error=True)
    assert "Invalid k property" in err and '"x"' in err, err
    err = run_feed(tmp, gallery, queries, {"k": "0,5"}, expect_error=True)
    assert "at least 1" in err, err
    err = run_feed(tmp, gallery, queries, {"k": ""}, expect_error=True)
    assert "empty" in err, err
    # 10 neighbours are enough for k=10, not for k=10 with exclude-self
    run_feed(tmp, gallery, queries, {"k": "10"})
    err = run_feed(tmp, gallery, queries, {"k": "10", "exclude-self": "true"}, expect_error=True)
    assert "needs 11" in err and "faisssearch k to at least 11" in err, err
    err = run_feed(tmp, gallery, queries, {"k": "20"}, expect_error=True)
    assert "holds only 12 items" in err, err
    err = run_feed(tmp, gallery, queries, {"catalog": ""}, expect_error=True)
    assert "No gallery catalog" in err and "index=" in err, err
    spec = os.path.join(tmp, "spec.tsv")
    proc = subprocess.run([FEED, spec, os.path.join(tmp, "g.db"),
                           "catalog=" + os.path.join(tmp, "missing.db")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "missing.db" in proc.stderr, proc.stderr


def main():
    rng = np.random.default_rng(20261121)
    with tempfile.TemporaryDirectory() as tmp:
        check_against_numpy(tmp, rng, False, "10, 1,5,3", [1, 3, 5, 10])
        check_against_numpy(tmp, rng, True, "1,5,10,20", [1, 5, 10, 20])
        check_leave_one_out(tmp)
        check_print_table(tmp)
        check_untrusted_names(tmp)
        check_errors(tmp)
    print("retrievaleval: all checks passed")


if __name__ == "__main__":
    main()
