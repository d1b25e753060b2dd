"""The offline demo: synthetic shoes -> train pix2pix on the CPU -> evaluate -> a sketch to a shoe.

    python -m edges2shoes_utils demo --out runs/demo        (what `make demo` runs)

pix2pix (Isola et al. 2017, arXiv 1611.07004) trained end to end on a fresh machine with no
download and no GPU: the synthetic mini edges2shoes set (`synthetic`), a small U-Net trained by
the real training loop (`train`), scored on held-out pairs by the real evaluation (`evaluate`,
`report`), and a bundled hand-drawn sketch turned into a shoe by the real inference
(`inference.Sketch2Shoe`). Nothing here is a shortcut that the full-size path does not take; only
the sizes are small.

The learning is real and checked: the held-out L1 of the trained generator is compared with the
same generator before training (the exact initial weights the run started from) and with the
"copy the edges" baseline (the edge map itself as the answer: white everywhere the shoe is not
outlined, which is already right for the whole background). The demo fails (exit code 1) when
the trained generator does not beat both by the margins in `LearningCheck`.

The output folder:

    index.html, report.md   one page linking everything below
    metrics.json            held-out scores, the learning check, budget and timings
    data/                   the synthetic set (train/, val/)
    run/                    the training run: config.json, losses.csv/json/png, samples/, weights
    evaluation/             the evaluation report (untrained vs copy-the-edges vs trained)
    sketches/               the bundled sketches, as the model saw them, and the shoes it made
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import platform
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from ..data import PairsDataset, synthetic
from ..evaluation import ReportFiles, evaluate, write_report
from ..inference import Sketch2Shoe, sample_sketches
from ..nets import UNetGenerator
from ..training import TrainConfig, TrainResult, train
from ..util.atomic import atomic_write_text
from ..util.errors import ConfigError
from ..util.html_page import image_tag, link_tag, write_html_page
from ..util.images import image_grid, save_image
from ..util.tables import Table
from ..util.version import __version__

MARKER = "DEMO.json"  # a folder holding it was written by the demo and may be rewritten by it

# --------------------------------------------------------------------------------------------------
# Budgets: how much data, model and training the demo spends.


@dataclass(frozen=True)
class DemoBudget:
    n_train: int  # synthetic training pairs
    n_val: int  # held-out synthetic pairs the scores are measured on
    image_size: int  # side of the squares (the data is rendered at this size: no resizing)
    ngf: int  # generator width (the paper's is 64)
    ndf: int  # discriminator width (the paper's is 64)
    epochs: int
    batch_size: int
    lambda_l1: float  # the paper's 100 keeps a short GAN run steady; the original notebook used 10
    decay_epochs: int  # learning rate decays linearly over the last epochs: the last weights settle
    sketch_mode: str = "train"  # test-time mode for sketches (inference's default; adapts to drawings)
    eval_mode: str = "train"  # test-time mode for the held-out scores (same, so the numbers describe the pictures)

    @property
    def steps(self) -> int:
        return self.epochs * (self.n_train // self.batch_size)


BUDGETS: dict[str, DemoBudget] = {
    # About 3-4 minutes on 2 quiet CPU cores: 128x128 shoes, a quarter-width U-Net, 1,600 steps of 8.
    "full": DemoBudget(n_train=800, n_val=48, image_size=128, ngf=16, ndf=16, epochs=16, batch_size=8,
                       lambda_l1=100.0, decay_epochs=6),
    # The test's budget: 64x64, the same recipe, ~300 steps. Learns clearly in well under a minute.
    "quick": DemoBudget(n_train=240, n_val=32, image_size=64, ngf=16, ndf=16, epochs=10, batch_size=8,
                        lambda_l1=100.0, decay_epochs=4),
}


@dataclass(frozen=True)
class LearningCheck:
    """What "it learned" means, on held-out pairs: the demo's acceptance test."""

    max_ratio_to_untrained: float = 0.6  # trained L1 <= 60% of the untrained generator's
    must_beat_copy_edges: bool = True  # trained L1 < L1 of answering with the edge map itself

    def passed(self, l1: dict[str, float]) -> bool:
        ok = l1["trained"] <= self.max_ratio_to_untrained * l1["untrained"]
        return ok and (l1["trained"] < l1["copy_edges"] or not self.must_beat_copy_edges)


@dataclass
class DemoResult:
    out_dir: Path
    metrics: dict  # what metrics.json holds
    learned: bool
    index: Path  # index.html
    report: Path  # report.md
    sketch_results: list[Path]


# --------------------------------------------------------------------------------------------------
# The demo.


def run_demo(
    out_dir: str | Path,
    budget: str | DemoBudget = "full",
    *,
    seed: int = 0,  # seeds the data, the weights, the data order and dropout
    threads: int | None = None,  # torch CPU threads (None: torch's default, one per core)
    progress: bool = True,  # tqdm bar while training
    num_workers: int = 0,  # data loader processes; the images are tiny, the main process keeps up
    check: LearningCheck = LearningCheck(),
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Build the synthetic set, train, evaluate, draw shoes from the bundled sketches, write the
    report folder, and return what it found (see the module docstring)."""
    budget_name, budget = _resolve_budget(budget)
    out = prepare_out_dir(Path(out_dir))
    timings: dict[str, float] = {}
    started = time.perf_counter()

    with torch_threads(threads):
        log(f"edges2shoes demo ({budget_name} budget) -> {out}")
        with timed(timings, "data"):
            data_root = synthetic.make_synthetic(
                out / "data", n=budget.n_train, size=budget.image_size, seed=seed, n_val=budget.n_val
            )
        log(f"[1/4] synthetic set: {budget.n_train} train + {budget.n_val} held-out pairs at "
            f"{budget.image_size}x{budget.image_size} in {timings['data']:.1f} s")

        config = _train_config(budget, data_root, out / "run", seed=seed, num_workers=num_workers, progress=progress)
        # The exact weights training starts from: the trainer seeds torch with `seed` and then
        # builds the generator, so doing the same here gives the untrained twin of the result.
        torch.manual_seed(seed)
        untrained = UNetGenerator(config.generator_config())
        log(f"[2/4] training a {budget.ngf}-wide U-Net for {budget.epochs} epochs (~{budget.steps} steps of "
            f"{budget.batch_size}) on the CPU with {torch.get_num_threads()} thread(s)")
        with timed(timings, "train"):
            result = train(config)
        trained = result.generator.cpu().eval()

        with timed(timings, "evaluate"):
            val = PairsDataset(data_root, split="val", image_size=budget.image_size, jitter=False)
            results, report_files = _score_against_baselines(untrained, trained, val, budget, seed, out, data_root)
        l1 = {key: r.summary["l1"] for key, r in zip(("untrained", "copy_edges", "trained"), results)}
        learned = check.passed(l1)
        log(f"[3/4] held-out L1 ({len(val)} pairs, {budget.eval_mode} mode): untrained {l1['untrained']:.3f}, "
            f"copy the edges {l1['copy_edges']:.3f}, trained {l1['trained']:.3f} "
            f"({l1['trained'] / l1['untrained']:.0%} of untrained)")

        with timed(timings, "sketch"):
            sketch_results = draw_sketches(trained, out / "sketches", mode=budget.sketch_mode, seed=seed)
        log(f"[4/4] {len(sketch_results)} bundled sketch(es) turned into shoes in {timings['sketch']:.1f} s")

    timings["total"] = time.perf_counter() - started
    metrics = _metrics(budget_name, budget, seed, result, len(val), results, check, learned, timings)
    files = _demo_files(out, len(result.history), report_files)
    metrics["files"] = {k: Path(v).relative_to(out).as_posix() for k, v in files.items()}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    index = out / "index.html"
    write_html_page(index, "edges2shoes demo", _html_sections(metrics, files, out))
    report = out / "report.md"
    atomic_write_text(report, _markdown(metrics, files, out))

    verdict = "it learned" if learned else "it did NOT learn enough"
    log(f"done in {timings['total']:.0f} s ({verdict}): open {index}")
    return DemoResult(out, metrics, learned, index, report, sketch_results)


def _resolve_budget(budget: str | DemoBudget) -> tuple[str, DemoBudget]:
    """A budget given by name (one of BUDGETS) or as a DemoBudget ("custom")."""
    if not isinstance(budget, str):
        return "custom", budget
    if budget not in BUDGETS:
        raise ConfigError(f"unknown demo budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    return budget, BUDGETS[budget]


def _train_config(budget: DemoBudget, data_root: Path, run_dir: Path, *, seed: int, num_workers: int,
                  progress: bool) -> TrainConfig:
    """The real training loop's config at the demo's size: CPU, fp32, no mid-epoch checkpoints."""
    return TrainConfig(
        data=str(data_root), out=str(run_dir), image_size=budget.image_size,
        epochs=budget.epochs, batch_size=budget.batch_size, lambda_l1=budget.lambda_l1,
        decay_epochs=budget.decay_epochs, ngf=budget.ngf, ndf=budget.ndf, seed=seed,
        device="cpu", precision="fp32", num_workers=num_workers, checkpoint_every=0,
        sample_count=4, sample_mode=budget.eval_mode, progress=progress, log_interval=10,
    )


def _score_against_baselines(untrained: nn.Module, trained: nn.Module, val: PairsDataset, budget: DemoBudget,
                             seed: int, out: Path, data_root: Path) -> tuple[list, ReportFiles]:
    """Held-out scores of the untrained twin, "copy the edges" and the trained generator, and their report."""
    options = dict(mode=budget.eval_mode, seed=seed, fid=False, lpips=False, batch_size=16)
    results = [
        evaluate(untrained, val, name="untrained", **options),
        evaluate(nn.Identity(), val, name="copy the edges", **options),
        evaluate(trained, val, name="trained", **options),
    ]
    report_files = write_report(results, out / "evaluation", dataset=val, data_root=data_root,
                                cell=min(192, 2 * budget.image_size))
    return results, report_files


def _metrics(budget_name: str, budget: DemoBudget, seed: int, result: TrainResult, n_val: int, results: list,
             check: LearningCheck, learned: bool, timings: dict[str, float]) -> dict:
    """metrics.json: held-out scores, the learning check, the budget and the timings."""
    history = result.history
    l1 = {key: r.summary["l1"] for key, r in zip(("untrained", "copy_edges", "trained"), results)}
    images = sum(r["images"] for r in history)
    return {
        "edges2shoes_version": __version__,
        "budget": budget_name,
        "settings": {**dataclasses.asdict(budget), "seed": seed, "steps": result.steps},
        "heldout": {
            "n_pairs": n_val,
            "mode": budget.eval_mode,
            "l1": l1,
            "psnr": {key: r.summary["psnr"] for key, r in zip(l1, results)},
            "ssim": {key: r.summary["ssim"] for key, r in zip(l1, results)},
            "trained_over_untrained": l1["trained"] / l1["untrained"],
            "trained_over_copy_edges": l1["trained"] / l1["copy_edges"],
        },
        "check": {**dataclasses.asdict(check), "passed": learned},
        "final_epoch_losses": {k: history[-1][k] for k in ("g_adversarial", "g_l1", "d_real", "d_fake")} if history else {},
        "training_images_per_s": round(images / timings["train"], 2) if timings["train"] else None,
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
                    "processor": platform.machine()},
        "files": {},
    }


def _demo_files(out: Path, epochs: int, report_files: ReportFiles) -> dict[str, Path]:
    """What the index page links, by title (only files that exist)."""
    files = {
        "loss curve": out / "run" / "losses.png",
        "samples (last epoch)": out / "run" / "samples" / f"epoch_{epochs - 1}.png",
        "evaluation grid (trained)": report_files.grids.get("trained"),
        "untrained vs copy the edges vs trained": report_files.compare,
        "sketches": out / "sketches" / "sketches.png",
        "evaluation report": report_files.index,
        "losses per epoch (CSV)": out / "run" / "losses.csv",
        "generator weights": out / "run" / f"generator_{epochs - 1}.pt",
    }
    return {k: Path(v) for k, v in files.items() if v is not None and Path(v).exists()}


def draw_sketches(generator: nn.Module, folder: Path, *, mode: str, seed: int) -> list[Path]:
    """Every bundled sketch -> (as the model sees it, the generated shoe), one PNG each plus a grid."""
    sketches = sample_sketches()
    if not sketches:
        return []
    model = Sketch2Shoe(generator, mode=mode, seed=seed)
    pairs = model.generate_with_previews(sketches)
    written = []
    for path, (seen, shoe) in zip(sketches, pairs):
        written.append(save_image(image_grid({"Sketch (as the model sees it)": [seen], "Generated": [shoe]}, cell=256),
                                  folder / f"{path.stem}.png"))
    grid = image_grid({"Sketch (as the model sees it)": [p for p, _ in pairs], "Generated": [s for _, s in pairs]}, cell=192)
    save_image(grid, folder / "sketches.png")
    return written


def prepare_out_dir(out: Path) -> Path:
    """Make `out` ready for a demo run. A folder the demo wrote before (it has DEMO.json) is cleared
    of the previous run; any other non-empty folder is refused, so the demo never deletes files it
    did not make."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; pass a folder for --out")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise ConfigError(f"{out} is not empty and was not made by the demo; choose a new or empty --out folder")
        for name in ("run", "evaluation", "sketches"):
            shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MARKER, json.dumps({"made_by": "edges2shoes_utils.demo", "version": __version__}) + "\n")
    return out


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Use `threads` CPU threads inside the block (restored afterwards; None changes nothing)."""
    previous = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def timed(timings: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = time.perf_counter() - start


# --------------------------------------------------------------------------------------------------
# The report page.


def _summary_rows(metrics: dict) -> list[tuple[str, str, str, str]]:
    held = metrics["heldout"]
    names = {"untrained": "untrained generator (its starting weights)", "copy_edges": "copy the edges (baseline)",
             "trained": "trained generator"}
    return [(names[k], f"{held['l1'][k]:.4f}", _fmt(held["psnr"][k]), f"{held['ssim'][k]:.3f}") for k in names]


def _fmt(value: float | None) -> str:
    return "inf" if value is None else f"{value:.2f}"


def _verdict(metrics: dict) -> str:
    held, check = metrics["heldout"], metrics["check"]
    word = "passed" if check["passed"] else "FAILED"
    return (
        f"Learning check {word}: trained L1 is {held['trained_over_untrained']:.0%} of the untrained generator's "
        f"(must be at most {check['max_ratio_to_untrained']:.0%}) and {held['trained_over_copy_edges']:.0%} of "
        "copying the edges (must be below 100%)."
    )


def _markdown(metrics: dict, files: dict[str, Path], out: Path) -> str:
    s, sec = metrics["settings"], metrics["seconds"]
    lines = [
        "# edges2shoes demo",
        "",
        f"pix2pix trained on the CPU on a synthetic edges2shoes set ({s['n_train']} pairs at {s['image_size']}x{s['image_size']}, "
        f"U-Net ngf {s['ngf']}, {s['epochs']} epochs, {s['steps']} steps of {s['batch_size']}, lambda L1 {s['lambda_l1']:g}, "
        f"seed {s['seed']}) in {sec['total']:.0f} s (training {sec['train']:.0f} s, "
        f"{metrics['training_images_per_s']} images/s).",
        "",
        f"## Held-out scores ({metrics['heldout']['n_pairs']} pairs, {metrics['heldout']['mode']} mode)",
        "",
        Table(["", "L1 (lower is better)", "PSNR (dB)", "SSIM"], _summary_rows(metrics), align="<>>>").markdown(),
        "",
        _verdict(metrics),
        "",
        "## Pictures and files",
        "",
    ]
    for label, path in files.items():
        rel = path.relative_to(out).as_posix()
        if path.suffix == ".png":
            lines += [f"### {label}", "", f"![{label}]({rel})", ""]
        else:
            lines.append(f"- [{label}]({rel})")
    lines += ["", "All scores: [metrics.json](metrics.json).", ""]
    return "\n".join(lines)


def _html_sections(metrics: dict, files: dict[str, Path], out: Path) -> list[str]:
    """The body of index.html: settings, held-out scores and the verdict, then pictures and files."""
    e = html.escape
    s, sec = metrics["settings"], metrics["seconds"]
    parts = [
        f"<p>pix2pix trained on the CPU on a synthetic edges2shoes set ({s['n_train']} pairs at "
        f"{s['image_size']}x{s['image_size']}; U-Net ngf {s['ngf']}; {s['epochs']} epochs, {s['steps']} steps of "
        f"{s['batch_size']}; lambda L1 {s['lambda_l1']:g}; seed {s['seed']}) in {sec['total']:.0f} s "
        f"(training {sec['train']:.0f} s, {metrics['training_images_per_s']} images/s).</p>",
        f"<h2>Held-out scores ({metrics['heldout']['n_pairs']} pairs, {e(metrics['heldout']['mode'])} mode)</h2>",
        Table(["", "L1 (lower is better)", "PSNR (dB)", "SSIM"], _summary_rows(metrics)).html(),
        f"<p class='{'ok' if metrics['check']['passed'] else 'bad'}'>{e(_verdict(metrics))}</p>",
        '<p><a href="metrics.json">metrics.json</a></p>',
    ]
    links = []
    for label, path in files.items():
        if path.suffix == ".png":
            parts.append(f"<h2>{e(label)}</h2>" + image_tag(path, out, label))
        else:
            links.append(f"<li>{link_tag(path, out, label)}</li>")
    parts.append(f"<h2>Files</h2><ul>{''.join(links)}</ul>")
    return parts


# --------------------------------------------------------------------------------------------------
# Command line.


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="report folder (default runs/demo)")
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="full",
                        help="full: ~3-5 minutes on 2 cores at 128x128 (default); quick: under a minute at 64x64")
    parser.add_argument("--seed", type=int, default=0, help="seeds data, weights, data order and dropout (default 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: one per core)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(run=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    result = run_demo(args.out, args.budget, seed=args.seed, threads=args.threads, progress=args.progress)
    if not result.learned:
        print("the learning check failed; see " + str(result.index))
        return 1
    return 0
