"""Pictures people would rather look at than read: image grids and loss curves.

Everything here renders off-screen (a bare matplotlib Figure saves a PNG through Agg whatever the
session's backend, and leaves pyplot alone) and writes atomically, so it works the same in a
terminal, in CI, on Kaggle and in Colab.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure  # a bare Figure, not pyplot: no GUI backend, no global state
from PIL import Image, ImageDraw

from .atomic import atomic_write_bytes


def to_pil(image: torch.Tensor) -> Image.Image:
    """A CHW tensor in [-1, 1] (the networks' range) to an RGB PIL image, clamped so that nothing
    outside the valid range ever reaches the screen (no clipping warnings)."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"to_pil takes one image, got a batch of {image.shape[0]}")
        image = image[0]
    array = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = array.permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return Image.fromarray(array, "RGB")


def as_pil(image: torch.Tensor | Image.Image) -> Image.Image:
    return image.convert("RGB") if isinstance(image, Image.Image) else to_pil(image)


def image_grid(
    columns: Mapping[str, Sequence[torch.Tensor | Image.Image]],
    cell: int = 256,
    pad: int = 4,
    title_height: int = 22,
) -> Image.Image:
    """Rows of images under column titles, e.g. {"Input": [...], "Ground truth": [...], "Generated": [...]}.

    Each cell is resized to `cell` x `cell`; all columns must hold the same number of images.
    """
    titles = list(columns)
    rows = {len(images) for images in columns.values()}
    if len(rows) != 1:
        raise ValueError(f"every column needs the same number of images, got {sorted(rows)}")
    n_rows = rows.pop()
    width = len(titles) * (cell + pad) + pad
    height = title_height + n_rows * (cell + pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(titles):
        x = pad + c * (cell + pad)
        draw.text((x + 4, 4), title, fill="black")
        for r, image in enumerate(columns[title]):
            tile = as_pil(image).resize((cell, cell), Image.Resampling.LANCZOS)
            canvas.paste(tile, (x, title_height + pad + r * (cell + pad)))
    return canvas


def save_image(image: Image.Image, path: str | Path) -> Path:
    """Save a PIL image as PNG (or by the suffix) atomically."""
    buffer = io.BytesIO()
    image.save(buffer, format=(Path(path).suffix.lstrip(".") or "png").upper().replace("JPG", "JPEG"))
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def plot_curves(
    series: Mapping[str, Sequence[float]],
    path: str | Path,
    title: str = "Losses",
    xlabel: str = "epoch",
    x: Sequence[float] | None = None,
) -> Path:
    """One line per named series (e.g. G adversarial, G L1, D real, D fake), saved as a PNG."""
    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.add_subplot()
    for name, values in series.items():
        xs = list(x) if x is not None else list(range(len(values)))
        axes.plot(xs[: len(values)], list(values), marker="o" if len(values) < 30 else None, label=name)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.grid(alpha=0.3)
    if series:
        axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
