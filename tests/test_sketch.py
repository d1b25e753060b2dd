"""Sketch clean-up: drawings made here in code (marker, pencil, a phone photo of paper, chalk on
black, off-centre, tiny, huge, transparent, animated, rotated) must come out like the dataset's
edge maps. Every check measures the result (polarity, stroke width, framing, shading), never
compares exact pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy import ndimage
from skimage.morphology import skeletonize

from edges2shoes_utils.util.errors import SketchError
from edges2shoes_utils.inference.sketch import DEFAULT_MARGIN, prepare_sketch, sample_sketches

# --------------------------------------------------------------------------------------------------
# Drawing inputs.

# A side-view sneaker in unit coordinates (x to the right, y down), as a few polylines.
SHOE = [
    [(0.02, 0.80), (0.10, 0.86), (0.60, 0.88), (0.95, 0.86), (0.99, 0.78), (0.97, 0.70)],  # sole
    [(0.02, 0.80), (0.03, 0.68), (0.12, 0.60), (0.35, 0.52), (0.48, 0.30), (0.55, 0.12)],  # toe, vamp
    [(0.55, 0.12), (0.72, 0.10), (0.85, 0.14), (0.92, 0.35), (0.97, 0.70)],  # collar, heel
    [(0.05, 0.74), (0.60, 0.78), (0.97, 0.76)],  # midsole line
    [(0.40, 0.48), (0.50, 0.50)],  # laces
    [(0.45, 0.38), (0.55, 0.40)],
    [(0.50, 0.26), (0.59, 0.28)],
    [(0.70, 0.30), (0.75, 0.60), (0.85, 0.66)],  # a stripe
]


def draw_shoe(
    width: int = 800,
    height: int = 600,
    *,
    stroke: float = 4.0,
    box: tuple[float, float, float, float] = (0.1, 0.2, 0.9, 0.8),
    ink: int = 0,
    paper: int = 255,
    mode: str = "L",
) -> Image.Image:
    """The shoe drawn with antialiased strokes of `stroke` pixels inside `box` (fractions of the
    picture: left, top, right, bottom)."""
    s = 4 if width * height <= 2_000_000 else 1  # supersampling, except for huge pictures
    canvas = Image.new("L", (width * s, height * s), paper)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = box
    for line in SHOE:
        points = [((left + x * (right - left)) * width * s, (top + y * (bottom - top)) * height * s) for x, y in line]
        draw.line(points, fill=ink, width=max(1, round(stroke * s)), joint="curve")
        r = stroke * s / 2
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    image = canvas.resize((width, height), Image.Resampling.BOX)
    return image.convert(mode) if mode != "L" else image


def paper_photo(drawing: Image.Image, seed: int = 0, noise: float = 0.03) -> Image.Image:
    """A phone photo of `drawing` on paper: light falling off across the page, a soft shadow,
    graphite that is grey rather than black, sensor noise, a warm tint, JPEG."""
    rng = np.random.default_rng(seed)
    ink = 1.0 - np.asarray(drawing.convert("L"), dtype=np.float32) / 255.0
    h, w = ink.shape
    y, x = (np.arange(n, dtype=np.float32) / max(h, w) for n in (h, w))
    light = (0.95 - 0.45 * (0.6 * x[None, :] + 0.4 * y[:, None])).astype(np.float32)  # a strong gradient
    light *= 1.0 - 0.3 / (1.0 + np.exp(-(x[None, :] - 0.75) * 25))  # a soft shadow on the right
    gray = light * (1.0 - 0.75 * ink)
    gray += noise * rng.standard_normal((h, w), dtype=np.float32)
    g = Image.fromarray(np.clip(gray * 255, 0, 255).astype(np.uint8), "L")
    return Image.merge("RGB", [g, g.point(lambda v: v * 0.95), g.point(lambda v: v * 0.85)])  # warm


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# Measuring results.


def gray_of(preview: Image.Image) -> np.ndarray:
    return np.asarray(preview.convert("L"), dtype=np.float32)


def ink_of(preview: Image.Image) -> np.ndarray:
    return gray_of(preview) < 128


def stroke_width(mask: np.ndarray) -> float:
    """Mean line width in pixels: inked area over centre-line length."""
    skeleton = skeletonize(mask)
    return float(mask.sum()) / max(1, int(skeleton.sum()))


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1] + 1), int(rows[-1] + 1)


def assert_dataset_like(preview: Image.Image, size: int = 256) -> None:
    """Dark thin lines on a clean white ground, the drawing spanning most of the square, centred."""
    assert preview.size == (size, size) and preview.mode == "RGB"
    rgb = np.asarray(preview)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    gray, ink = gray_of(preview), ink_of(preview)
    near_lines = ndimage.binary_dilation(gray < 250, iterations=2)
    ground = gray[~near_lines]
    assert ground.size > 0.7 * gray.size, "most of the picture should be clean white paper"
    assert ground.min() >= 250
    assert 0.005 < ink.mean() < 0.15, f"ink covers {ink.mean():.3f} of the picture"
    assert 1.0 <= stroke_width(ink) <= 2.5, f"strokes are {stroke_width(ink):.2f} px wide"
    left, top, right, bottom = bbox(ink)
    span = max(right - left, bottom - top) / size
    expected = 1 - 2 * DEFAULT_MARGIN
    assert expected - 0.04 <= span <= expected + 0.03, f"the drawing spans {span:.2f} of the side"
    assert right - left >= 0.7 * size  # a side-view shoe: nearly the whole width
    assert abs((left + right) / 2 - size / 2) <= 0.03 * size
    assert abs((top + bottom) / 2 - size / 2) <= 0.03 * size


def check_tensor(tensor: torch.Tensor, preview: Image.Image, size: int = 256) -> None:
    assert tensor.shape == (1, 3, size, size) and tensor.dtype == torch.float32
    assert tensor.min() >= -1 and tensor.max() <= 1
    expected = torch.from_numpy(np.array(preview)).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.equal(tensor[0], expected), "the preview must be exactly what the model sees"


# --------------------------------------------------------------------------------------------------
# Inputs of every kind come out like the dataset's edges.


@pytest.mark.parametrize(
    "label, make",
    [
        ("thick marker", lambda: draw_shoe(stroke=22)),
        ("thin pencil", lambda: draw_shoe(stroke=1.2, ink=110)),
        ("shaded paper photo", lambda: paper_photo(draw_shoe(1600, 1200, stroke=5))),
        ("white on black", lambda: draw_shoe(stroke=6, ink=255, paper=0)),
        ("off-centre, small", lambda: draw_shoe(1000, 900, stroke=3, box=(0.05, 0.55, 0.45, 0.9))),
        ("tall non-square", lambda: draw_shoe(300, 900, stroke=3, box=(0.05, 0.45, 0.95, 0.6))),
        ("64 px", lambda: draw_shoe(64, 48, stroke=1.5, box=(0.05, 0.1, 0.95, 0.9))),
        ("blue pen, RGB", lambda: _tinted(draw_shoe(stroke=3), (30, 60, 200))),
    ],
)
def test_drawings_come_out_like_dataset_edges(label, make):
    tensor, preview = prepare_sketch(make())
    check_tensor(tensor, preview)
    assert_dataset_like(preview)


def _tinted(gray: Image.Image, color: tuple[int, int, int]) -> Image.Image:
    g = np.asarray(gray, dtype=np.float32)[..., None] / 255.0
    return Image.fromarray((255 * g + np.array(color) * (1 - g)).astype(np.uint8), "RGB")


def test_a_4000_px_photo_is_handled(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg_bytes(paper_photo(draw_shoe(4000, 3000, stroke=12), noise=0.04)))
    tensor, preview = prepare_sketch(path)
    check_tensor(tensor, preview)
    assert_dataset_like(preview)
    assert max(preview.info["sketch"]["working_shape"]) <= 1024  # reduced before any processing


@pytest.mark.parametrize("size", [64, 128, 256, 512])
def test_other_model_sizes(size):
    tensor, preview = prepare_sketch(draw_shoe(stroke=8), size=size)
    assert tensor.shape == (1, 3, size, size) and preview.size == (size, size)
    ink = ink_of(preview)
    left, top, right, bottom = bbox(ink)
    assert (right - left) / size > 0.85
    assert stroke_width(ink) <= 2.5


def test_thick_marker_is_thinned_and_fine_pencil_kept():
    marker = draw_shoe(stroke=24)
    thinned = ink_of(prepare_sketch(marker)[1])
    kept = ink_of(prepare_sketch(marker, thin_strokes=False)[1])
    assert stroke_width(kept) > 4.0  # without thinning the marker stays thick...
    assert stroke_width(thinned) <= 2.5  # ...with it, it is brought to the dataset's width
    # A faint pencil: every one of its lines survives (the ink's skeleton is about as long).
    pencil = draw_shoe(stroke=1.0, ink=150)
    thin = ink_of(prepare_sketch(pencil)[1])
    reference = ink_of(prepare_sketch(draw_shoe(stroke=4))[1])
    assert skeletonize(thin).sum() > 0.85 * skeletonize(reference).sum()


def test_shading_is_flattened_only_by_the_paper_step():
    photo = paper_photo(draw_shoe(1200, 900, stroke=5))
    cleaned = gray_of(prepare_sketch(photo)[1])
    raw = gray_of(prepare_sketch(photo, clean_paper=False, thin_strokes=False)[1])
    # Strips at the left and right edges are bare paper: clean white after the paper step,
    # clearly lit on the left and in shadow on the right without it.
    left, right = np.s_[100:156, 1:7], np.s_[100:156, -7:-1]
    assert cleaned[left].min() >= 250 and cleaned[right].min() >= 250
    assert np.median(raw[left]) - np.median(raw[right]) > 40


def test_polarity_is_detected_not_assumed():
    white_on_black = draw_shoe(stroke=5, ink=255, paper=0)
    _, fixed = prepare_sketch(white_on_black)
    _, unfixed = prepare_sketch(white_on_black, fix_polarity=False, clean_paper=False, thin_strokes=False)
    assert fixed.info["sketch"]["inverted"] is True
    assert np.median(gray_of(fixed)) > 250
    assert np.median(gray_of(unfixed)) < 5  # still black paper when the step is off
    # A dim photo of white paper is dark overall but its lines are darker still: not inverted.
    dim = Image.fromarray((np.asarray(draw_shoe(stroke=4), dtype=np.float32) * 0.35).astype(np.uint8))
    _, preview = prepare_sketch(dim)
    assert preview.info["sketch"]["inverted"] is False
    assert_dataset_like(preview)


def test_a_dataset_edge_map_passes_through_like_itself():
    # Already thin, dark, full width and centred: the clean-up must leave it that way.
    k = (1 - 2 * DEFAULT_MARGIN) / 0.97  # SHOE spans x 0.02..0.99 and y 0.10..0.88
    left, top = 0.5 - 0.505 * k, 0.5 - 0.49 * 0.5
    edges = draw_shoe(256, 256, stroke=1.5, box=(left, top, left + k, top + 0.5))
    before = np.asarray(edges) < 128
    after = ink_of(prepare_sketch(edges)[1])
    assert abs(stroke_width(after) - stroke_width(before)) < 0.6
    assert np.abs(np.array(bbox(after)) - np.array(bbox(before))).max() <= 4
    # Most inked pixels stay where they were (within a pixel).
    near = ndimage.binary_dilation(before, iterations=1)
    assert (after & near).sum() > 0.9 * after.sum()


@pytest.mark.parametrize("width", [1.0, 2.0, 3.0])
def test_stroke_width_option(width):
    ink = ink_of(prepare_sketch(draw_shoe(stroke=15), stroke_width=width)[1])
    assert abs(stroke_width(ink) - width) < 0.6


def test_crop_step_frames_the_drawing():
    corner = draw_shoe(1000, 1000, stroke=3, box=(0.6, 0.65, 0.95, 0.85))
    framed = ink_of(prepare_sketch(corner)[1])
    unframed = ink_of(prepare_sketch(corner, crop=False)[1])
    assert (bbox(framed)[2] - bbox(framed)[0]) > 0.85 * 256
    assert (bbox(unframed)[2] - bbox(unframed)[0]) < 0.45 * 256
    assert bbox(unframed)[0] > 0.5 * 256  # left where it was drawn


@pytest.mark.parametrize("margin", [0.0, 0.1, 0.2])
def test_margin_sets_the_span(margin):
    ink = ink_of(prepare_sketch(draw_shoe(stroke=3), margin=margin)[1])
    left, _, right, _ = bbox(ink)
    assert abs((right - left) / 256 - (1 - 2 * margin)) < 0.03


def test_grayscale_off_keeps_colour_when_nothing_redraws_the_lines():
    blue = _tinted(draw_shoe(stroke=3), (30, 60, 200))
    _, colour = prepare_sketch(blue, grayscale=False, clean_paper=False, thin_strokes=False)
    _, gray = prepare_sketch(blue, clean_paper=False, thin_strokes=False)
    rgb = np.asarray(colour).astype(int)
    lines = rgb.sum(-1) < 500
    assert (rgb[..., 2][lines] - rgb[..., 0][lines]).mean() > 50  # still blue
    g = np.asarray(gray)
    assert (g[..., 0] == g[..., 2]).all()


# --------------------------------------------------------------------------------------------------
# File formats and input kinds.


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_rgba_png_transparency_is_white_paper(tmp_path):
    # Lines drawn on a fully transparent (black, alpha 0) canvas: must not come out as black paper.
    lines = draw_shoe(stroke=4)
    alpha = 255 - np.asarray(lines)
    rgba = np.zeros(alpha.shape + (4,), np.uint8)
    rgba[..., 3] = alpha
    path = tmp_path / "transparent.png"
    Image.fromarray(rgba, "RGBA").save(path)
    _, preview = prepare_sketch(path)
    assert preview.info["sketch"]["inverted"] is False
    assert_dataset_like(preview)


def test_first_frame_of_a_gif(tmp_path):
    first = draw_shoe(stroke=4).convert("P")
    second = Image.new("L", first.size, 0).convert("P")  # a black frame: must be ignored
    path = tmp_path / "animated.gif"
    first.save(path, save_all=True, append_images=[second], duration=100)
    assert Image.open(path).n_frames == 2
    assert_dataset_like(prepare_sketch(path)[1])


def test_exif_orientation_is_applied():
    # Stored sideways (rotated 90 degrees) with an EXIF tag saying so: the shoe must come out
    # lying down again, wider than tall.
    upright = draw_shoe(800, 600, stroke=4, box=(0.05, 0.3, 0.95, 0.7))
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = jpeg_bytes(stored, exif=exif.tobytes())
    left, top, right, bottom = bbox(ink_of(prepare_sketch(data)[1]))
    assert right - left > 2 * (bottom - top)
    ignored = bbox(ink_of(prepare_sketch(stored)[1]))
    assert ignored[3] - ignored[1] > 2 * (ignored[2] - ignored[0])  # the control: without the tag


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP"])
def test_formats_from_path_and_bytes(tmp_path, fmt):
    image = draw_shoe(stroke=4).convert("RGB")
    data = _encode(image, fmt)
    path = tmp_path / f"shoe.{fmt.lower()}"
    path.write_bytes(data)
    from_path = prepare_sketch(path)[1]
    from_bytes = prepare_sketch(data)[1]
    from_memoryview = prepare_sketch(memoryview(data))[1]  # what ipywidgets 8 uploads give
    assert_dataset_like(from_path)
    assert np.array_equal(np.asarray(from_path), np.asarray(from_bytes))
    assert np.array_equal(np.asarray(from_bytes), np.asarray(from_memoryview))


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a,  # uint8 HxW
        lambda a: a.astype(np.float32) / 255,  # float in [0, 1]
        lambda a: np.repeat(a[..., None], 3, -1),  # HxWx3
        lambda a: np.dstack([a, a, a, np.full_like(a, 255)]),  # HxWx4
        lambda a: a > 127,  # bool
    ],
)
def test_arrays(convert):
    array = np.asarray(draw_shoe(stroke=4))
    assert_dataset_like(prepare_sketch(convert(array))[1])


# --------------------------------------------------------------------------------------------------
# Errors a person can act on.


def test_blank_page_names_the_file(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("RGB", (640, 480), "white").save(path)
    with pytest.raises(SketchError, match="blank.png.*no drawing"):
        prepare_sketch(path)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("L", (500, 400), 200),  # uniform grey
        lambda: paper_photo(Image.new("L", (1200, 900), 255), noise=0.0),  # shaded, noise-free
        lambda: paper_photo(Image.new("L", (1200, 900), 255), noise=0.03),  # shaded and noisy
        lambda: Image.new("L", (300, 300), 0),  # all black
    ],
)
def test_pages_without_a_drawing_are_refused(make):
    with pytest.raises(SketchError, match="no drawing"):
        prepare_sketch(make(), name="page.jpg")


def test_unreadable_files_name_the_file(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(SketchError, match="notes.jpg"):
        prepare_sketch(text)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(_encode(draw_shoe(), "PNG")[:200])
    with pytest.raises(SketchError, match="cut.png"):
        prepare_sketch(truncated)
    with pytest.raises(SketchError, match="missing.png"):
        prepare_sketch(tmp_path / "missing.png")
    with pytest.raises(SketchError, match="upload.jpg"):
        prepare_sketch(b"\x00\x01garbage", name="upload.jpg")
    with pytest.raises(SketchError, match="shape"):
        prepare_sketch(np.zeros((4, 4, 2)))


# --------------------------------------------------------------------------------------------------
# The bundled samples.


def test_bundled_samples_prepare_cleanly():
    samples = sample_sketches()
    assert len(samples) >= 3
    for path in samples:
        tensor, preview = prepare_sketch(path)
        check_tensor(tensor, preview)
        assert_dataset_like(preview)
