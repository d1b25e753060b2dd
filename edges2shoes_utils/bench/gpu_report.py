"""The Markdown table `bench gpu` writes beside its JSON: one table per section, every row either
with its figures or with the reason it has none, and the T4 prediction the figures are set against.
"""

from __future__ import annotations

from ..util.tables import Table, cell
from .hardware import datasheet_peak
from .train import PAPER_GFLOP_PER_IMAGE, T4_UTILISATION, t4_prediction


def _table(headers: list[str], rows: list[list]) -> list[str]:
    return [Table(headers, rows).markdown(), ""]


def _status(row: dict) -> str:
    return "ok" if row.get("status") == "ok" else cell(row.get("status", "-"))


def render(result: dict) -> str:
    """The whole report as Markdown."""
    machine, sections = result["machine"], result["sections"]
    plan = result["plan"]
    size = f"ngf {plan['ngf']}, {plan['image_size']}x{plan['image_size']}"
    lines = [
        f"# edges2shoes bench gpu: {machine.get('gpu') or machine['device']}",
        "",
        f"{machine['device']}, torch {machine['torch']}, CUDA {machine.get('cuda') or '-'}, "
        f"{machine['cpu_count']} CPU cores ({machine['cpu']}); {'--quick (dry run) ' if plan['quick'] else ''}"
        f"sizes {size}. Took {result['elapsed_s']:.0f} s of a {result['budget_s']:.0f} s budget.",
        "",
    ]
    lines += _gpu_tests(sections["gpu_tests"])
    lines += _train(sections["train"], sections["train_compiled"], machine.get("gpu"))
    lines += _infer(sections["infer"])
    lines += _loader(sections["loader"])
    lines += _torchrun(sections["torchrun"])
    lines += _prediction(sections["train"], plan)
    return "\n".join(lines).rstrip() + "\n"


def _gpu_tests(s: dict) -> list[str]:
    lines = ["## GPU tests (`pytest -m gpu tests/test_gpu.py`)", "", f"Status: {cell(s['status'])}", ""]
    if "passed" in s:
        lines += _table(["passed", "failed", "errors", "skipped", "seconds"],
                        [[s[k] for k in ("passed", "failed", "errors", "skipped")] + [s.get("seconds")]])
        lines += [f"- failing: `{name}`" for name in s.get("failing", [])] + ([""] if s.get("failing") else [])
    return lines


def _train(eager: dict, compiled: dict, gpu: str | None) -> list[str]:
    gflop = eager.get("gflop_per_image")
    lines = ["## Training step (channels_last)", "",
             f"Status: eager {cell(eager['status'])}; compiled {cell(compiled['status'])}. "
             f"{cell(gflop)} GFLOP per image per step (counted); the fp32 rows: {eager.get('fp32_row_math', '-')}. "
             "Peak memory: torch.cuda.max_memory_allocated (weights, Adam state, activations). "
             "Compile s: the first step's time less a steady step's.", ""]
    rows = []
    for row in eager.get("rows", []) + compiled.get("rows", []):
        peak = datasheet_peak(gpu, row["precision"])
        share = row["achieved_tflops"] / peak if peak and "achieved_tflops" in row else None
        rows.append([row["precision"], row["batch"], row["compile"], row.get("images_per_s"),
                     row.get("ms_per_step"), cell(row.get("peak_memory_gib"), 2), row.get("compile_s"),
                     cell(row.get("achieved_tflops"), 2), "-" if share is None else f"{share:.0%}", _status(row)])
    return lines + _table(["precision", "batch", "compile", "images/s", "ms/step", "peak GiB", "compile s",
                           "TFLOP/s", "of datasheet peak", "status"], rows)


def _infer(s: dict) -> list[str]:
    lines = ["## Inference (plain eager fp32 is the yardstick, timed interleaved in the same run)", "",
             f"Status: {cell(s['status'])}. The fast path's time includes the copy of its output to the CPU "
             "(what a user gets); plain eager's output stays on the device. PSNR: fast path against plain fp32.", ""]
    rows = [[r.get("mode"), r.get("batch"), r.get("path"), r.get("precision"),
             cell(r.get("median_ms"), 2), r.get("images_per_s"), cell(r.get("ratio_to_plain"), 3),
             r.get("psnr_db"), _status(r)] for r in s.get("rows", [])]
    return lines + _table(["mode", "batch", "path", "precision", "median ms", "images/s", "x plain", "PSNR dB",
                           "status"], rows)


def _loader(s: dict) -> list[str]:
    step = s.get("fastest_step")
    against = (f"the fastest eager training step: {step['precision']}, batch {step['batch']}, "
               f"{step['images_per_s']:,.1f} images/s" if step else "no training step measured")
    lines = ["## Data loader (training jitter, synthetic JPEG pairs)", "",
             f"Status: {cell(s['status'])}. {s.get('files', '-')} files of {s.get('source_size', '-')}, batch "
             f"{s.get('batch', '-')}, {s.get('cpu_count', '-')} CPU cores. Set against {against}; "
             f"workers needed to keep up (from the 1-worker rate): {cell(s.get('workers_needed_estimate'))}.", ""]
    rows = [[r["workers"], r.get("pairs_per_s"), cell(r.get("x_fastest_step"), 2),
             r.get("keeps_up"), _status(r)] for r in s.get("rows", [])]
    return lines + _table(["workers", "pairs/s", "x fastest step", "keeps up", "status"], rows)


def _torchrun(s: dict) -> list[str]:
    lines = ["## torchrun (the `train` command, two short epochs)", "", f"Status: {cell(s['status'])}", ""]
    if "processes" in s:
        lines += _table(["processes", "process group", "batch per process", "steps", "images/s (epoch 2)",
                         "images/s (epoch 1)", "seconds"],
                        [[s["processes"], s["backend"], s["batch_per_process"],
                          s["steps"], s.get("images_per_s"), s.get("first_epoch_images_per_s"),
                          s.get("seconds")]])
    if s.get("output_tail"):
        lines += ["```", s["output_tail"], "```", ""]
    return lines


def _prediction(train: dict, plan: dict) -> list[str]:
    paper = (plan["ngf"], plan["image_size"]) == (64, 256)
    gflop = train.get("gflop_per_image") if paper and train.get("gflop_per_image") else PAPER_GFLOP_PER_IMAGE
    low, high = T4_UTILISATION
    return ["## The T4 prediction these figures test (`bench train`)", "",
            f"It assumes {low:.0%}-{high:.0%} of the datasheet fp16 peak is sustained; compare the "
            "'of datasheet peak' column above.", "", "```", *t4_prediction(gflop), "```", ""]


__all__ = ["render"]
