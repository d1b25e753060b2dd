"""The model behind the web app: one `Sketch2Shoe` shared by every visitor, one request at a time.

The page and its HTTP API are thin (see `web_app.py`); what they do lives here, without gradio, so
tests call it directly. A request is a drawing (the canvas, an upload) and a dropout seed; the
answer is a `Translation`: the sketch as the model saw it and the shoe, each also saved as a PNG in a
folder of that answer's own (its `files`, see `_save`). The network runs under a lock: its fast path keeps per-call state (the
dropout seeds), and two forwards at once on the same cores would only take turns anyway. Clean-up
runs outside it.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image

from ..inference import Sketch2Shoe, Translation, load_image
from ..util.images import save_image
from .web_app_inputs import DEFAULT_LIMITS, UploadLimits, drawing_from_canvas, check_upload, fit_on_canvas

CANVAS_SIZE = 512  # the drawing canvas, in pixels: twice the paper model's input, as pix2pix-turbo's
BLANK_CANVAS = "The canvas is blank: draw a shoe from the side, toe to the left."


class ShoeService:
    """Turns drawings into shoes for any number of visitors with one loaded model.

    `out_dir`: where the answers' PNGs go (a fresh temporary folder by default); files older than
    `keep_seconds` are removed as new ones arrive, so a long-running app does not fill the disk.
    """

    def __init__(self, model: Sketch2Shoe, *, limits: UploadLimits = DEFAULT_LIMITS,
                 out_dir: str | Path | None = None, keep_seconds: float = 3600.0) -> None:
        self.model = model
        self.limits = limits
        self.out_dir = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="edges2shoes-app-"))
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._saved = 0

    @property
    def mode(self) -> str:
        return self.model.mode

    @property
    def default_seed(self) -> int:
        return int(self.model.seed) if self.model.seed is not None else 0

    # ----------------------------------------------------------------------------------------------

    def from_canvas(self, value: Any, seed: int | float | None) -> Translation | None:
        """The shoe for what is on the canvas, or None when the canvas is blank. A drawing the
        clean-up cannot use raises SketchError."""
        drawing = drawing_from_canvas(value)
        if drawing is None:
            return None
        return self._generate(drawing, "the canvas", seed)

    def from_upload(self, path: str | Path, seed: int | float | None, name: str | None = None) -> Translation:
        """The shoe for an uploaded file, checked before it is decoded (see `check_upload`)."""
        checked = check_upload(path, name, self.limits)
        return self._generate(checked, name or checked.name, seed)

    def canvas_picture(self, path: str | Path, name: str | None = None) -> Path:
        """An upload as the canvas shows it (fitted on white), for drawing over it, as a PNG file."""
        checked = check_upload(path, name, self.limits)
        picture = fit_on_canvas(load_image(checked, name or checked.name, max_side=CANVAS_SIZE), CANVAS_SIZE)
        return self._save(canvas=picture)["canvas"]

    # ----------------------------------------------------------------------------------------------

    def _generate(self, image: Any, label: str, seed: int | float | None) -> Translation:
        started = time.perf_counter()
        prepared = self.model.prepare(image, name=label)
        seed = self._seed(seed)
        with self._lock:
            [done] = self.model.translate([prepared], seeds=None if seed is None else [seed])
        files = self._save(shoe=done.shoe, preview=done.preview)
        return replace(done, files=files, seconds=time.perf_counter() - started)

    def _seed(self, seed: int | float | None) -> int | None:
        if self.model.mode != "train":
            return None
        if seed is None:
            return self.default_seed
        return int(seed) % 2**62  # the page's number box can hold anything; dropout takes this range

    def _save(self, **pictures: Image.Image) -> dict[str, Path]:
        """Each picture as NAME.png in a new folder of this answer's own, written once (atomically)
        and never shared with another answer.

        Why not hand gradio the pictures: gradio saves a returned picture as a file named by its
        content hash and writes it in place, so equal answers (the same sample clicked twice, the
        same sketch and seed) share one file, and a second request rewrites it while the first is
        still being sent: the client gets a cut-off body, the server "Too much/little data for
        declared Content-Length". A path inside gradio's folder is served as it is, never rewritten."""
        folder = self.out_dir / secrets.token_hex(10)
        paths = {name: save_image(picture, folder / f"{name}.png") for name, picture in pictures.items()}
        self._saved += 1
        if self._saved % 50 == 0:
            self.prune()
        return paths

    def prune(self, now: float | None = None) -> int:
        """Remove answers older than `keep_seconds`; returns how many were removed."""
        cutoff = (time.time() if now is None else now) - self.keep_seconds
        removed = 0
        if not self.out_dir.is_dir():
            return removed
        for folder in self.out_dir.iterdir():
            try:
                if folder.is_dir() and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
            except FileNotFoundError:  # another request pruned it first
                continue
        return removed
