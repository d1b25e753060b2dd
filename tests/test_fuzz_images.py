"""Damaged image files are refused, every time (issue 13).

The sketch reader (`inference.image_input.load_image`, from a path, from an upload's bytes, and as
`prepare_sketch` calls it; then `prepare_sketch` itself on whatever decodes) and the dataset reader (`data.pairs.load_pair_image`,
plain and with JPEG draft decoding, and `PairsDataset` items) get random bytes, and small valid PNG,
JPEG (baseline with EXIF orientation, progressive), WebP (lossy, lossless) and GIF (animated) files
cut at 40 offsets and with single bits flipped in the header and in the pixel data, plus images
whose header claims billions of pixels. Each input must decode into a sane image or raise our own
error (SketchError / DataError) in one line naming the input; any other exception is a bug.

"In under a second": hangs are made impossible rather than timed. Both readers refuse, before
decoding, images with more pixels than a plausible input, so a header that claims 10,000 x 8,000
pixels costs nothing; every test here also runs under pytest-timeout.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from edges2shoes_utils.data.pairs import PairsDataset, load_pair_image
from edges2shoes_utils.inference.image_input import MAX_SKETCH_PIXELS, load_image
from edges2shoes_utils.inference.sketch import DEFAULT_WORKING_SIZE, prepare_sketch
from edges2shoes_utils.util.errors import DataError, Skipped, SketchError
from fuzzing import Fuzz, flipped, random_blobs, spread_positions, truncation_offsets

pytestmark = pytest.mark.timeout(60)  # a hang fails the test instead of stalling the suite

SKETCH_SIZE = 32  # prepare_sketch's output side: small, so the clean-up after a decode is quick

# --------------------------------------------------------------------------------------------------
# Small valid images in every format the readers take.


def drawing(width: int, height: int) -> Image.Image:
    """Dark lines on white (a sketch), and for 2:1 sizes a coloured right half (an A|B pair)."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    side = height
    draw.ellipse((4, side // 3, side - 5, side - 6), outline="black", width=2)
    draw.line((6, side // 2, side // 2, 4), fill="black", width=2)
    if width == 2 * height:
        draw.rectangle((side + 4, 4, width - 4, height - 4), fill=(180, 60, 40))
    return image


def encode(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "png":
        rgba = image.convert("RGBA")
        rgba.putpixel((0, 0), (0, 0, 0, 0))  # transparency, composited on white by the readers
        rgba.save(buffer, "PNG")
    elif kind == "jpeg-exif":
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: rotate 90 degrees on display
        image.save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    elif kind == "jpeg-progressive":
        image.save(buffer, "JPEG", quality=90, progressive=True)
    elif kind == "webp":
        image.save(buffer, "WEBP", quality=80)
    elif kind == "webp-lossless":
        image.convert("RGBA").save(buffer, "WEBP", lossless=True)
    elif kind == "gif":
        second = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        image.convert("P").save(buffer, "GIF", save_all=True, append_images=[second.convert("P")], duration=100,
                                loop=0, transparency=0)
    return buffer.getvalue()


KINDS = ["png", "jpeg-exif", "jpeg-progressive", "webp", "webp-lossless", "gif"]
SUFFIX = {"png": ".png", "jpeg-exif": ".jpg", "jpeg-progressive": ".jpg", "webp": ".webp",
          "webp-lossless": ".webp", "gif": ".png"}  # the dataset lists no .gif: a GIF misnamed .png


# --------------------------------------------------------------------------------------------------
# Where the structure of each format is: (boundaries, header range, pixel-data range).


def png_structure(data: bytes) -> tuple[list[int], tuple[int, int], tuple[int, int]]:
    boundaries, position, idat = [8], 8, None
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        boundaries += [position + 8, position + 8 + length, position + 12 + length]
        if kind == b"IDAT" and idat is None:
            idat = (position + 8, position + 8 + length)
        position += 12 + length
    return boundaries, (0, idat[0] - 8), idat


def jpeg_structure(data: bytes) -> tuple[list[int], tuple[int, int], tuple[int, int]]:
    boundaries, position = [2], 2
    while data[position] == 0xFF and data[position + 1] != 0xDA:  # up to the start of scan
        (length,) = struct.unpack(">H", data[position + 2:position + 4])
        position += 2 + length
        boundaries.append(position)
    (length,) = struct.unpack(">H", data[position + 2:position + 4])
    scan = position + 2 + length
    return boundaries + [scan, len(data) - 2], (0, scan), (scan, len(data) - 2)


def riff_structure(data: bytes) -> tuple[list[int], tuple[int, int], tuple[int, int]]:
    boundaries, position, payload = [4, 8, 12], 12, None
    while position + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[position:position + 8])
        boundaries += [position + 8, position + 8 + length]
        if kind in (b"VP8 ", b"VP8L") and payload is None:
            payload = (position + 8 + 10, position + 8 + length)
        position += 8 + length + (length & 1)
    if payload is None:  # animated: the frame's bitstream sits inside ANMF chunks
        payload = (len(data) // 2, len(data))
    return boundaries, (0, payload[0]), payload


def gif_structure(data: bytes) -> tuple[list[int], tuple[int, int], tuple[int, int]]:
    packed = data[10]
    position = 13 + (3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0)  # after the global colour table
    boundaries, pixels = [6, 13, position], None
    while position < len(data) and data[position] != 0x3B:
        image = data[position] == 0x2C
        if image:  # descriptor, optional local colour table, LZW code size
            local = data[position + 9]
            position += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1
        else:  # extension introducer and label
            position += 2
        start = position
        while data[position]:  # sub-blocks up to the terminator
            position += 1 + data[position]
        position += 1
        boundaries.append(position)
        if image and pixels is None:
            pixels = (start, position)
    return boundaries, (0, pixels[0]), pixels


def structure(kind: str, data: bytes):
    return {"png": png_structure, "jpeg": jpeg_structure, "webp": riff_structure, "gif": gif_structure}[
        kind.split("-")[0]](data)


def damaged_copies(kind: str, data: bytes) -> dict[str, bytes]:
    """The file cut at 40 offsets, and with one bit flipped at 6 places in the header and 6 in the
    pixel data."""
    boundaries, header, pixels = structure(kind, data)
    copies = {f"{kind} cut at {offset}/{len(data)}": data[:offset] for offset in truncation_offsets(data, boundaries)}
    for region, seed in ((header, 1), (pixels, 2)):
        for case, damaged in flipped(data, spread_positions(*region, 6, seed), seed).items():
            copies[f"{kind} {case}"] = damaged
    return copies


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header (with a correct CRC) claims width x height pixels over a few bytes of data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(drawing(64, 64), "gif"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


BOMBS = {  # a header's claim, never decoded: refused by the pixel limits (or PIL's own above 179M)
    "png 10000x8000": png_claiming(10_000, 8_000),
    "png 20000x20000": png_claiming(20_000, 20_000),
    "png 2^31-1 square": png_claiming(2**31 - 1, 2**31 - 1),
    "gif 65535x65535": gif_claiming(65535, 65535),
    "gif 65535x1200": gif_claiming(65535, 1200),
}

IMAGE_PREFIXES = {
    "png": b"\x89PNG\r\n\x1a\n",
    "jpeg": b"\xff\xd8\xff\xe0",
    "gif": b"GIF89a",
    "webp": b"RIFF\x00\x10\x00\x00WEBPVP8 ",
    "bmp": b"BM",
}


# --------------------------------------------------------------------------------------------------
# What a successful read must give.


def sane_picture(image: Image.Image) -> None:
    assert isinstance(image, Image.Image) and image.mode == "RGB" and min(image.size) >= 1
    image.getpixel((0, 0))  # really decoded


def sane_sketch(result: tuple[torch.Tensor, Image.Image]) -> None:
    tensor, preview = result
    assert tensor.shape == (1, 3, SKETCH_SIZE, SKETCH_SIZE) and torch.isfinite(tensor).all()
    sane_picture(preview)


def sane_pair(image: Image.Image) -> None:
    sane_picture(image)
    assert abs(image.width - 2 * image.height) <= 1


def try_sketch_readers(fuzz: Fuzz, case: str, data: bytes, path: Path, must: str | None = None) -> None:
    """The sketch readers on `data` as a file and as an upload's bytes; the full clean-up
    (`prepare_sketch`) on every input the reader decodes."""
    path.write_bytes(data)
    fuzz.run("load_image(path)", case, lambda: load_image(path), str(path), sane_picture, must)
    fuzz.run("load_image(bytes)", case, lambda: load_image(data, "upload.png"), "upload.png", sane_picture, must)
    outcome = fuzz.run("load_image(path, max_side)", case, lambda: load_image(path, max_side=DEFAULT_WORKING_SIZE),
                       str(path), sane_picture, must)
    if outcome == "read":
        fuzz.run("prepare_sketch", case, lambda: prepare_sketch(path, SKETCH_SIZE), str(path), sane_sketch)


def try_pair_readers(fuzz: Fuzz, case: str, data: bytes, path: Path, must: str | None = None) -> None:
    path.write_bytes(data)
    fuzz.run("load_pair_image", case, lambda: load_pair_image(path), str(path), sane_pair, must)
    fuzz.run("load_pair_image(target)", case, lambda: load_pair_image(path, 32), str(path), sane_pair, must)


# --------------------------------------------------------------------------------------------------
# Both readers on the same damage.

READERS = {  # name: (the drawing's height for a width of 64, the error it must raise, how to run it)
    "sketch": (64, SketchError, try_sketch_readers),
    "pair": (32, DataError, try_pair_readers),  # an A|B pair is twice as wide as high
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("kind", KINDS)
def test_damaged_files_decode_or_are_refused(kind, reader, tmp_path):
    height, error, try_readers = READERS[reader]
    data = encode(drawing(64, height), kind)
    fuzz = Fuzz(expected=(error,))
    path = tmp_path / f"{reader}{SUFFIX[kind]}"
    try_readers(fuzz, f"{kind} undamaged", data, path, must="read")
    for case, damaged in damaged_copies(kind, data).items():
        try_readers(fuzz, case, damaged, path)
    fuzz.assert_clean()
    assert fuzz.outcomes["refused"] >= 40  # the truncations at least: the cases really ran


@pytest.mark.parametrize("reader", READERS)
def test_random_bytes_and_bombs_are_refused(reader, tmp_path):
    _, error, try_readers = READERS[reader]
    fuzz = Fuzz(expected=(error,))
    for case, blob in {"empty": b"", **random_blobs(IMAGE_PREFIXES), **BOMBS}.items():
        try_readers(fuzz, case, blob, tmp_path / f"{reader}.jpg", must="refused")
    fuzz.assert_clean()


def test_a_photo_above_the_pixel_limit_is_read_at_reduced_scale_if_it_is_a_jpeg(tmp_path):
    """The limit costs real photos nothing: a JPEG decodes at 1/2 to fit, even without max_side; the
    same picture as a PNG is refused before decoding."""
    big = Image.new("L", (6400, 4000), 255)
    assert big.width * big.height > MAX_SKETCH_PIXELS
    ImageDraw.Draw(big).line((100, 100, 6000, 3800), fill=0, width=40)
    big.save(tmp_path / "photo.jpg", quality=70)
    for image in (load_image(tmp_path / "photo.jpg"), load_image((tmp_path / "photo.jpg").read_bytes(), "upload.jpg")):
        assert image.size == (3200, 2000) and image.mode == "RGB"
    big.save(tmp_path / "scan.png")
    with pytest.raises(SketchError, match=r"scan\.png: 6400x4000 pixels"):
        load_image(tmp_path / "scan.png")


# --------------------------------------------------------------------------------------------------
# The dataset.


def test_dataset_items_from_damaged_files_load_or_are_skipped(tmp_path):
    """A training split full of damaged files: each item is a pair of finite tensors or a DataError
    naming its file, and the loader's batched fetch turns every refusal into a Skipped record."""
    split = tmp_path / "shoes" / "train"
    split.mkdir(parents=True)
    for kind in KINDS:
        copies = {"undamaged": encode(drawing(64, 32), kind), **damaged_copies(kind, encode(drawing(64, 32), kind))}
        for index, data in enumerate(copies.values()):
            (split / f"{kind}-{index:03d}{SUFFIX[kind]}").write_bytes(data)
    dataset = PairsDataset(tmp_path / "shoes", "train", image_size=32)
    fuzz = Fuzz(expected=(DataError,))

    def sane_item(item: tuple[torch.Tensor, torch.Tensor]) -> None:
        assert all(t.shape == (3, 32, 32) and torch.isfinite(t).all() and t.abs().max() <= 1 for t in item)

    outcomes = [fuzz.run("PairsDataset[i]", dataset.files[i].name, lambda: dataset[i], str(dataset.files[i]), sane_item)
                for i in range(len(dataset))]
    fuzz.assert_clean()
    batch = dataset.__getitems__(list(range(len(dataset))))
    assert [isinstance(item, Skipped) for item in batch] == [outcome == "refused" for outcome in outcomes]
    assert outcomes.count("read") >= len(KINDS) and outcomes.count("refused") >= 40 * len(KINDS)
