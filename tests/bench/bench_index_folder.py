#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Indexing a folder of JPEG photos at 224: galleryindexer against the Python
way, whole-process images/s.

    /usr/bin/python3 tests/bench/bench_index_folder.py [BUILD_DIR]
        [--dataset DIR/cifar-10-batches-py] [--count N] [--repeat N]
        [--thumbnail-size S] [--profile]

The gallery: the first N images of the CIFAR-10 sample's training batches,
upscaled to 256x256 (bicubic) and written as JPEG (quality 90) into class
folders, cached under BUILD_DIR/bench-folder-N.

Ours: `gst-launch-1.0 galleryindexer location=... index=... mode=rebuild
weights=random input-size=224 resize=256 batch-size=16` (gallerysrc !
embedder ! faissindexer; thumbnails in the catalog as by default).

Python (what earlier image-search projects do), in /usr/bin/python3 with
torch.set_num_threads(2): torchvision ImageFolder with Resize(256) +
CenterCrop(224) + ToTensor + Normalize, DataLoader(batch_size=16,
num_workers=2), torchvision resnet18 (random weights) with fc removed,
embeddings into faiss.IndexFlatL2, written with faiss.write_index.

Both timed from launch to exit, alternately, in the same run; the best of
--repeat runs is kept, since the machine is shared. On a busy machine the wall
time mostly says which process got the cores, so the CPU time each spent
(user + system, all its processes and threads) is printed too: images per
CPU-second compare the work each does, whatever the load. --profile also times the
stages of ours alone (decode only; decode and embed) to show where time goes.
Figures only; target: ours >= 1.3x.
"""
import argparse
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402

DEFAULT_DATASET = "/work/shared/data/cifar10-sample/cifar-10-batches-py"
BATCH = 16


def write_gallery(dataset, count, root):
    """The first count training images as 256x256 JPEGs in class folders."""
    import numpy as np
    from PIL import Image

    with open(os.path.join(dataset, "batches.meta"), "rb") as f:
        names = [n.decode() for n in pickle.load(f, encoding="bytes")[b"label_names"]]
    tmp = root + ".partial"
    written = 0
    for b in range(1, 6):
        if written == count:
            break
        with open(os.path.join(dataset, "data_batch_%d" % b), "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        pixels = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        for image, label in zip(pixels, batch[b"labels"]):
            if written == count:
                break
            folder = os.path.join(tmp, names[label])
            os.makedirs(folder, exist_ok=True)
            big = Image.fromarray(np.ascontiguousarray(image)).resize((256, 256), Image.BICUBIC)
            big.save(os.path.join(folder, "%05d.jpg" % written), quality=90)
            written += 1
    if written != count:
        raise SystemExit("the dataset has only %d training images" % written)
    os.rename(tmp, root)


def python_reference(root, index_path):
    """The Python way; runs in a child process of its own, timed whole."""
    import faiss
    import numpy as np
    import torch
    import torchvision
    from torchvision import transforms

    torch.set_num_threads(2)
    data = torchvision.datasets.ImageFolder(root, transform=transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]))
    loader = torch.utils.data.DataLoader(data, batch_size=BATCH, shuffle=False, num_workers=2)
    model = torchvision.models.resnet18(weights=None)
    model.fc = torch.nn.Identity()
    model.eval()
    features = []
    with torch.no_grad():
        for images, _ in loader:
            features.append(model(images).numpy())
    embeddings = np.concatenate(features)
    index = faiss.IndexFlatL2(embeddings.shape[1])
    index.add(embeddings)
    faiss.write_index(index, index_path)
    print("ntotal=%d" % index.ntotal)


def cpu_seconds():
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(command, env):
    """(wall seconds, CPU seconds of the command and its children, stdout)."""
    cpu = cpu_seconds()
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(command), run.stderr[-3000:]))
    return seconds, cpu_seconds() - cpu, run.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--thumbnail-size", type=int, default=128)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--reference", nargs=2, metavar=("ROOT", "INDEX"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference:
        python_reference(*args.reference)
        return

    build = os.path.abspath(args.build)
    root = os.path.join(build, "bench-folder-%d" % args.count)
    if not os.path.isdir(root):
        write_gallery(args.dataset, args.count, root)
    print(cpu.describe())
    print("gallery %s: %d JPEGs of 256x256; best of %d runs each, whole process "
          "(launch to exit)" % (root, args.count, args.repeat))
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GST_PLUGIN_PATH_1_0=os.path.join(build, "ext", "visualsearch"),
                   GST_REGISTRY_1_0=os.path.join(tmp, "registry.bin"))
        ours_index = os.path.join(tmp, "ours.faiss")
        common = ["location=" + root, "weights=random", "input-size=224", "resize=256",
                  "batch-size=%d" % BATCH]
        ours = ["gst-launch-1.0", "-q", "galleryindexer", "index=" + ours_index, "mode=rebuild",
                "thumbnail-size=%d" % args.thumbnail_size, *common]
        python = [sys.executable, os.path.abspath(__file__), "--reference", root,
                  os.path.join(tmp, "python.faiss")]
        ours_runs, python_runs = [], []
        for _ in range(args.repeat):
            ours_runs.append(timed(ours, env)[:2])
            p = timed(python, env)
            if "ntotal=%d" % args.count not in p[2]:
                raise RuntimeError("the Python reference indexed: " + p[2])
            python_runs.append(p[:2])
        import faiss
        if faiss.read_index(ours_index).ntotal != args.count:
            raise RuntimeError("galleryindexer did not index every image")
        n = args.count
        best = {}
        for name, runs in (("ours", ours_runs), ("python", python_runs)):
            wall, cpu_s = min(r[0] for r in runs), min(r[1] for r in runs)
            best[name] = (n / wall, n / cpu_s)
            print("%-6s %7.1f images/s (%.1f s), %5.1f images per CPU-second (%.1f CPU-s)" %
                  (name, n / wall, wall, n / cpu_s, cpu_s))
        print("ratio  %7.2fx images/s (target >= 1.3x), %.2fx images per CPU-second" %
              (best["ours"][0] / best["python"][0], best["ours"][1] / best["python"][1]),
              flush=True)

        if args.profile:
            # Each stage alone, whole process: where ours spends its time.
            stages = [
                ("decode (gallerysrc ! fakesink)",
                 ["gallerysrc", "location=" + root, "!", "fakesink"]),
                ("decode + preprocess + model (gallerysrc ! embedder ! fakesink)",
                 ["gallerysrc", "location=" + root, "!", "embedder", *common[1:], "!",
                  "fakesink"]),
            ]
            for name, pipeline in stages:
                seconds, cpu_s, _ = timed(["gst-launch-1.0", "-q", *pipeline], env)
                print("  %-66s %6.1f s %6.1f CPU-s" % (name, seconds, cpu_s), flush=True)


if __name__ == "__main__":
    main()
