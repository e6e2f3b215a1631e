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
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from checks import check, expect_error, finish, tmp_dir  # noqa: E402
from retrieval_reference import numpy_metrics  # noqa: E402

FEED = sys.argv[1]
TOL = 1e-6

TOP_KEYS = {"schema", "skipped", "catalog", "gallery_items", "exclude_self", "k",
            "queries", "queries_with_relevant", "precision", "recall", "map",
            "weighted_precision", "mrr", "accuracy", "per_class"}
CLASS_KEYS = {"label", "queries", "queries_with_relevant", "precision", "recall", "map",
              "weighted_precision", "mrr", "accuracy"}


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


def run_feed(tmp, gallery, queries, props, bare=0, refused=False):
    """The element's JSON and stdout; if refused, the CompletedProcess (for expect_error)."""
    spec = os.path.join(tmp, "spec.tsv")
    catalog = os.path.join(tmp, "gallery.faiss.db")
    output = os.path.join(tmp, "metrics.json")
    if os.path.exists(output):
        os.remove(output)
    write_spec(spec, gallery, queries, bare)
    args = [FEED, spec, catalog] + [f"{k}={v}" for k, v in props.items()]
    if not refused:
        args.append(f"output={output}")
    proc = checks.run(args, timeout=60)
    if refused:
        return proc
    check(proc.returncode == 0, f"retrievaleval runs with {props}",
          (proc.returncode, proc.stdout, proc.stderr))
    with open(output, encoding="utf-8") as f:  # strictly
        return json.load(f), proc.stdout


def check_figures_close(got, want, where):
    for key in ("queries", "queries_with_relevant"):
        check(got[key] == want[key], f"{where}: {key} as NumPy's", (got[key], want[key]))
    for key in ("precision", "recall", "map", "weighted_precision"):
        check(set(got[key]) == set(want[key]), f"{where}: {key} for the same k as NumPy's",
              (sorted(got[key]), sorted(want[key])))
        for k in want[key]:
            check(abs(got[key][k] - want[key][k]) <= TOL, f"{where}: {key}@{k} as NumPy's",
                  (got[key][k], want[key][k]))
    for key in ("mrr", "accuracy"):
        check(abs(got[key] - want[key]) <= TOL, f"{where}: {key} as NumPy's", (got[key], want[key]))


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


def against_numpy(tmp, rng, exclude_self, k_text, ks):
    gallery, queries = random_case(rng, exclude_self)
    props = {"k": k_text, "exclude-self": str(exclude_self).lower()}
    unlabelled = (-1, "", "synth/test/unlabelled", queries[0][3])
    result, stdout = run_feed(tmp, gallery, queries + [unlabelled], props, bare=2)
    overall, per_class = numpy_metrics(gallery, queries, ks, exclude_self)

    case = f"k={k_text} exclude-self={exclude_self}"
    check(set(result) == TOP_KEYS, f"{case}: the JSON's keys", sorted(set(result) ^ TOP_KEYS))
    check(result["schema"] == "visualsearch-retrieval-metrics/1", f"{case}: the schema",
          result["schema"])
    check(result["k"] == ks, f"{case}: k sorted and deduplicated", result["k"])
    check(result["exclude_self"] is exclude_self, f"{case}: exclude_self", result["exclude_self"])
    # two bare buffers and the unlabelled query
    check(result["skipped"] == 3, f"{case}: 3 buffers skipped", result["skipped"])
    check(result["gallery_items"] == len(gallery), f"{case}: gallery_items",
          result["gallery_items"])
    check_figures_close(result, overall, f"{case} overall")
    # Weighted P@k is scikit-learn's weighted precision of the k-NN vote.
    from sklearn.metrics import precision_score
    truth = [q[0] for q in queries]
    for k in ks:
        voted = [-10**9 if v is None else v for v in overall["votes"][k]]
        want = precision_score(truth, voted, average="weighted", zero_division=0)
        got = result["weighted_precision"][str(k)]
        check(abs(got - want) <= TOL, f"{case}: weighted precision@{k} as scikit-learn's",
              (got, want))
    check(set(result["per_class"]) == set(per_class), f"{case}: the same classes as NumPy's",
          (result["per_class"].keys(), per_class.keys()))
    for name, want in per_class.items():
        got = result["per_class"][name]
        check(set(got) == CLASS_KEYS, f"{case} {name}: the class's keys",
              sorted(set(got) ^ CLASS_KEYS))
        check(got["label"] == want["label"], f"{case} {name}: the label", got["label"])
        check_figures_close(got, want, f"{case} {name}")
    # the label absent from the gallery has no recall or mAP denominators
    check(result["queries_with_relevant"] < result["queries"],
          f"{case}: a label absent from the gallery has no relevant items",
          (result["queries_with_relevant"], result["queries"]))

    # The element message carries the same figures.
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
    Gst.init(None)
    line = next(l for l in stdout.splitlines() if l.startswith("MESSAGE "))
    s = Gst.Structure.from_string(line[len("MESSAGE "):])[0]
    check(s.get_name() == "retrieval-metrics", f"{case}: the message's name", s.get_name())
    for key in ("mrr", "accuracy"):
        check(abs(s.get_value(key) - overall[key]) <= TOL, f"{case}: the message's {key}",
              (s.get_value(key), overall[key]))
    check(list(s.get_value("k")) == ks, f"{case}: the message's k", list(s.get_value("k")))
    for i, k in enumerate(ks):
        for key in ("precision", "map", "weighted-precision"):
            want = overall[key.replace("-", "_")][str(k)]
            check(abs(s.get_value(key)[i] - want) <= TOL,
                  f"{case}: the message's {key}@{k}", (s.get_value(key)[i], want))
    check(len(s.get_value("per-class")) == len(per_class), f"{case}: the message's classes",
          len(s.get_value("per-class")))
    # The table goes to the debug log, not to the application's stdout.
    check("P@k" not in stdout and "MRR" not in stdout, f"{case}: no table on stdout", stdout)


def print_table(tmp):
    """print-table=true puts the table on stdout, for gst-launch-1.0 users."""
    gallery = [(0, "cat", "s0"), (1, "dog", "s1")]
    _, stdout = run_feed(tmp, gallery, [(0, "cat", "q0", [0, 1])],
                         {"k": "1,2", "print-table": "true"})
    check("P@k" in stdout and "MRR" in stdout, "print-table=true prints the table", stdout)


def leave_one_out(tmp):
    gallery = [(0, "cat", "s0"), (0, "cat", "s1"), (1, "dog", "s2"), (0, "cat", "s3")]
    query = (0, "cat", "s0", [0, 2, 1, 3])
    result, _ = run_feed(tmp, gallery, [query], {"k": "1,2,3", "exclude-self": "true"})
    # s0 is gone (list c, b, d); cat has 3 gallery items, 2 once s0 is left out
    check(result["precision"] == {"1": 0.0, "2": 0.5, "3": 2 / 3},
          "exclude-self: precision without the query's own image", result["precision"])
    check(result["recall"] == {"1": 0.0, "2": 0.5, "3": 1.0},
          "exclude-self: recall over the 2 other cats", result["recall"])
    check(abs(result["map"]["3"] - (0.5 + 2 / 3) / 2) <= TOL, "exclude-self: mAP@3",
          result["map"]["3"])
    check(result["mrr"] == 0.5 and result["accuracy"] == 0.0, "exclude-self: MRR and accuracy",
          (result["mrr"], result["accuracy"]))

    result, _ = run_feed(tmp, gallery, [query], {"k": "1,2,3", "exclude-self": "false"})
    check(result["precision"]["1"] == 1.0 and abs(result["recall"]["1"] - 1 / 3) <= TOL,
          "exclude-self=false: the query's own image counts", result)

    # A gallery item sharing the label but not the source stays in the list.
    gallery2 = [(0, "cat", "s0"), (0, "cat", "s0-copy-elsewhere"), (1, "dog", "s2")]
    result, _ = run_feed(tmp, gallery2, [(0, "cat", "s0", [0, 1, 2])],
                         {"k": "1,2", "exclude-self": "true"})
    check(result["precision"] == {"1": 1.0, "2": 0.5} and result["recall"]["1"] == 1.0,
          "exclude-self keeps an item with the label but another source", result)


def weighted_precision(tmp):
    """Weighted P@k on a case worked by hand: the k-NN vote, its ties, and
    the class weights."""
    gallery = [(0, "cat", "g0"), (0, "cat", "g1"), (1, "dog", "g2"), (1, "dog", "g3"),
               (2, "emu", "g4")]
    queries = [(0, "cat", "q0", [0, 2, 1]),   # votes: @1 cat, @3 cat (2 of 3)
               (0, "cat", "q1", [2, 0, 3]),   # @1 dog, @3 dog (2 of 3)
               (0, "cat", "q2", [4, 0, 2]),   # @1 emu, @3 a three-way tie: emu, nearest
               (1, "dog", "q3", [2, 3, 0])]   # @1 dog, @3 dog
    result, _ = run_feed(tmp, gallery, queries, {"k": "1,3"})
    # @1: votes cat, dog, emu, dog. prec_cat = 1/1, prec_dog = 1/2 (q1 is a cat).
    #     wP@1 = 3/4 * 1 + 1/4 * 1/2 = 0.875
    # @3: votes cat, dog, emu, dog: the same.
    check(result["weighted_precision"] == {"1": 0.875, "3": 0.875},
          "weighted P@k: support-weighted precision of the vote", result["weighted_precision"])
    check(result["per_class"]["cat"]["weighted_precision"] == {"1": 1.0, "3": 1.0}
          and result["per_class"]["dog"]["weighted_precision"] == {"1": 0.5, "3": 0.5},
          "per class: the precision of the votes for that class", result["per_class"])
    check(result["precision"]["1"] == 0.5, "P@1 differs from weighted P@1 here",
          result["precision"])


def untrusted_names(tmp):
    """Label names in the sample metas are whatever bytes upstream put there:
    the JSON is valid UTF-8 (U+FFFD for invalid sequences) with quotes,
    backslashes and control characters escaped."""
    names = [(b"ca\xfft", "ca\ufffdt"), (b'd"o\\g\x01\x1f\x7f', 'd"o\\g\x01\x1f\x7f'),
             (b"\xed\xa0\x80", "\ufffd" * 3)]
    gallery = [(label, raw, f"s{label}") for label, (raw, _) in enumerate(names)]
    queries = [(label, raw, f"q{label}", [label, (label + 1) % 3]) for label, (raw, _) in enumerate(names)]
    result, _ = run_feed(tmp, gallery, queries, {"k": "1,2"})
    check({k: v["label"] for k, v in result["per_class"].items()}
          == {text: label for label, (_, text) in enumerate(names)},
          "untrusted label names: valid, escaped JSON", result["per_class"].keys())


def errors(tmp):
    gallery = [(i % 2, "ab"[i % 2], f"s{i}") for i in range(12)]
    queries = [(0, "a", "q", list(range(10)))]

    def refused(props, what, *phrases):
        expect_error(run_feed(tmp, gallery, queries, props, refused=True), what, *phrases, rc=2)

    refused({"k": "1,x"}, "k=1,x is refused", "Invalid k property", '"x"')
    refused({"k": "0,5"}, "k=0,5 is refused", "at least 1")
    refused({"k": ""}, "an empty k is refused", "empty")
    # 10 neighbours are enough for k=10, not for k=10 with exclude-self
    run_feed(tmp, gallery, queries, {"k": "10"})
    refused({"k": "10", "exclude-self": "true"}, "k=10 with exclude-self needs 11 neighbours",
            "needs 11", "faisssearch k to at least 11")
    refused({"k": "20"}, "k beyond the gallery is refused", "holds only 12 items")
    refused({"catalog": ""}, "no catalog is refused", "No gallery catalog", "index=")
    spec = os.path.join(tmp, "spec.tsv")
    proc = checks.run([FEED, spec, os.path.join(tmp, "g.db"),
                       "catalog=" + os.path.join(tmp, "missing.db")], timeout=60)
    expect_error(proc, "a missing catalog is refused by name", "missing.db", rc=2)


def main():
    rng = np.random.default_rng(20261121)
    with tmp_dir() as tmp:
        against_numpy(tmp, rng, False, "10, 1,5,3", [1, 3, 5, 10])
        against_numpy(tmp, rng, True, "1,5,10,20", [1, 5, 10, 20])
        leave_one_out(tmp)
        weighted_precision(tmp)
        print_table(tmp)
        untrusted_names(tmp)
        errors(tmp)
    finish()


if __name__ == "__main__":
    main()
