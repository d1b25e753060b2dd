"""Evaluation reports: one folder a person can open and a program can read.

`write_report(results, out_dir)` writes, atomically:

    metrics.json        settings (data, mode, seed), per-weights summaries, skipped metrics and why
    per_image.csv       one row per (weights, image): L1, PSNR, SSIM, LPIPS
    comparison.csv      one row per weights: the means, FID, timing
    pictures/grid_*.png      Input | Ground truth | Generated for the first images
    pictures/best_*.png, worst_*.png   the k images with the lowest and highest L1
    pictures/compare.png     several weights side by side on the same inputs (when there are several)
    pictures/curve_*.png     each metric per epoch (when the weights include epochs of a run)
    index.html          all of the above on one page
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..util.atomic import atomic_write_text
from ..util.html_page import image_tag, write_html_page
from ..util.images import image_grid, plot_curves, save_image
from ..util.tables import Table
from ..util.version import __version__
from .results import REFERENCE_FID, EvalResult, is_real_val_set

METRICS: tuple[tuple[str, str, bool], ...] = (
    # key, column title, higher is better
    ("l1", "L1", False),
    ("psnr", "PSNR (dB)", True),
    ("ssim", "SSIM", True),
    ("lpips", "LPIPS", False),
    ("fid", "FID", False),
)
FID_NOTE = (
    "Published figures were measured in train mode (batch statistics, dropout) with MMagic's FID "
    "implementation; this report's FID uses torchmetrics (torch-fidelity Inception weights), so "
    "expect a few points of difference from the implementation alone."
)


@dataclass
class ReportFiles:
    """Paths of everything `write_report` wrote (the notebook shows them inline)."""

    folder: Path
    index: Path
    metrics_json: Path
    per_image_csv: Path
    comparison_csv: Path
    grids: dict[str, Path] = field(default_factory=dict)  # weights name -> picture
    best: dict[str, Path] = field(default_factory=dict)
    worst: dict[str, Path] = field(default_factory=dict)
    compare: Path | None = None
    curves: dict[str, Path] = field(default_factory=dict)  # metric -> plot


# --------------------------------------------------------------------------------------------------
# Tables.


def comparison_rows(results: Sequence[EvalResult]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        info = r.to_dict()
        rows.append(
            {
                "weights": r.name,
                "epoch": r.epoch,
                "source": r.source,
                "n_images": r.n_images,
                **{key: r.summary.get(key) for key, _, _ in METRICS},
                "seconds": info["seconds"],
                "images_per_second": info["images_per_second"],
            }
        )
    return rows


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in row] for row in rows)
    return buffer.getvalue()


def _format(value: Any, key: str) -> str:
    if value is None:
        return "-"
    if key == "psnr":
        return f"{value:.2f}"
    if key == "fid":
        return f"{value:.2f}"
    return f"{value:.4f}"


def summary_text(results: Sequence[EvalResult], real_val_set: bool = False) -> str:
    """A plain-text table of the means (for the terminal and the notebook), with the published FIDs
    beside it when the results cover the real val set."""
    present = [(k, t) for k, t, _ in METRICS if any(r.summary.get(k) is not None for r in results)]
    header = ["weights", "images", *[t for _, t in present]]
    rows = [[r.name, str(r.n_images), *[_format(r.summary.get(k), k) for k, _ in present]] for r in results]
    lines = [Table(header, rows).text(indent="")]
    if results:
        lines.append(f"test-time mode {results[0].mode}, seed {results[0].seed}")
    skipped = {m: reason for r in results for m, reason in r.skipped_metrics.items()}
    lines += [f"{m.upper()} skipped: {reason}" for m, reason in skipped.items()]
    if real_val_set:
        lines.append("Published FIDs on these 200 val images: " + "; ".join(f"{k}: {v}" for k, v in REFERENCE_FID.items()))
        lines.append(FID_NOTE)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Pictures.


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "weights"


def _unique_slugs(results: Sequence[EvalResult]) -> list[str]:
    seen: dict[str, int] = {}
    slugs = []
    for r in results:
        s = slug(r.name)
        seen[s] = seen.get(s, 0) + 1
        slugs.append(s if seen[s] == 1 else f"{s}_{seen[s]}")
    return slugs


def _sample_grid(samples, cell: int):
    return image_grid(
        {
            "Input": [s.edges.float() / 127.5 - 1 for s in samples],
            "Ground truth": [s.photo.float() / 127.5 - 1 for s in samples],
            "Generated": [s.fake.float() / 127.5 - 1 for s in samples],
        },
        cell=cell,
    )


def _compare_grid(results: Sequence[EvalResult], n: int, cell: int):
    """The first `n` images, one column per weights (all results saw the same first images)."""
    first = results[0].samples[:n]
    columns = {
        "Input": [s.edges.float() / 127.5 - 1 for s in first],
        "Ground truth": [s.photo.float() / 127.5 - 1 for s in first],
    }
    for r in results:
        by_index = {s.index: s for s in r.samples}
        if all(s.index in by_index for s in first):
            title = r.name if r.name not in columns else f"{r.name} ({len(columns)})"
            columns[title] = [by_index[s.index].fake.float() / 127.5 - 1 for s in first]
    return image_grid(columns, cell=cell)


def _curves(results: Sequence[EvalResult], folder: Path) -> dict[str, Path]:
    """Each metric per epoch; weights without an epoch (e.g. the official model) are drawn as a flat
    line across the epochs, for comparison."""
    epochs = sorted((r for r in results if r.epoch is not None), key=lambda r: r.epoch)
    if len(epochs) < 2:
        return {}
    x = [r.epoch for r in epochs]
    others = [r for r in results if r.epoch is None]
    plots = {}
    for key, title, higher in METRICS:
        values = [r.summary.get(key) for r in epochs]
        if any(v is None for v in values):
            continue
        series = {f"{title} per epoch": values}
        for r in others:
            if r.summary.get(key) is not None:
                series[r.name] = [r.summary[key]] * len(x)
        better = "higher" if higher else "lower"
        plots[key] = plot_curves(series, folder / f"curve_{key}.png", title=f"{title} ({better} is better)", xlabel="epoch", x=x)
    return plots


# --------------------------------------------------------------------------------------------------
# The report folder.


def write_report(
    results: Sequence[EvalResult],
    out_dir: str | Path,
    *,
    dataset: Any = None,
    data_root: str | Path | None = None,
    split: str = "val",
    cell: int = 192,
) -> ReportFiles:
    """Write the report folder for `results` (one or several weights on one dataset)."""
    if not results:
        raise ValueError("write_report needs at least one result")
    names = [r.name for r in results]
    if len(set(names)) != len(names):
        raise ValueError(f"write_report needs distinct names for the results, got {names}")
    folder = Path(out_dir)
    pictures = folder / "pictures"
    real = is_real_val_set(dataset, results) if dataset is not None else False
    files = ReportFiles(
        folder=folder,
        index=folder / "index.html",
        metrics_json=folder / "metrics.json",
        per_image_csv=folder / "per_image.csv",
        comparison_csv=folder / "comparison.csv",
    )

    for r, s in zip(results, _unique_slugs(results)):
        if r.samples:
            files.grids[r.name] = save_image(_sample_grid(r.samples, cell), pictures / f"grid_{s}.png")
        if r.best:
            files.best[r.name] = save_image(_sample_grid(r.best, cell), pictures / f"best_{s}.png")
        if r.worst:
            files.worst[r.name] = save_image(_sample_grid(r.worst, cell), pictures / f"worst_{s}.png")
    if len(results) > 1 and results[0].samples:
        files.compare = save_image(_compare_grid(results, n=4, cell=128), pictures / "compare.png")
    files.curves = _curves(results, pictures)

    rows = comparison_rows(results)
    atomic_write_text(files.comparison_csv, _csv_text(list(rows[0]), [list(row.values()) for row in rows]))
    atomic_write_text(
        files.per_image_csv,
        _csv_text(
            ["weights", "index", "name", "l1", "psnr", "ssim", "lpips"],
            [[r.name, s.index, s.name, s.l1, s.psnr, s.ssim, s.lpips] for r in results for s in r.scores],
        ),
    )
    skipped = {m: reason for r in results for m, reason in r.skipped_metrics.items()}
    document = {
        "edges2shoes_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data": {"root": str(data_root) if data_root else None, "split": split, "n_images": results[0].n_images},
        "mode": results[0].mode,
        "seed": results[0].seed,
        "metrics_skipped": skipped,
        "real_val_set": real,
        "reference_fid": REFERENCE_FID if real else None,
        "reference_note": FID_NOTE if real else None,
        "results": [r.to_dict() for r in results],
        "comparison": rows,
    }
    atomic_write_text(files.metrics_json, json.dumps(document, indent=2, allow_nan=False) + "\n")
    write_html_page(files.index, "edges2shoes evaluation", _html_sections(results, files, document), max_width=1400)
    _prune_stale_pictures(pictures, files)
    return files


REPORT_PICTURES = ("grid_*.png", "best_*.png", "worst_*.png", "compare.png", "curve_*.png")


def _prune_stale_pictures(pictures: Path, files: ReportFiles) -> None:
    """Remove pictures an earlier report left in this folder (other weights, other epochs), so the
    folder shows one evaluation. Runs last: an interrupted report keeps the previous pictures."""
    keep = {Path(p).resolve() for p in (*files.grids.values(), *files.best.values(), *files.worst.values(),
                                        *files.curves.values(), files.compare) if p is not None}
    for pattern in REPORT_PICTURES:
        for stale in pictures.glob(pattern):
            if stale.resolve() not in keep:
                stale.unlink(missing_ok=True)


def comparison_table_html(results: Sequence[EvalResult]) -> str:
    """The scores as an HTML table, best value of each column in bold (index.html and the notebook)."""
    present = [(k, t, hi) for k, t, hi in METRICS if any(r.summary.get(k) is not None for r in results)]
    rows, bold = [], []
    for row, r in enumerate(results):
        ips = r.to_dict()["images_per_second"]
        rows.append([r.name, r.n_images, *(_format(r.summary.get(key), key) for key, _, _ in present),
                     None if ips is None else f"{ips:.1f}"])
    for column, (key, _, higher) in enumerate(present, start=2):
        values = [r.summary[key] for r in results if r.summary.get(key) is not None]
        best = (max if higher else min)(values)
        bold += [(row, column) for row, r in enumerate(results) if len(results) > 1 and r.summary.get(key) == best]
    return Table(["weights", "images", *(title for _, title, _ in present), "images/s"], rows).html(bold)


def _html_sections(results: Sequence[EvalResult], files: ReportFiles, document: dict[str, Any]) -> list[str]:
    """The body of index.html: settings, the score table, then each weights' pictures."""
    e = html.escape
    folder = files.folder
    parts = [
        f"<p>Data: {e(str(document['data']['root']))} ({e(document['data']['split'])}, "
        f"{document['data']['n_images']} images). Test-time mode: <b>{e(document['mode'])}</b>, seed {document['seed']}. "
        f"edges2shoes {e(document['edges2shoes_version'])}, {e(document['created'])}.</p>",
        '<p><a href="metrics.json">metrics.json</a> · <a href="comparison.csv">comparison.csv</a> · '
        '<a href="per_image.csv">per_image.csv</a></p>',
        "<h2>Scores</h2>" + comparison_table_html(results),
        "<p class='note'>L1 on the [-1, 1] scale of the training loss; PSNR and SSIM on 8-bit images; "
        "lower is better for L1, LPIPS and FID.</p>",
    ]
    if document["metrics_skipped"]:
        items = "".join(f"<li><b>{e(m.upper())}</b>: {e(reason)}</li>" for m, reason in document["metrics_skipped"].items())
        parts.append(f"<h3>Metrics not computed</h3><ul>{items}</ul>")
    if document["reference_fid"]:
        items = "".join(f"<li>{e(k)}: FID {v}</li>" for k, v in document["reference_fid"].items())
        parts.append(f"<h3>Published figures on these 200 val images</h3><ul>{items}</ul><p class='note'>{e(FID_NOTE)}</p>")
    if files.curves:
        plots = "".join(image_tag(p, folder, f"{k} per epoch") for k, p in files.curves.items())
        parts.append(f"<h2>Per epoch</h2><div class='curves'>{plots}</div>")
    if files.compare:
        parts.append("<h2>Side by side</h2>" + image_tag(files.compare, folder, "comparison"))
    for r in results:
        parts.append(f"<h2>{e(r.name)}</h2>")
        if r.source:
            parts.append(f"<p class='note'>{e(r.source)}</p>")
        if r.skipped_files:
            parts.append(f"<p>{len(r.skipped_files)} unreadable file(s) skipped: {e('; '.join(r.skipped_files[:5]))}</p>")
        parts.append("<h3>First images</h3>" + image_tag(files.grids.get(r.name), folder, f"{r.name} grid"))
        for title, samples, path in (("Best", r.best, files.best.get(r.name)), ("Worst", r.worst, files.worst.get(r.name))):
            names = ", ".join(f"{s.name} (L1 {s.l1:.3f})" for s in samples)
            parts.append(f"<h3>{title} {len(samples)} by L1</h3><p class='note'>{e(names)}</p>" + image_tag(path, folder, f"{r.name} {title.lower()}"))
    return parts
