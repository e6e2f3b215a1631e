# SPDX-License-Identifier: LGPL-2.1-or-later
"""The retrieval metrics of engine/eval/retrieval_metrics.h, recomputed
independently with NumPy arrays, for the tests that check retrievaleval."""
import numpy as np


def vote(labels):
    """The most common label, a tie going to the tied label that comes first."""
    if labels.size == 0:
        return None
    values, first, counts = np.unique(labels, return_index=True, return_counts=True)
    tied = counts == counts.max()
    return int(values[tied][np.argmin(first[tied])])


def numpy_metrics(gallery, queries, ks, exclude_self):
    """The definitions of engine/eval/retrieval_metrics.h, computed with arrays."""
    g_labels = np.array([g[0] for g in gallery])
    g_sources = np.array([g[2] for g in gallery])
    kmax = max(ks)
    rows, r_counts, rr, labels = [], [], [], []
    votes = {k: [] for k in ks}  # vote@k per query; None without neighbours
    for label, _, source, ids in queries:
        ids = np.array(ids, dtype=np.int64)
        if exclude_self:
            ids = ids[g_sources[ids] != source]
        for k in ks:
            votes[k].append(vote(g_labels[ids[:k]]))
        rel = (g_labels[ids] == label).astype(np.float64)
        first = np.flatnonzero(rel)
        rr.append(1.0 / (first[0] + 1) if first.size else 0.0)
        padded = np.zeros(kmax)
        n = min(kmax, rel.size)
        padded[:n] = rel[:n]
        rows.append(padded)
        r = np.sum(g_labels == label)
        if exclude_self:
            r -= np.sum(g_sources == source)
        r_counts.append(max(r, 0))
        labels.append(label)
    rel = np.array(rows)                      # Q x kmax
    r_counts = np.array(r_counts, dtype=np.float64)
    rr = np.array(rr)
    labels = np.array(labels)
    ranks = np.arange(1, kmax + 1)
    p_at_i = np.cumsum(rel, axis=1) / ranks   # P@i for every i

    def figures(mask):
        has = mask & (r_counts > 0)
        out = {"queries": int(mask.sum()), "queries_with_relevant": int(has.sum()),
               "precision": {}, "recall": {}, "map": {}}
        for k in ks:
            hits = rel[:, :k].sum(axis=1)
            ap = (p_at_i[:, :k] * rel[:, :k]).sum(axis=1) / np.maximum(np.minimum(k, r_counts), 1)
            recall = hits / np.maximum(r_counts, 1)
            out["precision"][str(k)] = float(np.mean(hits[mask] / k))
            out["recall"][str(k)] = float(np.mean(recall[has])) if has.any() else 0.0
            out["map"][str(k)] = float(np.mean(ap[has])) if has.any() else 0.0
        out["weighted_precision"] = {}
        for k in ks:
            voted = np.array([-10**9 if v is None else v for v in votes[k]])
            if mask.all():  # support-weighted precision of the vote, over the classes
                terms = [np.mean(labels == c) * class_precision(voted, c)
                         for c in np.unique(labels)]
                out["weighted_precision"][str(k)] = float(np.sum(terms))
            else:           # one class: the precision of the votes for it
                c = labels[mask][0]
                out["weighted_precision"][str(k)] = class_precision(voted, c)
        out["mrr"] = float(np.mean(rr[mask]))
        out["accuracy"] = float(np.mean(rel[mask, 0]))
        return out

    def class_precision(voted, c):
        cast = voted == c
        return float(np.mean(labels[cast] == c)) if cast.any() else 0.0

    overall = figures(np.ones(len(queries), dtype=bool))
    per_class = {}
    for label in sorted(set(labels.tolist())):
        name = next(q[1] for q in queries if q[0] == label)
        per_class[name or str(label)] = dict(figures(labels == label), label=label)
    overall["votes"] = votes
    return overall, per_class
