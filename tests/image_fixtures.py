# SPDX-License-Identifier: LGPL-2.1-or-later
"""Generated image files for the image-codec and gallerysrc tests.

Every still format the gallery reads, written by PIL (python3-pil), plus
hand-made headers PIL cannot write and damaged files of every kind.
"""
import struct
import zlib

import numpy as np
from PIL import Image


def gradient(w, h, seed=0):
    """Smooth colours with some structure, so rotations and flips show."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                    (x * 3 + y * 7) % 256], axis=2).astype(np.int32)
    img += rng.integers(0, 8, size=img.shape)
    return img.clip(0, 255).astype(np.uint8)


def save(path, fmt, rgb, **options):
    """Saves rgb in fmt, one of FORMATS' keys."""
    im = Image.fromarray(rgb)
    kind = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "webp-lossless": "WEBP",
            "tiff": "TIFF", "bmp": "BMP", "ppm": "PPM", "pgm": "PPM", "jp2": "JPEG2000",
            "j2k": "JPEG2000"}[fmt]
    if fmt == "jpeg":
        options.setdefault("quality", 95)
    if fmt == "webp-lossless":
        options["lossless"] = True
    if fmt == "webp":
        options.setdefault("quality", 90)
    if fmt == "pgm":
        im = im.convert("L")
    if fmt == "j2k":
        options["no_jp2"] = True
    im.save(path, kind, **options)


# format key -> (file name extension, exact: decoding gives PIL's pixels exactly)
FORMATS = {
    "jpeg": (".jpg", False), "png": (".png", True), "webp": (".webp", False),
    "webp-lossless": (".webp", True), "tiff": (".tif", True), "bmp": (".bmp", True),
    "ppm": (".ppm", True), "pgm": (".pgm", True), "jp2": (".jp2", True), "j2k": (".j2k", True),
}


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path, width=100000, height=100000):
    """A valid PNG header declaring width x height, with a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
                png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def png_zero_bomb(path, width, height):
    """A real decompression bomb: width x height black RGB pixels, which zlib
    squeezes about a thousand to one, so the file is small and the image huge."""
    z = zlib.compressobj(1)
    row = b"\0" * (1 + width * 3)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) +
                png_chunk(b"IEND", b""))


def exif_rotated_jpeg(path, rgb, orientation=6):
    """rgb stored as is, with an EXIF orientation tag that rotates it for display."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb).save(path, "JPEG", quality=95, exif=exif.tobytes())


def truncate(src, dst, fraction=0.5):
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data[:int(len(data) * fraction)])


def corrupt_png(src, dst):
    """Bytes inside the IDAT overwritten: the CRC and the zlib stream fail."""
    with open(src, "rb") as f:
        data = bytearray(f.read())
    at = data.index(b"IDAT") + 8
    data[at:at + 32] = b"\xA5" * 32
    with open(dst, "wb") as f:
        f.write(data)
