#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Indexing CIFAR: cifarindexer against the Python way, images/s and peak memory.

    /usr/bin/python3 tests/bench/bench_index_cifar.py [BUILD_DIR]
        [--dataset DIR/cifar-10-batches-py] [--repeat N] [--configs 32:fp32,224:bf16,...]

Ours: `gst-launch-1.0 cifarindexer dataset=... index=... weights=random
resize=0 input-size=S precision=P batch-size=B` (cifarsrc ! embedder !
faissindexer), the whole process timed from launch to exit, peak memory from
/usr/bin/time -v.

Python (what earlier image-search projects do), in /usr/bin/python3 with
torch.set_num_threads(2): torchvision.datasets.CIFAR10 on the same files (its
MD5 check skipped, the sample is not the official archive) with ToTensor +
Normalize (+ Resize(S) above 32), a DataLoader (num_workers=0: two cores),
torchvision resnet18 (random weights) with fc removed, bf16 as autocast in
channels-last, embeddings into faiss.IndexFlatL2, written with
faiss.write_index. Also the whole process, timed the same way.

Both run with the same batch size, alternately, in the same run; the best of
--repeat runs is kept, since the machine is shared. Figures only.

--profile adds, per configuration, where our time goes, each stage a pipeline
of its own timed as a whole process and by gst-launch's PLAYING-to-EOS time:
start-up (one image through the embedder), reading and decoding CIFAR
(cifarsrc ! fakesink), the model on top (cifarsrc ! embedder ! fakesink), and
the whole cifarindexer (FAISS add and the atomic writes on top).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402

DEFAULT_DATASET = "/work/shared/data/cifar10-sample/cifar-10-batches-py"
BATCH = {32: 256, 224: 16}


def python_reference(dataset, size, precision, batch, index_path):
    """The Python way; runs in a child process of its own (for its peak RSS)."""
    import faiss
    import numpy as np
    import torch
    import torchvision
    from torchvision import transforms

    class Cifar10(torchvision.datasets.CIFAR10):
        def _check_integrity(self):
            return True

    torch.set_num_threads(2)
    steps = [transforms.Resize(size)] if size != 32 else []
    steps += [transforms.ToTensor(),
              transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    data = Cifar10(os.path.dirname(os.path.abspath(dataset)), train=True, download=False,
                   transform=transforms.Compose(steps))
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=False, num_workers=0)
    model = torchvision.models.resnet18(weights=None)
    model.fc = torch.nn.Identity()
    model.eval()
    bf16 = precision == "bf16"
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    features = []
    start = time.perf_counter()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for images, _ in loader:
            if bf16:
                images = images.contiguous(memory_format=torch.channels_last)
            features.append(model(images).float().numpy())
    embeddings = np.concatenate(features)
    index = faiss.IndexFlatL2(embeddings.shape[1])
    index.add(embeddings)
    faiss.write_index(index, index_path)
    print("ntotal=%d" % index.ntotal)
    print("loop_s=%f" % (time.perf_counter() - start))


def timed(command, env):
    """(wall seconds, peak RSS in MiB, stdout) of a command under /usr/bin/time -v."""
    start = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True,
                         env=env)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (command[0], run.stderr[-3000:]))
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    return seconds, int(rss.group(1)) / 1024.0, run.stdout


def streaming_seconds(gst_launch_output):
    """gst-launch's "Execution ended after H:MM:SS.NNNNNNNNN"."""
    h, m, sec = re.search(r"Execution ended after (\d+):(\d+):([0-9.]+)",
                          gst_launch_output).groups()
    return int(h) * 3600 + int(m) * 60 + float(sec)


def count_images(dataset):
    import pickle
    total = 0
    for i in range(1, 6):
        with open(os.path.join(dataset, "data_batch_%d" % i), "rb") as f:
            total += len(pickle.load(f, encoding="bytes")[b"labels"])
    return total


def profile(args, env, size, precision, batch, whole):
    """Our pipeline stage by stage: each a gst-launch of its own, best of
    --repeat, whole process and streaming seconds."""
    embedder = ("embedder weights=random resize=0 input-size=%d precision=%s batch-size=%d"
                % (size, precision, batch))
    source = "cifarsrc location=" + args.dataset
    stages = [("start-up: 1 image embedded", f"{source} num-buffers=1 ! {embedder} ! fakesink"),
              ("read + decode CIFAR", f"{source} ! fakesink"),
              ("+ embedder", f"{source} ! {embedder} ! fakesink")]
    for name, line in stages:
        best = None
        for _ in range(args.repeat):
            t = timed(["gst-launch-1.0", *line.split()], env)
            best = t if best is None or t[0] < best[0] else best
        print("      %-28s %6.2f s whole, %6.2f s streaming" %
              (name, best[0], streaming_seconds(best[2])), flush=True)
    print("      %-28s %6.2f s whole, %6.2f s streaming" %
          ("+ faissindexer (cifarindexer)", whole[0], streaming_seconds(whole[2])), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--configs", default="32:fp32,32:bf16,224:fp32,224:bf16",
                        help="comma-separated SIZE:PRECISION")
    parser.add_argument("--profile", action="store_true",
                        help="also time each stage of our pipeline on its own")
    parser.add_argument("--reference", nargs=4, metavar=("SIZE", "PRECISION", "BATCH", "INDEX"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference:
        size, precision, batch, index = args.reference
        python_reference(args.dataset, int(size), precision, int(batch), index)
        return

    build = os.path.abspath(args.build)
    print(cpu.describe())
    images = count_images(args.dataset)
    print("dataset %s: %d training images; best of %d runs each" %
          (args.dataset, images, args.repeat))
    print("whole process (launch to exit) first; in brackets the streaming part alone: "
          "gst-launch's PLAYING-to-EOS time, and the Python loop from the first batch "
          "to the written index")
    header = ("size", "prec", "batch", "ours img/s", "python img/s", "ratio",
              "[ours", "python", "ratio]", "ours MiB", "python MiB")
    print("%4s %5s %5s %11s %13s %6s %7s %7s %6s %9s %11s" % header)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GST_PLUGIN_PATH_1_0=os.path.join(build, "ext", "visualsearch"),
                   GST_REGISTRY_1_0=os.path.join(tmp, "registry.bin"))
        ours_index = os.path.join(tmp, "ours.faiss")
        python_index = os.path.join(tmp, "python.faiss")
        for config in args.configs.split(","):
            size, precision = config.split(":")
            size = int(size)
            if precision == "bf16" and not cpu.native_bf16():
                print("%4d %5s  n/a: no native bf16 on this CPU (ours runs fp32, "
                      "torchvision's emulated bf16 crawls)" % (size, precision), flush=True)
                continue
            batch = BATCH.get(size, 16)
            ours = ["gst-launch-1.0", "cifarindexer", "dataset=" + args.dataset,
                    "index=" + ours_index, "weights=random", "resize=0",
                    "input-size=%d" % size, "precision=" + precision, "batch-size=%d" % batch]
            python = [sys.executable, os.path.abspath(__file__), "--dataset", args.dataset,
                      "--reference", str(size), precision, str(batch), python_index]
            best_ours = best_python = None
            for _ in range(args.repeat):
                o = timed(ours, env)
                p = timed(python, env)
                best_ours = o if best_ours is None or o[0] < best_ours[0] else best_ours
                best_python = p if best_python is None or p[0] < best_python[0] else best_python
            if "ntotal=%d" % images not in best_python[2]:
                raise RuntimeError("the Python reference indexed: " + best_python[2])
            import faiss
            if faiss.read_index(ours_index).ntotal != images:
                raise RuntimeError("cifarindexer did not index every image")
            ours_rate = images / best_ours[0]
            python_rate = images / best_python[0]
            ours_stream = images / streaming_seconds(best_ours[2])
            python_stream = images / float(re.search(r"loop_s=([0-9.]+)", best_python[2])[1])
            print("%4d %5s %5d %11.1f %13.1f %5.2fx %7.1f %7.1f %5.2fx %9.0f %11.0f" %
                  (size, precision, batch, ours_rate, python_rate, ours_rate / python_rate,
                   ours_stream, python_stream, ours_stream / python_stream,
                   best_ours[1], best_python[1]), flush=True)
            if args.profile:
                profile(args, env, size, precision, batch, best_ours)


if __name__ == "__main__":
    main()
