"""A synthetic mini edges2shoes set: procedurally drawn shoes and edge maps extracted from them.

The real edges2shoes set (Isola et al. 2017, arXiv 1611.07004; photos from UT Zappos50K) pairs a
product photo of a shoe, seen from the side on a white background, with an edge map that an edge
detector (HED) found in that photo, cleaned up into thin dark lines on white. This package makes the
same kind of pairs offline, in the same layout, so that training, evaluation, the notebooks, the
demo and the tests run without a download:

* the photo is a side view of a shoe of one of several kinds (sneaker, boot, heel, loafer, sandal),
  each with its own shapes, details, palette and material (mesh, canvas, leather, suede, patent),
  shaded as a rounded volume with highlights, on white;
* the edge map is computed FROM the rendered photo (smoothing, colour gradient, non-maximum
  suppression, hysteresis, removal of short fragments), never drawn from the geometry, so it has
  the real set's habits: outlines and strong seams survive, faint detail drops out.

Output: `OUT/train/{i}_AB.jpg` and `OUT/val/{i}_AB.jpg`, each 2S x S with the edge map on the LEFT
and the photo on the RIGHT, numbered from 1. Every pair depends only on (seed, split, index), so a
run is reproducible and a larger set extends a smaller one with the same seed.

The modules, in the order a pair is made: `palettes` (colours and materials), `shapes` (curves, the
`Shoe` drawing record and its `Sole`), `kinds` (one builder per kind), `photo` (rendering),
`edges` (the edge detector), `dataset` (pairs, the set on disk and the `make-synthetic` command).
"""

from .dataset import (
    JPEG_QUALITY,
    MARKER,
    Pair,
    configure_cli,
    default_n_val,
    encode_pair,
    make_pair,
    make_synthetic,
    preview,
)
from .edges import extract_edges
from .kinds import BUILDERS, KINDS
from .photo import render_photo

__all__ = [
    "MARKER",
    "JPEG_QUALITY",
    "KINDS",
    "BUILDERS",
    "Pair",
    "make_pair",
    "make_synthetic",
    "default_n_val",
    "encode_pair",
    "preview",
    "render_photo",
    "extract_edges",
    "configure_cli",
]
