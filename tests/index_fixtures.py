# SPDX-License-Identifier: LGPL-2.1-or-later
"""FAISS index files for the index-file tests, written by Python faiss: a valid
file of every type visualsearch loads, one it refuses for its type, and
targeted corruptions of valid ones (each named after what it breaks).

Small on purpose (16 dimensions, a few hundred vectors) so that every
truncation of every file can be tried.
"""
import os
import struct

import faiss
import numpy as np

DIMS = 16
COUNT = 300

# Threads only cost time on indexes this small, a lot of it on a busy machine.
faiss.omp_set_num_threads(1)

# name -> (index_factory string, with the extras build() knows, and metric).
# PQ types skip polysemous training (np), which takes minutes.
VALID = {
    "flat-l2": ("Flat", faiss.METRIC_L2),
    "flat-ip": ("Flat", faiss.METRIC_INNER_PRODUCT),
    "ivf-flat": ("IVF8,Flat", faiss.METRIC_L2),
    "ivf-flat-ip": ("IVF8,Flat", faiss.METRIC_INNER_PRODUCT),
    "ivf-pq": ("IVF8,PQ4np", faiss.METRIC_L2),
    "ivf-pq-ip": ("IVF8,PQ4np", faiss.METRIC_INNER_PRODUCT),
    "ivf-pq-no-residual": ("IVF8,PQ4np+no residual", faiss.METRIC_L2),
    "ivf-pq-4bit": ("IVF4,PQ4x4np", faiss.METRIC_L2),
    "ivf-sq8": ("IVF8,SQ8", faiss.METRIC_L2),
    "ivf-sq4": ("IVF8,SQ4", faiss.METRIC_INNER_PRODUCT),
    "ivf-hnsw-quantizer": ("IVF8_HNSW4,Flat", faiss.METRIC_L2),
    "hnsw": ("HNSW16", faiss.METRIC_L2),
    "hnsw-ip": ("HNSW8", faiss.METRIC_INNER_PRODUCT),
    "hnsw-pq": ("HNSW8_PQ4", faiss.METRIC_L2),
    "hnsw-sq": ("HNSW8_SQ8", faiss.METRIC_L2),
    "pq": ("PQ4np", faiss.METRIC_L2),
    "sq8": ("SQ8", faiss.METRIC_L2),
    "sq-fp16": ("SQfp16", faiss.METRIC_L2),
    "opq-ivf-pq": ("OPQ4,IVF8,PQ4np", faiss.METRIC_L2),
    "pca-flat": ("PCA8,Flat", faiss.METRIC_L2),
    "pca-ivf-flat": ("PCA8,IVF4,Flat", faiss.METRIC_L2),
    "rr-l2norm-flat": ("RR16,L2norm,Flat", faiss.METRIC_INNER_PRODUCT),
    "ivf-pq-rflat": ("IVF8,PQ4np,RFlat", faiss.METRIC_L2),
    "pca-hnsw-rflat": ("PCA8,HNSW8,RFlat", faiss.METRIC_L2),
    "idmap-flat": ("IDMap,Flat", faiss.METRIC_L2),
    "idmap2-flat": ("IDMap2,Flat", faiss.METRIC_L2),
    "idmap-hnsw": ("IDMap:HNSW8", faiss.METRIC_L2),
    "idmap2-ivf-flat": ("IDMap2:IVF8,Flat", faiss.METRIC_L2),
    "ivf-direct-map": ("IVF8,Flat+direct map", faiss.METRIC_L2),
    "empty-hnsw": ("HNSW16 empty", faiss.METRIC_L2),
    "empty-ivf": ("IVF8,Flat empty", faiss.METRIC_L2),
}


def vectors(seed=3, count=COUNT):
    return np.random.default_rng(seed).normal(size=(count, DIMS)).astype("float32")


def build(spec, metric, count=COUNT):
    data = vectors(count=max(count, 300))
    empty = spec.endswith(" empty")
    spec = spec.removesuffix(" empty")
    direct_map = spec.endswith("+direct map")
    spec = spec.removesuffix("+direct map")
    no_residual = spec.endswith("+no residual")
    spec = spec.removesuffix("+no residual")
    if spec.startswith(("IDMap:", "IDMap2:")):
        wrapper, inner = spec.split(":")
        inner_index = build(inner + " empty", metric, count)
        index = (faiss.IndexIDMap2 if wrapper == "IDMap2" else faiss.IndexIDMap)(inner_index)
        index.add_with_ids(data[:count], np.arange(count, dtype="int64") * 7 + 1000)
        return index
    index = faiss.index_factory(DIMS, spec, metric)
    if no_residual:
        faiss.extract_index_ivf(index).by_residual = False
    if isinstance(index, faiss.IndexHNSWPQ):
        faiss.downcast_index(index.storage).do_polysemous_training = False
    index.train(data)
    if direct_map:
        faiss.extract_index_ivf(index).set_direct_map_type(faiss.DirectMap.Array)
    if spec.startswith("IDMap"):
        index.add_with_ids(data[:count], np.arange(count, dtype="int64") * 3 + 5)
    elif not empty:
        index.add(data[:count])
    return index


def serialize(index):
    return faiss.serialize_index(index).tobytes()


def write(directory, name, data):
    path = os.path.join(directory, name + ".faiss")
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_valid(directory):
    """name -> path of every valid fixture."""
    return {name: write(directory, name, serialize(build(spec, metric)))
            for name, (spec, metric) in VALID.items()}


def _hnsw(metric=faiss.METRIC_L2):
    index = build("HNSW16", metric)
    return index, index.hnsw


def _set_vector(vector, values):
    faiss.copy_array_to_vector(np.asarray(values, dtype=faiss.vector_to_array(vector).dtype),
                               vector)


def corruptions():
    """name -> (file bytes, a phrase the refusal must contain)."""
    out = {}

    index, hnsw = _hnsw()
    links = faiss.vector_to_array(hnsw.neighbors)
    links[12] = 9999
    _set_vector(hnsw.neighbors, links)
    out["hnsw-link"] = (serialize(index), "points to 9999 but the index holds 300 vectors")

    index, hnsw = _hnsw()
    links = faiss.vector_to_array(hnsw.neighbors)
    links[40] = -7
    _set_vector(hnsw.neighbors, links)
    out["hnsw-negative-link"] = (serialize(index), "points to -7")

    index, hnsw = _hnsw()
    hnsw.entry_point = 9999
    out["hnsw-entry-point"] = (serialize(index), "HNSW entry point is 9999")

    index, hnsw = _hnsw()
    hnsw.max_level = hnsw.max_level + 3
    out["hnsw-max-level"] = (serialize(index), "HNSW max level is")

    index, hnsw = _hnsw()
    levels = faiss.vector_to_array(hnsw.levels)
    levels[5] = 40
    _set_vector(hnsw.levels, levels)
    out["hnsw-level"] = (serialize(index), "HNSW node 5 declares 40 levels")

    index = build("IVF8,Flat", faiss.METRIC_L2)
    invlists = faiss.extract_index_ivf(index).invlists
    lists = [i for i in range(invlists.nlist) if invlists.list_size(i) > 0]
    code = faiss.rev_swig_ptr(invlists.get_single_code(lists[0], 0), invlists.code_size).copy()
    invlists.update_entry(lists[0], 0, 9999, faiss.swig_ptr(code))
    out["ivf-list-id"] = (serialize(index), "has id 9999 but the index holds 300 vectors")

    index = build("IVF8,Flat", faiss.METRIC_L2)
    invlists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
    invlists.resize(lists[0], invlists.list_size(lists[0]) - 1)
    out["ivf-list-size"] = (serialize(index), "the inverted lists hold 299 entries but the "
                            "index holds 300 vectors")

    index = build("IVF8,Flat", faiss.METRIC_L2)
    invlists = faiss.extract_index_ivf(index).invlists
    first = faiss.rev_swig_ptr(invlists.get_ids(lists[0]), 1)[0]
    code = faiss.rev_swig_ptr(invlists.get_single_code(lists[1], 0), invlists.code_size).copy()
    invlists.update_entry(lists[1], 0, int(first), faiss.swig_ptr(code))
    out["ivf-duplicate-id"] = (serialize(index), "appears twice in the inverted lists")

    index = build("IDMap,Flat", faiss.METRIC_L2)
    index.id_map.resize(index.ntotal - 1)
    out["idmap-size"] = (serialize(index), "299 ids, but the index inside it 300")

    index = build("IDMap2,Flat", faiss.METRIC_L2)
    ids = faiss.vector_to_array(index.id_map)
    ids[1] = ids[0]
    _set_vector(index.id_map, ids)
    out["idmap2-duplicate-id"] = (serialize(index), "appears twice in the IndexIDMap2")

    index = build("Flat", faiss.METRIC_L2)
    index.ntotal = index.ntotal + 1
    out["flat-count"] = (serialize(index), "the flat index holds 301 vectors")

    index = build("PCA8,Flat", faiss.METRIC_L2)
    faiss.downcast_VectorTransform(index.chain.at(0)).d_out = 9
    out["pretransform-dims"] = (serialize(index), "maps 16 to 9 dimensions but stores a matrix")

    # The 45-byte file: an IndexFlatL2 header for 0 vectors whose data
    # length says 2^30 floats; FAISS resizes to 4 GB before reading.
    header = (b"IxF2" + struct.pack("<iqqq?i", DIMS, 0, 1 << 20, 1 << 20, True, 1)
              + struct.pack("<Q", 1 << 30))
    assert len(header) == 45
    out["huge-vector-45-bytes"] = (header, "declares 1073741824 floats")

    out["trailing-bytes"] = (serialize(build("Flat", faiss.METRIC_L2)) + b"\0" * 8,
                             "more bytes after it")
    out["not-an-index"] = (b"this is a text file, not a FAISS index\n",
                           "is this a FAISS index file?")
    out["empty-file"] = (b"", "the file ends at byte 0")
    out["unsupported-lsh"] = (serialize(faiss.IndexLSH(DIMS, 32)), "IndexLSH")
    data = vectors()
    fast = faiss.index_factory(DIMS, "PQ4x4fs")
    fast.train(data)
    out["unsupported-pq-fastscan"] = (serialize(fast), "IndexPQFastScan")
    return out
