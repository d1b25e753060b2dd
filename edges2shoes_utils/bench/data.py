"""`python -m edges2shoes_utils bench data`: pairs/s per loader worker, with the training jitter.

One DataLoader worker is one process running `PairsDataset.__getitem__` on one thread, so the
per-worker rate is measured the same way: in this process, torch limited to one thread, over 512x256
A|B JPEGs (the real set's format), with the paper's jitter (resize 286, random crop 256, random
flip). For comparison it also times a plain pipeline (decode, split, bicubic resize of each half to
286, crop, flip, tensor conversion), and, with `--workers K`, a real multi-process DataLoader.

Without `--data` it first writes a synthetic set of 512x256 JPEGs to a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..data import PairsDataset, jitter_load_size, make_dataloader, make_synthetic
from ..util.tables import Table, cell
from .figures import Report, machine, write_figures


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset root with train/ (default: a temporary synthetic set)")
    parser.add_argument("--pairs", type=int, default=800, help="pairs to time per measurement (default 800)")
    parser.add_argument("--files", type=int, default=200,
                        help="synthetic files to write when no --data is given (default 200)")
    parser.add_argument("--image-size", type=int, default=256, help="model input size (default 256)")
    parser.add_argument("--workers", type=int, default=0,
                        help="also time a DataLoader with this many worker processes (default 0: skip)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size for the DataLoader timing")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain-pipeline comparison")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")


def plain_pipeline(path: Path, image_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The straightforward way, for comparison: full decode, bicubic resize of each half to 286,
    random crop, random flip, conversion of each half separately."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    load = jitter_load_size(image_size)
    x, y = np.random.randint(0, load - image_size + 1, 2)
    flip = np.random.rand() < 0.5
    out = []
    for box in ((0, 0, w // 2, h), (w // 2, 0, w, h)):
        half = image.crop(box).resize((load, load), Image.Resampling.BICUBIC)
        half = half.crop((x, y, x + image_size, y + image_size))
        if flip:
            half = half.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        tensor = torch.from_numpy(np.array(half)).permute(2, 0, 1).float() / 127.5 - 1
        out.append(tensor)
    return out[0], out[1]


def _time(fetch: Callable[[int], object], count: int, n: int) -> dict[str, float]:
    for i in range(min(count, 20)):  # warm-up: page cache, lazy imports
        fetch(i % n)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        fetch(i % n)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"pairs_per_s": count / wall, "pairs_per_cpu_s": count / max(cpu, 1e-9), "ms_per_pair": 1e3 * wall / count}


def time_loader(dataset: PairsDataset, workers: int, batch_size: int, count: int) -> dict[str, float]:
    loader = make_dataloader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True)
    seen, start = 0, None
    while seen < count:
        for batch in loader:
            if start is None:  # the first batch pays for starting the workers
                start = time.perf_counter()
                continue
            seen += batch.edges.shape[0]
            if seen >= count:
                break
    seconds = time.perf_counter() - start  # type: ignore[operator]
    return {"workers": workers, "pairs_per_s": seen / seconds, "pairs_per_s_per_worker": seen / seconds / max(workers, 1)}


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)  # as in a DataLoader worker
    with tempfile.TemporaryDirectory(prefix="edges2shoes-bench-data-") as tmp:
        root = args.data
        if root is None:
            print(f"writing {args.files} synthetic 512x256 pairs to a temporary folder ...")
            root = make_synthetic(Path(tmp) / "synthetic", n=args.files, size=256, seed=0, n_val=1)
        dataset = PairsDataset(root, "train", image_size=args.image_size, jitter=True)
        n = len(dataset)
        with Image.open(dataset.files[0]) as first:
            source = f"{first.width}x{first.height}"
        torch.manual_seed(0)
        np.random.seed(0)
        results: dict = {
            "benchmark": "data", **machine(), "data": str(root) if args.data else "a synthetic set",
            "files": n, "source_size": source, "image_size": args.image_size, "pairs_timed": args.pairs,
            "ours": _time(lambda i: dataset[i], args.pairs, n),
        }
        if not args.no_baseline:
            results["plain"] = _time(lambda i: plain_pipeline(dataset.files[i], args.image_size), args.pairs, n)
        if args.workers > 0:
            results["loader"] = time_loader(dataset, args.workers, args.batch_size, args.pairs)

    print(report(results).text(results))
    if args.json is not None:
        write_figures(args.json, results, args)
    return 0


def report(result: dict) -> Report:
    """Pairs/s of each pipeline in one process on one thread, and of the multi-process loader if timed."""
    title = (f"bench data: {result['files']} files of {result['source_size']} from {result['data']}, "
             f"training jitter to {result['image_size']}, {result['pairs_timed']} pairs per figure")
    rows: list[list[object]] = []
    for key, label in (("ours", "PairsDataset (per worker)"), ("plain", "plain decode+resize+crop")):
        if key in result:
            r = result[key]
            rows.append([label, f"{r['pairs_per_s']:.0f}", f"{r['pairs_per_cpu_s']:.0f}", cell(r["ms_per_pair"], 2)])
    if "loader" in result:
        r = result["loader"]
        rows.append([f"DataLoader, {r['workers']} workers ({r['pairs_per_s_per_worker']:.0f} pairs/s per worker)",
                     f"{r['pairs_per_s']:.0f}", None, None])
    table = Table(["pipeline", "pairs/s", "pairs/cpu-s", "ms/pair"], rows)
    notes = ["pairs/cpu-s counts only this process's CPU time: closer to a quiet machine's figure when the "
             "machine is busy"]
    return Report(title, [table], notes)
