"""`edges2shoes evaluate`: score one or more generators on a val set and write the report folder."""

from __future__ import annotations

import argparse

from ..data.discovery import resolve_dataset_root
from ..data.pairs import PairsDataset
from ..training.device import PRECISIONS, pick_device
from .modes import MODES
from .report import summary_text, write_report
from .results import is_real_val_set
from .scoring import evaluate_many
from .sources import expand_sources


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="dataset root (holding val/*.jpg); default: discover it as training does")
    parser.add_argument(
        "--weights",
        action="append",
        required=True,
        metavar="SOURCE",
        help="a weights file, a run folder (all its generator_N.pt), 'kaggle', 'pix2pix-official' or 'huggan'; repeat to compare",
    )
    parser.add_argument("--out", required=True, help="report folder (metrics.json, CSVs, pictures, index.html)")
    parser.add_argument("--mode", choices=MODES, default="eval", help="test-time mode (default eval; the official numbers used train)")
    parser.add_argument("--seed", type=int, default=0, help="dropout seed in train mode")
    parser.add_argument("--limit", type=int, help="score only the first N images")
    parser.add_argument("--split", default="val", help="dataset split folder (default val)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="arithmetic of the fast path (default fp32: scores comparable across machines)")
    parser.add_argument("--plain", dest="fast", action="store_false", help="run the generator's own layers, not the fast path")
    parser.add_argument("--no-fid", action="store_true", help="skip FID")
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    parser.add_argument("--offline", action="store_true", help="never download FID/LPIPS backbones; use cached files only")
    parser.add_argument("--keep", type=int, default=4, help="best and worst images shown (by L1)")
    parser.set_defaults(run=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    root = resolve_dataset_root(args.data)
    dataset = PairsDataset(root, split=args.split, image_size=args.image_size, jitter=False)
    sources = expand_sources(args.weights)
    device = pick_device(args.device)
    print(f"evaluating {len(sources)} weights on {len(dataset)} images of {root} ({args.split}), mode {args.mode}, seed {args.seed}")
    results = evaluate_many(
        sources,
        dataset,
        fid=not args.no_fid,
        lpips=not args.no_lpips,
        download=not args.offline,
        device=device,
        mode=args.mode,
        seed=args.seed,
        limit=args.limit,
        batch_size=args.batch_size,
        fast=args.fast,
        precision=args.precision,
        keep=args.keep,
        progress=True,
    )
    files = write_report(results, args.out, dataset=dataset, data_root=root, split=args.split)
    print(summary_text(results, real_val_set=is_real_val_set(dataset, results)))
    for r in results:
        rate = r.n_images / r.generator_seconds if r.generator_seconds else float("nan")
        print(f"{r.name}: {r.n_images} images in {r.seconds:.1f} s ({r.generator_seconds:.1f} s in the generator, {rate:.1f} images/s)")
    print(f"report: {files.index}")
    return 0
