# SPDX-License-Identifier: LGPL-2.1-or-later
"""embedder precision=int8 on the native ResNets (issue 12).

    test_embedder_int8.py engine EMBED_TENSOR
    test_embedder_int8.py index

engine: resnet18 and resnet50 checkpoints with random weights and randomised
batch norms (torch.save), calibrated on generated PNG and JPEG images: the
int8 embeddings of held-out images (preprocessed as embedder does) are within
cosine 0.99 of torchvision's fp32, yet not fp32's (it really quantized); the
activation ranges it prints, given back without the folder, give the very
same embeddings; without a quantized engine (hidden by
VISUALSEARCH_HIDE_QUANTIZED_ENGINES) it runs as fp32 and says so. Errors:
int8 without calibration images, a missing folder, an empty one, one of
damaged images only, malformed or foreign ranges, and int8 asked of a
TorchScript model.
index: faissindexer after an int8 embedder records precision=int8 and the
activation ranges (galleryindexer too, passing calibration-location on); `embedder index=` without calibration-location adopts
them and makes the very embeddings of the gallery (an fp32 embedder does
not); an index whose catalog holds no ranges, or a scale calibration cannot
produce (1e30, 1e-9), is refused.
"""
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_fixtures  # noqa: E402
from checks import check, finish, tmp_dir  # noqa: E402


def write_images(folder, seeds, size=(320, 240)):
    os.makedirs(folder, exist_ok=True)
    for i in seeds:
        rgb = image_fixtures.gradient(*size, seed=i)
        # Different images, not one gradient: rotate and tint by seed.
        rgb = np.ascontiguousarray(np.rot90(rgb, i % 4) // (1 + i % 3))
        fmt = "png" if i % 2 else "jpeg"
        image_fixtures.save(os.path.join(folder, f"{i:03d}.{fmt}"), fmt, rgb)


def engine_mode(embed_tensor, tmp):
    # torch only here: a process that loads the plugin must not import it
    # (torchscript_fixtures.py).
    import importlib.util

    import torch
    import torchvision

    from model_fixtures import randomise_batch_norms
    from torchscript_fixtures import write_tiny_torchscript

    torch.set_num_threads(2)
    spec = importlib.util.spec_from_file_location("export_torchscript", os.path.join(
        os.environ["VS_SOURCE_DIR"], "models", "export-torchscript.py"))
    exporter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exporter)

    calib, held_out = os.path.join(tmp, "calib"), os.path.join(tmp, "held-out")
    write_images(calib, range(16))
    write_images(held_out, range(100, 104))
    x = exporter.calibration_images(held_out, 224, 100)
    inp = os.path.join(tmp, "in.f32")
    x.numpy().astype(np.float32).tofile(inp)

    def embed(*keys):
        """(stdout fields, embeddings or None, stderr) of embed-tensor on x."""
        out = os.path.join(tmp, "out.f32")
        if os.path.exists(out):
            os.remove(out)
        res = subprocess.run([embed_tensor, inp, str(len(x)), "224", "224", out, "threads=2",
                              *keys], capture_output=True, text=True, timeout=300)
        fields = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
        got = None
        if res.returncode == 0:
            got = torch.from_numpy(np.fromfile(out, dtype=np.float32)).view(len(x), -1)
        return fields, got, res.stderr

    for arch, images in (("resnet18", 16), ("resnet50", 4)):
        gen = torch.Generator().manual_seed(1234)
        torch.manual_seed(7)
        model = getattr(torchvision.models, arch)(weights=None)
        randomise_batch_norms(model, gen)
        pth = os.path.join(tmp, f"{arch}.pth")
        torch.save(model.state_dict(), pth)
        model.fc = torch.nn.Identity()
        model.eval()
        with torch.no_grad():
            ref = torch.nn.functional.normalize(model(x), dim=1)

        fields, got, err = embed(f"model={arch}", f"weights={pth}", "precision=int8",
                                 f"calibration={calib}", f"calibration_images={images}")
        if not check(got is not None and fields.get("active_precision") == "int8",
                     f"{arch}: precision=int8 runs as int8", (fields, err[-300:])):
            continue
        cos = torch.nn.functional.cosine_similarity(got, ref, dim=1)
        check(cos.min() >= 0.99, f"{arch} int8: min cosine to torchvision fp32 >= 0.99",
              f"{cos.min():.5f}")
        check((got - ref).abs().max() > 1e-3, f"{arch} int8: not fp32's embeddings",
              f"max |diff| {(got - ref).abs().max():.2e}")
        check(f"calibrated on {images} images of {calib}" in fields.get("precision_reason", ""),
              f"{arch}: the reason names the calibration", fields.get("precision_reason"))

        ranges = fields.get("int8_activations", "")
        again, got_again, err = embed(f"model={arch}", f"weights={pth}", "precision=int8",
                                      f"int8_activations={ranges}")
        check(got_again is not None and torch.equal(got_again, got)
              and again.get("int8_activations") == ranges,
              f"{arch}: its printed ranges, given back without the folder, give the same "
              "embeddings", err[-300:])

    r18 = ("model=resnet18", f"weights={os.path.join(tmp, 'resnet18.pth')}", "precision=int8")
    # Where no quantized engine runs, int8 is fp32, and says so.
    os.environ["VISUALSEARCH_HIDE_QUANTIZED_ENGINES"] = "1"
    fields, got, err = embed(*r18, f"calibration={calib}")
    del os.environ["VISUALSEARCH_HIDE_QUANTIZED_ENGINES"]
    _, fp32, _ = embed(*r18[:2], "precision=fp32")
    check(got is not None and fp32 is not None and torch.equal(got, fp32)
          and fields.get("active_precision") == "fp32" and not fields.get("int8_activations")
          and "precision=int8 runs as fp32: VISUALSEARCH_HIDE_QUANTIZED_ENGINES is set"
          in fields.get("warning", ""),
          "without a quantized engine, int8 runs as fp32 with a warning", (fields, err[-300:]))

    empty, damaged = os.path.join(tmp, "empty"), os.path.join(tmp, "damaged")
    os.makedirs(empty)
    os.makedirs(damaged)
    image_fixtures.truncate(os.path.join(calib, "001.png"), os.path.join(damaged, "a.png"))
    with open(os.path.join(damaged, "notes.txt"), "w") as f:
        f.write("not an image\n")
    script = os.path.join(tmp, "tiny.pt")
    write_tiny_torchscript(script, seed=1)
    for keys, phrases, what in [
            ((), ["precision=int8 needs images", "set calibration-location"],
             "int8 without calibration images"),
            ((f"calibration={tmp}/nowhere",),
             [f"calibration-location={tmp}/nowhere is not a folder", "gallery"],
             "a calibration folder that does not exist"),
            ((f"calibration={empty}",), [f"calibration-location={empty} holds no readable image"],
             "an empty calibration folder"),
            ((f"calibration={damaged}",),
             [f"calibration-location={damaged} holds no readable image", "a.png"],
             "a calibration folder of damaged images only"),
            (("int8_activations=0.1:0;banana",), ["int8 activation parameter 2", "banana"],
             "malformed activation ranges"),
            (("int8_activations=0.1:0;0.2:3",), ["hold 2 points", "another architecture"],
             "activation ranges of another network"),
    ]:
        fields, got, err = embed(*r18, *keys)
        check(got is None and all(p in err for p in phrases), f"error: {what}", err[-400:])
    fields, got, err = embed(f"model={script}", "precision=int8", f"calibration={calib}")
    check(got is None and "quantizes the native ResNets only" in err,
          "error: int8 asked of a TorchScript model", err[-400:])


def index_mode(tmp):
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    import faiss
    from test_index_settings import recorded_settings, vectors
    from test_search_e2e import write_cifar10

    Gst.init(None)
    dataset, calib = os.path.join(tmp, "cifar-10-batches-py"), os.path.join(tmp, "calib")
    write_cifar10(dataset, seed=3)
    write_images(calib, range(8), size=(80, 64))

    def run(embedder, name, description=None):
        """Indexes the training split through embedder (or runs description);
        (index, error, the precision, active-precision and calibration-location
        of the element named e)."""
        index = os.path.join(tmp, name)
        pipeline = Gst.parse_launch(description or (
            f"cifarsrc location={dataset} split=train ! {embedder} name=e ! "
            f"faissindexer location={index}"))
        if not isinstance(pipeline, Gst.Pipeline):  # a lone bin
            element, pipeline = pipeline, Gst.Pipeline()
            pipeline.add(element)
        pipeline.set_state(Gst.State.PLAYING)
        msg = pipeline.get_bus().timed_pop_filtered(
            120 * Gst.SECOND, Gst.MessageType.ERROR | Gst.MessageType.EOS)
        error = "timed out" if msg is None else (
            msg.parse_error()[0].message if msg.type == Gst.MessageType.ERROR else None)
        e = pipeline.get_by_name("e")
        props = (e.get_property("precision").value_nick,
                 e.get_property("active-precision").value_nick
                 if e.find_property("active-precision") else None,
                 e.get_property("calibration-location"))
        pipeline.set_state(Gst.State.NULL)
        return index, error, props

    common = "weights=random seed=3 input-size=64 resize=0 batch-size=8"
    built, error, props = run(f"embedder {common} precision=int8 calibration-location={calib}",
                              "int8.faiss")
    if not check(error is None and props[1] == "int8", "an int8 embedder builds an index",
                 (error, props)):
        return
    settings = Gst.Structure.from_string(recorded_settings(built))[0]
    ranges = settings.get_string("int8-activations") or ""
    check(settings.get_string("precision") == "int8" and len(ranges.split(";")) == 29,
          "the catalog records precision=int8 and resnet18's 29 activation ranges",
          settings.to_string())

    adopted, error, props = run(f"embedder index={built} batch-size=8", "adopted.faiss")
    check(error is None and props == ("int8", "int8", None),
          "embedder index= adopts precision=int8, without calibration-location", (error, props))
    check(error is None and (vectors(adopted) == vectors(built)).all(),
          "the adopting embedder makes the very embeddings of the int8 gallery")
    check(error is None and recorded_settings(adopted) == recorded_settings(built),
          "and announces the same settings")

    # Ranges tampered with in the catalog: none (the message said to set
    # index=, which was set), a step of 1e30 (every embedding zero), of 1e-9
    # (every activation saturated, the neighbours silently changed).
    import shutil
    import sqlite3
    tampered = os.path.join(tmp, "tampered.faiss")
    for suffix in ("", ".db"):
        shutil.copy(built + suffix, tampered + suffix)
    points = ranges.split(";")
    for what, text, phrases in [
            ("no activation ranges", "",
             [tampered, "records precision=int8 but no int8 activation ranges"]),
            ("a step of 1e30", ";".join(["1e30:0"] + points[1:]),
             ["int8 activation parameter 1", "1e30:0", "calibration can produce"]),
            ("a step of 1e-9", ";".join(points[:3] + ["1e-09:0"] + points[4:]),
             ["int8 activation parameter 4", "1e-09:0", "calibration can produce"])]:
        settings.set_value("int8-activations", text)
        with sqlite3.connect(tampered + ".db") as db:
            db.execute("UPDATE index_facts SET embedder_config = ?", (settings.to_string(),))
        db.close()
        # In a process of its own: in this one, whose imports bring another
        # unwinder, an exception thrown in the engine module aborts.
        res = subprocess.run(["gst-launch-1.0", "cifarsrc", f"location={dataset}", "!",
                              "embedder", f"index={tampered}", "batch-size=8", "!", "fakesink"],
                             capture_output=True, text=True, timeout=120)
        check(res.returncode != 0 and all(p in res.stderr for p in phrases)
              and "or index=" not in res.stderr,
              f"an int8 index whose catalog holds {what} is refused", res.stderr[-600:])

    gallery = os.path.join(tmp, "gallery.faiss")
    _, error, props = run(None, "gallery.faiss",
                          f"galleryindexer name=e location={calib} index={gallery} {common} "
                          f"precision=int8 calibration-location={calib} calibration-images=4")
    check(error is None and props == ("int8", None, calib)
          and "precision=(string)int8" in recorded_settings(gallery),
          "galleryindexer passes precision=int8 and calibration-location on", (error, props))

    # An update quantizes the new files with the index's ranges, not with
    # ranges calibrated again on whatever the calibration folder holds now.
    photos, other_calib = os.path.join(tmp, "photos"), os.path.join(tmp, "other-calib")
    write_images(photos, range(20, 23), size=(80, 64))
    write_images(other_calib, range(40, 44), size=(80, 64))
    folder = os.path.join(tmp, "folder.faiss")

    def index_photos(calibration):
        _, error, _ = run(None, "folder.faiss",
                          f"galleryindexer name=e location={photos} index={folder} {common} "
                          f"precision=int8 calibration-location={calibration} "
                          "calibration-images=4")
        return error, Gst.Structure.from_string(recorded_settings(folder))[0] \
            .get_string("int8-activations")

    error, first = index_photos(calib)
    write_images(photos, range(23, 24), size=(80, 64))
    error2, updated = index_photos(other_calib)
    check(error is None and error2 is None and first and updated == first
          and faiss.read_index(folder).ntotal == 4,
          "galleryindexer's update of an int8 gallery keeps the index's activation ranges",
          (error, error2, first, updated))

    fp32, error, _ = run(f"embedder {common} precision=fp32", "fp32.faiss")
    check(error is None and not (vectors(fp32) == vectors(built)).all(),
          "an fp32 embedder makes other embeddings (the comparison above can fail)", error)


def main():
    with tmp_dir() as tmp:
        if sys.argv[1] == "engine":
            engine_mode(sys.argv[2], tmp)
        else:
            index_mode(tmp)
    finish()


if __name__ == "__main__":
    main()
