"""edges2shoes pairs: finding the data, reading A|B images, the paper's jitter, a robust loader.

The edges2shoes set (Isola et al. 2017, arXiv 1611.07004) stores each training pair as one JPEG of
two squares side by side, the edge map on the LEFT and the photo on the RIGHT (`ROOT/train/1_AB.jpg`
... 49,825 files, `ROOT/val/` 200 files, 512x256 each). Direction AtoB (edges -> photo) is the task;
BtoA is available.

Training uses the paper's random jitter, applied identically to both halves: resize to 286, random
crop to 256, random horizontal flip (286/256 scale with the image size). The resize is bilinear,
as in the paper's Torch code. Evaluation only resizes to the model size.

Bad files never end a long run: `make_dataloader` skips an unreadable, truncated, non-2:1 or
oversized image, logs it, lists it in the batch's `skipped` field and in `loader.skipped` for the
epoch; with `strict=True` it stops instead, with the path and the reason. Images in other modes
(grayscale, CMYK, palette, RGBA, 16-bit) are converted to RGB.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, Sampler

from ..util.errors import DataError, Skipped

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
SPLITS = ("train", "val", "test")
LOAD_SIZE_RATIO = 286 / 256  # the paper's jitter: resize to 286, crop 256
MAX_PAIR_PIXELS = 8192 * 4096  # larger headers are treated as decompression bombs, never decoded

KAGGLE_HANDLE = "balraj98/edges2shoes-dataset/versions/1"  # pinned: works offline once cached
KAGGLE_INPUT = Path("/kaggle/input")
ENV_VAR = "EDGES2SHOES_DATA"

# --------------------------------------------------------------------------------------------------
# Reading one A|B image: every failure becomes a DataError naming the file and the reason.


def numeric_key(name: str) -> tuple:
    """Sort key that orders `2_AB.jpg` before `10_AB.jpg` (runs of digits compare as numbers)."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p) + ((2, 0, name),)


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder` (hidden files skipped), in numeric-aware order."""
    with os.scandir(folder) as entries:
        names = [e.name for e in entries
                 if not e.name.startswith(".") and Path(e.name).suffix.lower() in IMAGE_SUFFIXES and e.is_file()]
    return [folder / name for name in sorted(names, key=numeric_key)]


def jitter_load_size(image_size: int) -> int:
    """The resize target before the random crop: 286 for 256, scaled for other sizes."""
    return int(round(image_size * LOAD_SIZE_RATIO))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB: transparency over white (the dataset's background), 16- and
    32-bit values scaled down rather than clipped, CMYK and palettes converted."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        gray = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _decode(path: Path, target: int | None) -> Image.Image:
    """The decoding itself; `load_pair_image` turns its exceptions into DataErrors."""
    image: Image.Image | None = None
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
        width, height = image.size
        if width * height > MAX_PAIR_PIXELS:
            raise DataError(f"{path}: {width}x{height} pixels is implausibly large for an A|B pair "
                            f"(limit {MAX_PAIR_PIXELS:,}); refusing to decode a possible decompression bomb")
        if width != 2 * height:
            raise DataError(f"{path}: {width}x{height} is not an A|B pair (expected width = 2 x height)")
        if target is not None and image.format == "JPEG" and image.mode in ("RGB", "L", "CMYK"):
            image.draft(image.mode, (2 * target, target))
        image.load()  # reads everything and closes the file
        return to_rgb(image)
    except BaseException:
        if image is not None:
            image.close()
        raise


def load_pair_image(path: Path, target: int | None = None) -> Image.Image:
    """Open and decode one A|B file as RGB, checking it is a 2:1 pair of sane size.

    `target` is the side the halves will be resized to; for JPEGs the decoder may then skip
    detail (draft mode: DCT scaling by 1/2, 1/4 or 1/8), which is much faster for small models.
    Raises DataError("path: reason") for any file that cannot be used.
    """
    try:
        return _decode(path, target)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DataError(f"{path}: refusing to decode a possible decompression bomb ({error})") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image (unrecognised file format)") from None
    except FileNotFoundError:
        raise DataError(f"{path}: file disappeared while reading") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # truncated or corrupt data
        raise DataError(f"{path}: corrupt or truncated image ({error})") from None


# --------------------------------------------------------------------------------------------------
# The dataset.


class PairsDataset(Dataset):
    """edges2shoes A|B pairs from `root/split/`, as (input, target) float tensors (3, S, S) in [-1, 1].

    With direction "AtoB" (the default) input = edges (LEFT half), target = photo (RIGHT half);
    "BtoA" swaps them. `jitter` (default: on for train, off otherwise) applies the paper's random
    resize-crop-flip identically to both halves; without it the halves are just resized to
    `image_size`. Random numbers come from torch's global generator, which DataLoader seeds per
    worker, so runs are reproducible under `torch.manual_seed`.

    `dataset[i]` raises DataError for a bad file; the loader from `make_dataloader` skips it
    instead (unless `strict`). A missing or empty split raises DataError at once.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        image_size: int = 256,
        jitter: bool | None = None,
        direction: str = "AtoB",
        strict: bool = False,
    ) -> None:
        if direction not in ("AtoB", "BtoA"):
            raise DataError(f"direction must be 'AtoB' or 'BtoA', not {direction!r}")
        if image_size < 8:
            raise DataError(f"image_size must be at least 8 pixels, got {image_size}")
        self.root = Path(root)
        self.split = split
        self.folder = self.root / split
        self.image_size = int(image_size)
        self.jitter = (split == "train") if jitter is None else bool(jitter)
        self.load_size = jitter_load_size(self.image_size) if self.jitter else self.image_size
        self.direction = direction
        self.strict = strict
        if not self.folder.is_dir():
            found = sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
            hint = f" (it has: {', '.join(found)})" if found else ""
            raise DataError(f"no {split!r} split: {self.folder} is not a folder{hint}")
        self.files = list_images(self.folder)
        if not self.files:
            raise DataError(f"the {split!r} split is empty: no image files in {self.folder}")

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return (f"PairsDataset({str(self.root)!r}, split={self.split!r}, n={len(self)}, "
                f"image_size={self.image_size}, jitter={self.jitter}, direction={self.direction!r})")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path = self.files[index]
        image = load_pair_image(path, self.load_size)
        left, right = self._halves(image)
        return (left, right) if self.direction == "AtoB" else (right, left)

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """The DataLoader's batched fetch: bad files come back as `Skipped` markers, not exceptions,
        so one unreadable JPEG costs one sample, not the epoch (the loader decides what to do)."""
        items: list[Any] = []
        for index in indices:
            try:
                items.append(self[index])
            except DataError as error:
                items.append(Skipped(str(self.files[index]), str(error)))
        return items

    def _halves(self, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """Split, resize (with the jitter: random crop window and flip shared by both halves) and
        convert to tensors in [-1, 1]."""
        width = image.width
        side = min(image.height, width // 2)  # draft decoding may round an odd width up by one
        size, load = self.image_size, self.load_size
        boxes = [(0, 0, side, side), (width - side, 0, width, side)]
        flip = False
        if self.jitter:
            # resizing side -> load and cropping size x size at (x, y) is the same as resizing only
            # the source window that maps onto the crop: one resize per half, no wasted pixels
            x, y = (int(v) for v in torch.randint(0, load - size + 1, (2,)))
            flip = bool(torch.rand(()) < 0.5)
            scale = side / load
            window = (x * scale, y * scale, (x + size) * scale, (y + size) * scale)
            halves = [image.crop(box).resize((size, size), Image.Resampling.BILINEAR, box=window)
                      for box in boxes]
        elif side == size:
            halves = [image.crop(box) for box in boxes]
        else:
            halves = [image.crop(box).resize((size, size), Image.Resampling.BILINEAR) for box in boxes]
        pixels = np.stack([np.asarray(h) for h in halves])  # (2, S, S, 3) uint8
        tensor = torch.from_numpy(pixels).permute(0, 3, 1, 2)
        if flip:
            tensor = tensor.flip(3)
        tensor = tensor.float().div_(127.5).sub_(1.0)
        return tensor[0], tensor[1]


# --------------------------------------------------------------------------------------------------
# Loading: batches that carry the names of the files they had to skip.


class PairBatch(NamedTuple):
    edges: torch.Tensor  # (B, 3, S, S) input images (edges for AtoB)
    photo: torch.Tensor  # (B, 3, S, S) target images (photos for AtoB)
    skipped: list[str]  # "path: reason" for each bad file dropped since the previous batch


def collate_pairs(items: Sequence[Any]) -> PairBatch:
    """Stack the good pairs of a batch; keep the reasons for the bad ones."""
    good = [item for item in items if not isinstance(item, Skipped)]
    skipped = [item.reason for item in items if isinstance(item, Skipped)]  # the reason names the file
    if not good:
        empty = torch.empty(0)
        return PairBatch(empty, empty, skipped)
    return PairBatch(torch.stack([g[0] for g in good]), torch.stack([g[1] for g in good]), skipped)


class PairLoader(DataLoader):
    """A DataLoader of PairBatch that skips bad files (or stops on them when `strict`).

    Batches are never empty: files skipped in a batch that had nothing left are reported with the
    next batch. `loader.skipped` lists every file skipped in the current (or last) epoch, for the
    end-of-epoch report; a warning is logged for each file and a summary at the end of the epoch.
    """

    def __init__(self, *args: Any, strict: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strict = strict
        self.skipped: list[str] = []

    def __iter__(self) -> Iterator[PairBatch]:  # type: ignore[override]
        self.skipped = []
        pending: list[str] = []
        for batch in super().__iter__():
            if batch.skipped:
                if self.strict:
                    raise DataError(batch.skipped[0])
                for reason in batch.skipped:
                    log.warning("skipping bad file %s", reason)
                self.skipped.extend(batch.skipped)
                pending.extend(batch.skipped)
            if batch.edges.shape[0] == 0:
                continue
            yield PairBatch(batch.edges, batch.photo, pending)
            pending = []
        if self.skipped:
            log.warning("skipped %d bad file(s) this epoch", len(self.skipped))


def default_num_workers(processes: int = 1) -> int:
    """Loader processes for each of `processes` training processes on this machine.

    At most 4 (more rarely helps a 256x256 JPEG pipeline), never more than this process's share of
    the cores, and one core stays with the training loop on machines with more than two cores.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cores // max(1, processes) - (1 if cores > 2 else 0)))


def make_dataloader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int | None = None,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    strict: bool | None = None,
    generator: torch.Generator | None = None,
    pin_memory: bool | None = None,
) -> PairLoader:
    """A loader of `PairBatch(edges, photo, skipped)` over a PairsDataset (or a Subset of one).

    `num_workers` defaults to `default_num_workers()`; workers persist between epochs. Memory is
    pinned when CUDA is available. Pass a `sampler` (e.g. DistributedSampler under DDP) instead of
    `shuffle`. `strict` defaults to the dataset's own setting.
    """
    workers = default_num_workers() if num_workers is None else int(num_workers)
    if strict is None:
        strict = bool(getattr(dataset, "strict", getattr(getattr(dataset, "dataset", None), "strict", False)))
    return PairLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_pairs,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        drop_last=drop_last,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        generator=generator,
        strict=strict,
    )


# --------------------------------------------------------------------------------------------------
# Finding the data: explicit path, $EDGES2SHOES_DATA, an attached Kaggle input, then kagglehub.


def _has_images(folder: Path) -> bool:
    """True if `folder` holds at least one image file (stops at the first: folders can be huge)."""
    try:
        with os.scandir(folder) as entries:
            return any(Path(e.name).suffix.lower() in IMAGE_SUFFIXES and not e.name.startswith(".")
                       for e in entries)
    except OSError:
        return False


def is_dataset_root(folder: Path, need_both: bool = True) -> bool:
    """A folder with `train/` and `val/` of images (or either one when `need_both` is False)."""
    found = [_has_images(folder / split) for split in ("train", "val")]
    return all(found) if need_both else any(found)


def find_dataset_root(search_root: Path, max_depth: int = 4) -> Path | None:
    """The first folder under `search_root` (breadth first, sorted, names with "edges2shoes" or
    "shoe" preferred) that has train/ and val/ of images; None if there is none."""
    if not search_root.is_dir():
        return None
    if is_dataset_root(search_root):
        return search_root
    level = [search_root]
    for _ in range(max_depth):
        children: list[Path] = []
        for folder in level:
            try:
                with os.scandir(folder) as entries:
                    subdirs = [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")
                               and e.name not in SPLITS]
            except OSError:
                continue
            children.extend(sorted(subdirs, key=lambda p: numeric_key(p.name)))
        matches = [c for c in children if is_dataset_root(c)]
        if matches:
            preferred = [m for m in matches if "shoe" in str(m.relative_to(search_root)).lower()]
            return (preferred or matches)[0]
        level = children
    return None


def _kagglehub_download(handle: str) -> str:
    """Download (or reuse the cached copy of) a Kaggle dataset; kagglehub is imported only here."""
    import kagglehub

    return kagglehub.dataset_download(handle)


def _explicit(path: Path, what: str) -> Path:
    """Check a user-given dataset folder; accept its parent or a nested download folder too."""
    path = path.expanduser()
    if not path.is_dir():
        raise DataError(f"{what} {path} is not a folder; it should hold train/ and val/ of A|B images")
    if is_dataset_root(path, need_both=False):
        return path
    nested = find_dataset_root(path, max_depth=3)
    if nested is not None:
        return nested
    raise DataError(f"{what} {path} has no train/ or val/ folder of images (A|B JPEGs, edges left)")


def resolve_dataset_root(
    path: str | os.PathLike | None = None,
    *,
    downloader: Callable[[str], str | os.PathLike] | None = None,
    kaggle_input: str | os.PathLike | None = None,
    handle: str = KAGGLE_HANDLE,
) -> Path:
    """Where the edges2shoes data is, in this order:

    1. `path`, when given;
    2. the environment variable EDGES2SHOES_DATA;
    3. inside Kaggle, an attached input under /kaggle/input (`kaggle_input` for tests) that has
       train/ and val/ of images (searched for, not assumed at a fixed name);
    4. `kagglehub.dataset_download(handle)` (pinned version, cached; `downloader` replaces it).

    Raises one DataError saying what to do when none of these works.
    """
    if path is not None:
        return _explicit(Path(path), "dataset folder")
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _explicit(Path(env), f"{ENV_VAR}=")
    search = Path(kaggle_input) if kaggle_input is not None else KAGGLE_INPUT
    found = find_dataset_root(search)
    if found is not None:
        log.info("using the Kaggle input %s", found)
        return found
    download = downloader or _kagglehub_download
    try:
        downloaded = Path(download(handle))
    except (Exception, SystemExit) as error:  # kaggle tools may even call sys.exit without credentials
        reason = f"{type(error).__name__}: {error}"
        raise DataError(_NOT_FOUND.format(handle=handle, env=ENV_VAR, reason=reason)) from None
    found = find_dataset_root(downloaded) if downloaded.is_dir() else None
    if found is None:
        raise DataError(f"the download of {handle} at {downloaded} has no train/ and val/ folders of images")
    return found


_NOT_FOUND = """no edges2shoes data found, and downloading {handle} failed ({reason}).
Do one of these:
  - on Kaggle: Add Data -> search "edges2shoes" (balraj98/edges2shoes-dataset) and attach it;
  - point to a copy on disk: pass the folder (e.g. --data DIR) or set {env}=DIR
    (DIR holds train/ and val/ of A|B JPEGs, edges on the left);
  - log in to Kaggle so it can be downloaded (about 2 GB): kagglehub.login(), or put kaggle.json
    in ~/.kaggle/, or set KAGGLE_USERNAME and KAGGLE_KEY;
  - or try everything offline on a synthetic set:
    python -m edges2shoes_utils make-synthetic --out data/synthetic --n 256"""


__all__ = [
    "PairsDataset",
    "PairBatch",
    "PairLoader",
    "Skipped",
    "make_dataloader",
    "collate_pairs",
    "resolve_dataset_root",
    "find_dataset_root",
    "load_pair_image",
    "to_rgb",
    "numeric_key",
    "jitter_load_size",
    "default_num_workers",
    "KAGGLE_HANDLE",
    "ENV_VAR",
]
