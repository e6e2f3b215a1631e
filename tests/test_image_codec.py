# SPDX-License-Identifier: LGPL-2.1-or-later
"""The engine's image reading: the header sniffer and the codecs module.

    test_image_codec.py IMAGE_PROBE

(a) every still format, written by PIL (and headers PIL cannot write, made by
    hand): the sniffer names the format and the declared size; every prefix of
    the file gives either no size or the right one, never a wrong one;
(b) decoding through libvisualsearch-codecs.so gives PIL's pixels (exactly for
    lossless formats), with the EXIF orientation applied;
(c) damaged input is refused with the right reason and never hangs: truncated
    files of every format, a corrupt PNG, zero bytes, a text file named .jpg,
    a FIFO, a 100000x100000 PNG header (refused before decoding), max_pixels;
(d) JPEG encoding round-trips.
"""
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_fixtures as fx  # noqa: E402

PROBE = sys.argv[1]
from checks import check, finish  # noqa: E402


def probe(*args):
    res = subprocess.run([PROBE, *map(str, args)], capture_output=True, text=True, timeout=60)
    return res.stdout.strip()


def fields(line):
    """key=value pairs; a value runs to the next " key=" (format names have spaces)."""
    return dict(re.findall(r"(\w+)=(.*?)(?= \w+=|$)", line))


def header(path):
    return fields(probe("header", path))


def decode(path, tmp, max_pixels=100_000_000):
    out = os.path.join(tmp, "decoded.rgb")
    text = probe("decode", path, max_pixels, out)
    info = fields(text) if text.startswith("width=") else {"error": text.split()[0][6:], "message": text}
    if "width" in info:
        w, h = int(info["width"]), int(info["height"])
        info["rgb"] = np.fromfile(out, dtype=np.uint8).reshape(h, w, 3)
    return info


FORMAT_NAME = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "webp-lossless": "WebP",
               "tiff": "TIFF", "bmp": "BMP", "ppm": "PNM", "pgm": "PNM", "jp2": "JPEG 2000",
               "j2k": "JPEG 2000"}


def check_prefixes(path, fmt, w, h, name):
    """No prefix of the file may declare a size other than the real one."""
    wrong = []
    for line in probe("prefixes", path).splitlines():
        n, got_fmt, got_w, got_h = line.rsplit(" ", 3)[0].split(" ")[0], *line.split(" ")[-3:]
        if (got_w, got_h) != ("0", "0") and (got_w, got_h) != (str(w), str(h)):
            wrong.append(line)
    check(not wrong, f"(a) {name}: no prefix declares a wrong size {wrong[:3]}")


with tempfile.TemporaryDirectory() as tmp:
    rgb = fx.gradient(67, 45)
    for fmt, (ext, exact) in fx.FORMATS.items():
        path = os.path.join(tmp, fmt + ext)
        fx.save(path, fmt, rgb)
        got = header(path)
        check(got == {"format": FORMAT_NAME[fmt], "width": "67", "height": "45"},
              f"(a) {fmt}: sniffed {got}")
        check_prefixes(path, fmt, 67, 45, fmt)
        want = np.asarray(Image.open(path).convert("RGB"))
        res = decode(path, tmp)
        if "rgb" not in res:
            check(False, f"(b) {fmt}: decoded ({res})")
            continue
        diff = np.abs(res["rgb"].astype(int) - want.astype(int)).mean()
        check(res["rgb"].shape == want.shape and (diff == 0 if exact else diff < 2.0),
              f"(b) {fmt}: decoded pixels equal PIL's (mean |diff| {diff:.3f})")

    # WebP's three headers: lossy VP8, lossless VP8L, extended VP8X (written with EXIF).
    chunks = set()
    for fmt, options in [("webp", {}), ("webp-lossless", {}), ("webp", {"exif": Image.Exif().tobytes()})]:
        path = os.path.join(tmp, "kind.webp")
        fx.save(path, fmt, rgb, **options)
        with open(path, "rb") as f:
            chunks.add(f.read(16)[12:16])
        check(header(path) == {"format": "WebP", "width": "67", "height": "45"},
              f"(a) WebP {chunks}: size from the header")
        check_prefixes(path, fmt, 67, 45, f"WebP {options}")
    check(chunks == {b"VP8 ", b"VP8L", b"VP8X"}, f"(a) all three WebP headers covered: {chunks}")

    # Headers PIL does not write.
    def hand(name, data, want_fmt, w, h):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        got = header(path)
        check(got == {"format": want_fmt, "width": str(w), "height": str(h)}, f"(a) {name}: {got}")
        check_prefixes(path, name, w, h, name)

    ifd = lambda e, pack: pack(len(e)) + b"".join(e)  # noqa: E731
    hand("big-endian.tif", b"MM\0*" + struct.pack(">I", 8) + struct.pack(">H", 3) +
         struct.pack(">HHII", 254, 4, 1, 0) + struct.pack(">HHIHH", 256, 3, 1, 300, 0) +
         struct.pack(">HHII", 257, 4, 1, 70000) + b"\0" * 4, "TIFF", 300, 70000)
    hand("bigtiff.tif", b"II+\0" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 2) +
         struct.pack("<HHQQ", 256, 16, 1, 5000000000) + struct.pack("<HHQQ", 257, 3, 1, 12) +
         b"\0" * 8, "TIFF", 5000000000, 12)
    bmp_path = os.path.join(tmp, "bmp.bmp")
    with open(bmp_path, "rb") as f:
        bmp = bytearray(f.read())
    bmp[22:26] = struct.pack("<i", -45)
    hand("top-down.bmp", bytes(bmp), "BMP", 67, 45)
    hand("os2.bmp", b"BM" + b"\0" * 12 + struct.pack("<IHHHH", 12, 640, 480, 1, 24) + b"\0" * 30,
         "BMP", 640, 480)
    hand("comments.ppm", b"P3\n# made by hand\n 3 # width\n2\n255\n" + b"1 2 3 " * 6, "PNM", 3, 2)
    hand("image.pam", b"P7\nWIDTH 5\nHEIGHT 4\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" +
         b"\0" * 60, "PNM", 5, 4)
    hand("bitmap.pbm", b"P4\n16 2\n" + b"\xff\x00" * 2, "PNM", 16, 2)
    hand("progressive.jpg", open(os.path.join(tmp, "jpeg.jpg"), "rb").read(), "JPEG", 67, 45)
    Image.fromarray(rgb).save(os.path.join(tmp, "p.jpg"), "JPEG", progressive=True)
    check(header(os.path.join(tmp, "p.jpg"))["width"] == "67", "(a) progressive JPEG (SOF2)")
    res = decode(os.path.join(tmp, "comments.ppm"), tmp)
    check(res.get("rgb") is not None and res["rgb"].shape == (2, 3, 3) and
          (res["rgb"] == [1, 2, 3]).all(), "(b) an ASCII PPM with comments decodes")

    # (b) EXIF orientation: stored 64x32, displayed rotated to 32x64.
    stored = fx.gradient(64, 32, seed=3)
    for orientation in [3, 6, 8]:
        path = os.path.join(tmp, f"exif{orientation}.jpg")
        fx.exif_rotated_jpeg(path, stored, orientation)
        upright = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        res = decode(path, tmp)
        got = res.get("rgb")
        diff = np.abs(got.astype(int) - upright.astype(int)).mean() if got is not None and \
            got.shape == upright.shape else float("inf")
        check(diff < 2.0, f"(b) EXIF orientation {orientation}: {got.shape if got is not None else res} "
              f"upright like PIL's exif_transpose (mean |diff| {diff:.3f})")

    # (c) damaged files
    for fmt, (ext, _) in fx.FORMATS.items():
        path = os.path.join(tmp, "cut-" + fmt + ext)
        fx.truncate(os.path.join(tmp, fmt + ext), path)
        res = decode(path, tmp)
        check(res.get("error") == "corrupt", f"(c) truncated {fmt}: {res.get('error')} "
              f"({res.get('message', res.get('rgb', np.zeros(0)).shape)})")
    fx.corrupt_png(os.path.join(tmp, "png.png"), os.path.join(tmp, "corrupt.png"))
    check(decode(os.path.join(tmp, "corrupt.png"), tmp).get("error") == "corrupt", "(c) corrupt PNG")
    open(os.path.join(tmp, "empty.jpg"), "wb").close()
    check(decode(os.path.join(tmp, "empty.jpg"), tmp).get("error") == "empty", "(c) zero bytes")
    with open(os.path.join(tmp, "text.jpg"), "w") as f:
        f.write("this is not a picture\n")
    check(decode(os.path.join(tmp, "text.jpg"), tmp).get("error") == "not-an-image",
          "(c) a text file named .jpg is not an image")
    os.mkfifo(os.path.join(tmp, "fifo.jpg"))
    res = decode(os.path.join(tmp, "fifo.jpg"), tmp)
    check(res.get("error") == "unreadable" and "not a regular file" in res["message"],
          f"(c) a FIFO is refused without blocking: {res}")
    fx.png_bomb(os.path.join(tmp, "bomb.png"))
    res = decode(os.path.join(tmp, "bomb.png"), tmp)
    check(res.get("error") == "too-large" and "100000x100000" in res["message"],
          f"(c) a 100000x100000 PNG header is refused before decoding: {res}")
    big = os.path.join(tmp, "big.png")
    Image.fromarray(fx.gradient(3000, 2000)).save(big, compress_level=1)
    check(decode(big, tmp, 5_999_999).get("error") == "too-large", "(c) 3000x2000 over max-pixels")
    check(decode(big, tmp, 6_000_000).get("rgb", np.zeros(0)).shape == (2000, 3000, 3),
          "(c) 3000x2000 at max-pixels = 6000000 decodes")
    Image.new("RGB", (1, 1), (10, 200, 30)).save(os.path.join(tmp, "one.png"))
    res = decode(os.path.join(tmp, "one.png"), tmp)
    check(res.get("rgb") is not None and res["rgb"].tolist() == [[[10, 200, 30]]], "(b) a 1x1 PNG")

    # (d) JPEG encoding
    raw = os.path.join(tmp, "in.rgb")
    rgb.tofile(raw)
    out = os.path.join(tmp, "encoded.jpg")
    probe("encode", raw, 67, 45, 90, out)
    back = np.asarray(Image.open(out).convert("RGB")) if os.path.exists(out) else None
    diff = np.abs(back.astype(int) - rgb.astype(int)).mean() if back is not None else float("inf")
    check(back is not None and back.shape == rgb.shape and diff < 6,
          f"(d) encode_jpeg round-trips through PIL (mean |diff| {diff:.2f})")

finish()
