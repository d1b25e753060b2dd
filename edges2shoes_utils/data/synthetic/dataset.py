"""The synthetic pairs and the set on disk: one pair per (seed, split, index), written as A|B JPEGs
in the real set's layout, and the `make-synthetic` command."""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ...util.atomic import atomic_write_text
from ...util.errors import ConfigError, DataError
from ...util.images import save_image
from .edges import extract_edges
from .kinds import BUILDERS, KINDS
from .photo import render_photo

MARKER = "SYNTHETIC.json"  # written beside train/ and val/; only such folders are ever replaced
JPEG_QUALITY = 92



@dataclass(frozen=True)
class Pair:
    edges: Image.Image  # S x S RGB, thin dark lines on white
    photo: Image.Image  # S x S RGB
    kind: str

    def side_by_side(self) -> Image.Image:
        """The dataset's A|B image: edges LEFT, photo RIGHT."""
        s = self.photo.width
        ab = Image.new("RGB", (2 * s, s))
        ab.paste(self.edges, (0, 0))
        ab.paste(self.photo, (s, 0))
        return ab


SPLIT_IDS = {"train": 0, "val": 1, "preview": 2}


def make_pair(seed: int, index: int, size: int = 256, split: str = "train", kind: str | None = None) -> Pair:
    """Pair number `index` of `split` for `seed` (deterministic; independent of every other pair)."""
    rng = np.random.default_rng([int(seed), SPLIT_IDS[split], int(index)])
    chosen = kind if kind is not None else KINDS[int(rng.integers(len(KINDS)))]
    if chosen not in BUILDERS:
        raise ConfigError(f"unknown shoe kind {chosen!r}; choose one of {', '.join(KINDS)}")
    shoe = BUILDERS[chosen](rng)
    photo = render_photo(shoe, rng, size)
    edges = extract_edges(photo)
    return Pair(Image.fromarray(edges).convert("RGB"), Image.fromarray(photo), chosen)


def _check(n: int, n_val: int, size: int) -> None:
    if n < 1:
        raise ConfigError(f"--n must be at least 1 (train pairs), got {n}")
    if n_val < 1:
        raise ConfigError(f"--n-val must be at least 1 (val pairs), got {n_val}")
    if not 32 <= size <= 1024:
        raise ConfigError(f"--size must be between 32 and 1024 pixels, got {size}")


def default_n_val(n: int) -> int:
    """Val pairs when not given: a tenth of the train pairs, at least 1, at most 200 (the real set's 200)."""
    return max(1, min(200, n // 10))


def encode_pair(job: tuple[int, int, int, str]) -> bytes:
    """The JPEG bytes of one A|B file; `job` is (seed, index, size, split). Top-level so that worker
    processes can run it."""
    seed, index, size, split = job
    buffer = io.BytesIO()
    make_pair(seed, index, size, split).side_by_side().save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def make_synthetic(
    out_dir: str | Path,
    n: int = 64,
    size: int = 256,
    seed: int = 0,
    n_val: int | None = None,
    workers: int = 1,
    progress: bool = False,
) -> Path:
    """Write `n` train and `n_val` val pairs (default `default_n_val(n)`) under `out_dir` and return it.

    The files do not depend on `workers` (each pair depends only on seed, split and index). The
    splits are written into a staging folder and moved into place only when complete, so an
    interrupted run never leaves a half-written set. An existing `train/` or `val/` is replaced
    only if `out_dir` was made by this function (it holds `SYNTHETIC.json`), so a real dataset can
    never be overwritten by mistake.
    """
    n_val = default_n_val(n) if n_val is None else n_val
    _check(n, n_val, size)
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    out = Path(out_dir)
    marker = out / MARKER
    existing = [out / s for s in ("train", "val") if (out / s).exists()]
    if existing and not marker.exists():
        raise DataError(f"{out} already holds {', '.join(p.name + '/' for p in existing)} not made by "
                        f"make-synthetic; choose an empty --out folder")
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(seed, i, size, split) for split, count in (("train", n), ("val", n_val)) for i in range(1, count + 1)]
    staging = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=out))
    pool = None
    try:
        for split in ("train", "val"):
            (staging / split).mkdir()
        if workers > 1:  # spawn, not fork: the parent may hold torch's thread pools
            pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)))
            results: Iterable[bytes] = pool.imap(encode_pair, jobs, chunksize=8)
        else:
            results = map(encode_pair, jobs)
        bar = tqdm(total=len(jobs), unit="pair", desc="make-synthetic", disable=None if progress else True)
        for (_, index, _, split), jpeg in zip(jobs, results):
            (staging / split / f"{index}_AB.jpg").write_bytes(jpeg)
            bar.update()
        bar.close()
        info = {"generator": "edges2shoes_utils.synthetic", "seed": seed, "size": size, "train": n, "val": n_val,
                "layout": "A|B: edges left, photo right", "kinds": list(KINDS)}
        atomic_write_text(marker, json.dumps(info, indent=2) + "\n")  # claims the folder before the move
        for split in ("train", "val"):
            if (out / split).exists():
                shutil.rmtree(out / split)
            (staging / split).rename(out / split)
    finally:
        if pool is not None:
            pool.terminate()
        shutil.rmtree(staging, ignore_errors=True)
    return out


def preview(size: int = 256, seed: int = 0, kinds: Sequence[str] = KINDS, per_kind: int = 1) -> Image.Image:
    """A contact sheet of pairs (edges | photo), one row per pair, a few of each kind, for the README."""
    pairs = [make_pair(seed, i, size, "preview", kind) for kind in kinds for i in range(per_kind)]
    pad = max(2, size // 64)
    columns = 2 if len(pairs) > 3 else 1
    rows = math.ceil(len(pairs) / columns)
    sheet = Image.new("RGB", (columns * (2 * size + pad) + pad, rows * (size + pad) + pad), (200, 200, 200))
    for k, pair in enumerate(pairs):
        r, c = divmod(k, columns)
        sheet.paste(pair.side_by_side(), (pad + c * (2 * size + pad), pad + r * (size + pad)))
    return sheet


# --------------------------------------------------------------------------------------------------
# Command line: python -m edges2shoes_utils make-synthetic --out DIR --n N --size S --seed K


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="folder to write train/ and val/ into")
    parser.add_argument("--n", type=int, default=64, help="number of train pairs (default 64)")
    parser.add_argument("--n-val", type=int, default=None,
                        help="number of val pairs (default: n/10, at least 1, at most 200)")
    parser.add_argument("--size", type=int, default=256, help="side S of each square; files are 2S x S (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes to render with (default 1; the files do not depend on it)")
    parser.add_argument("--preview", type=Path, default=None,
                        help="also write a contact sheet of one pair per shoe kind to this PNG")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    n_val = default_n_val(args.n) if args.n_val is None else args.n_val
    _check(args.n, n_val, args.size)
    start, cpu = time.perf_counter(), time.process_time()
    out = make_synthetic(args.out, n=args.n, size=args.size, seed=args.seed, n_val=n_val, workers=args.workers,
                         progress=args.n + n_val >= 200)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rate = f"{(args.n + n_val) / max(seconds, 1e-9):.0f} pairs/s"
    if args.workers == 1:  # CPU time shows the one-core speed even when the machine is busy
        rate += f", {(args.n + n_val) / max(cpu, 1e-9):.0f} per CPU-second"
    print(f"wrote {args.n} train + {n_val} val pairs ({2 * args.size}x{args.size}, edges left) to {out} "
          f"in {seconds:.1f} s ({rate})")
    if args.preview is not None:
        save_image(preview(args.size, args.seed), args.preview)
        print(f"preview: {args.preview}")
    return 0
