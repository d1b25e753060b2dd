"""`edges2shoes bench gpu`: the one prepared GPU command, proven on the CPU.

The dry run (`--device cpu --quick`) goes through every section on tiny sizes, in a subprocess where
kagglehub, onnx, gradio, huggingface_hub, the metrics packages and OpenCV cannot be imported (nor in
the pytest and torchrun processes it starts), and must leave a JSON with every section's figures or
the reason it has none, plus the Markdown table. The smaller tests pin the pieces: the budget, the guards that turn
a failure into a row, the pytest counts, and the skip that keeps `bench all` green without a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from edges2shoes_utils.apps.cli import main
from edges2shoes_utils.bench import gpu_launch
from edges2shoes_utils.bench.gpu import JSON_NAME, MARKDOWN_NAME, SECTIONS
from edges2shoes_utils.bench.gpu_plan import NOT_RUN_BUDGET, Budget, RunContext, make_plan
from edges2shoes_utils.bench.hardware import datasheet_peak
from edges2shoes_utils.bench.gpu_sections import budgeted_rows, guarded, section_status

REPO = Path(__file__).resolve().parents[1]
# The issue's optional packages, plus what the GPU machine's bare Python lacks (OpenCV, the notebook widgets).
OPTIONAL = ("kagglehub", "onnx", "onnxruntime", "gradio", "gradio_client", "huggingface_hub", "torchmetrics",
            "torch_fidelity", "cv2", "ipywidgets", "IPython")
BLOCKER = f"""
import sys
from importlib.machinery import PathFinder

HIDDEN = frozenset({sorted(OPTIONAL)!r})


class PathFinderWithoutOptional(PathFinder):
    \"\"\"As if the optional packages were not installed: not found (importlib.util.find_spec gives None).\"\"\"

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            return None
        return super().find_spec(name, path, target)


sys.meta_path[:] = [PathFinderWithoutOptional if f is PathFinder else f for f in sys.meta_path]
"""


def _dry_run(tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict, str]:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO)])}
    out = tmp_path / "out"
    process = subprocess.run(
        [sys.executable, "-m", "edges2shoes_utils", "bench", "gpu", "--device", "cpu", "--quick", "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    result = json.loads((out / JSON_NAME).read_text())
    return process, result, (out / MARKDOWN_NAME).read_text()


@pytest.mark.slow  # several processes: the bench, pytest, torchrun and its two gloo workers
def test_cpu_dry_run_fills_every_section_without_the_optional_packages(tmp_path):
    process, result, markdown = _dry_run(tmp_path)
    sections = result["sections"]
    assert set(sections) == set(SECTIONS)
    failed = [name for name, s in sections.items() if s["status"] != "ok"]
    assert not failed, f"{failed}\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}"
    assert process.returncode == 0, process.stderr

    # tests/test_gpu.py ran under pytest and was counted: without CUDA every test skips
    tests = sections["gpu_tests"]
    assert tests["skipped"] >= 1 and tests["passed"] == tests["failed"] == tests["errors"] == 0

    train = sections["train"]["rows"]
    assert {(r["precision"], r["batch"]) for r in train} == {(p, b) for p in ("fp16", "bf16", "fp32") for b in (1, 2)}
    for row in train + sections["train_compiled"]["rows"]:
        assert row["images_per_s"] > 0 and row["ms_per_step"] > 0 and row["channels_last"] is True
        assert row["peak_memory_gib"] is None  # a CPU run has no CUDA allocator to ask
    compiled = sections["train_compiled"]["rows"]
    assert [r["compile"] for r in compiled] == ["eager"] and compiled[0]["compile_s"] >= 0

    infer = sections["infer"]["rows"]
    for batch in (1, 2):
        for mode in ("eval", "train"):
            rows = [r for r in infer if (r["batch"], r["mode"]) == (batch, mode)]
            assert [r["path"] for r in rows] == ["plain eager", "fast"]
            assert rows[0]["ratio_to_plain"] == 1.0 and rows[1]["ratio_to_plain"] > 0
            assert rows[1]["psnr_db"] == "inf" or rows[1]["psnr_db"] > 30  # the fast path computes the same picture
            assert all(r["images_per_s"] > 0 for r in rows)

    loader = sections["loader"]
    assert [r["workers"] for r in loader["rows"]] == [0, 1]
    best = max(r["images_per_s"] for r in train)  # the eager rows: training's default
    assert loader["fastest_step"]["images_per_s"] == best
    for row in loader["rows"]:
        assert row["pairs_per_s"] > 0
        assert row["x_fastest_step"] == pytest.approx(row["pairs_per_s"] / best)

    ddp = sections["torchrun"]
    assert (ddp["processes"], ddp["backend"], ddp["returncode"]) == (2, "gloo", 0)
    assert ddp["images_per_s"] > 0 and ddp["first_epoch_images_per_s"] > 0

    for title in ("## GPU tests", "## Training step", "## Inference", "## Data loader", "## torchrun", "T4 prediction"):
        assert title in markdown
    assert markdown.count("| fp16 | 1 | no |") == 1 and "| 2 | gloo | 2 | 4 |" in markdown


def test_an_exhausted_budget_still_writes_every_section_with_its_reason(tmp_path, capsys):
    out = tmp_path / "out"
    # 10 s are reserved for writing the results, so a budget of 10 s leaves nothing for the sections
    assert main(["bench", "gpu", "--device", "cpu", "--quick", "--budget", "10", "--out", str(out),
                 "--skip", "torchrun"]) == 0
    result = json.loads((out / JSON_NAME).read_text())
    statuses = {name: s["status"] for name, s in result["sections"].items()}
    assert statuses == {**{name: NOT_RUN_BUDGET for name in SECTIONS}, "torchrun": "not run: --skip"}
    markdown = (out / MARKDOWN_NAME).read_text()
    assert markdown.count(NOT_RUN_BUDGET) == len(SECTIONS) - 1 and "not run: --skip" in markdown


def test_without_cuda_the_default_device_skips_so_bench_all_passes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "gpu", "--out", str(tmp_path / "out")]) == 0
    assert "no CUDA GPU here, skipped" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_asking_for_cuda_without_a_gpu_is_one_clear_error(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "gpu", "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_rows_that_do_not_fit_the_budget_are_recorded_not_run(tmp_path):
    now = [0.0]
    budget = Budget(100.0, clock=lambda: now[0])
    ctx = RunContext(plan=make_plan(True, torch.device("cpu")), device=torch.device("cpu"), budget=budget, tmp=tmp_path)

    def measure(unit: dict) -> dict:
        now[0] += 50.0  # each row takes 50 s of the 90 s left after the reserve
        return {"status": "ok", "images_per_s": 1.0}

    rows = budgeted_rows(ctx, [{"batch": b} for b in (1, 2, 3)], measure, first_estimate_s=5.0)
    assert [r["status"] for r in rows] == ["ok", NOT_RUN_BUDGET, NOT_RUN_BUDGET]  # 40 s left < 1.3 x 50 s
    assert section_status(rows) == "partial: 1 ok, 0 failed, 2 not run (time budget)"


def test_a_failing_row_becomes_its_error_message_and_the_next_row_runs(tmp_path):
    ctx = RunContext(plan=make_plan(True, torch.device("cpu")), device=torch.device("cpu"),
                     budget=Budget(100.0), tmp=tmp_path)

    def measure(unit: dict) -> dict:
        if unit["batch"] == 64:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 12.00 GiB\nmore detail")
        return {"status": "ok"}

    rows = budgeted_rows(ctx, [{"batch": 64}, {"batch": 4}], measure, first_estimate_s=1.0)
    assert rows == [{"batch": 64, "status": "error: OutOfMemoryError: CUDA out of memory. Tried to allocate 12.00 GiB"},
                    {"batch": 4, "status": "ok"}]
    assert guarded(lambda: {"status": "ok", "x": 1}, torch.device("cpu")) == {"status": "ok", "x": 1}
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C still stops the run
        guarded(lambda: (_ for _ in ()).throw(KeyboardInterrupt()), torch.device("cpu"))


def test_the_gpu_tests_section_counts_passes_failures_and_skips(tmp_path, monkeypatch):
    tests = tmp_path / "test_fake_gpu.py"
    tests.write_text(textwrap.dedent("""
        import pytest

        @pytest.mark.gpu
        def test_passes():
            assert 1 + 1 == 2

        @pytest.mark.gpu
        def test_fails():
            assert 1 + 1 == 3

        @pytest.mark.gpu
        def test_skips():
            pytest.skip("no CUDA")

        def test_not_marked_gpu():
            assert False
    """))
    monkeypatch.setattr(gpu_launch, "GPU_TESTS", tests)  # absolute: replaces CHECKOUT / "tests/test_gpu.py"
    ctx = RunContext(plan=make_plan(True, torch.device("cpu")), device=torch.device("cpu"),
                     budget=Budget(300.0), tmp=tmp_path)
    section = gpu_launch.gpu_tests_section(ctx)
    assert section["status"] == "failed: some tests failed"
    assert (section["passed"], section["failed"], section["errors"], section["skipped"]) == (1, 1, 0, 1)
    # the class name is the module's path from pytest's rootdir, which depends on where the temporary
    # folder lies relative to the working directory: only its end is ours
    [failing] = section["failing"]
    assert failing.endswith("test_fake_gpu::test_fails")
    assert "test_fails" in section["output_tail"]


def test_the_gpu_tests_section_says_why_it_did_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_launch, "GPU_TESTS", tmp_path / "absent.py")
    ctx = RunContext(plan=make_plan(True, torch.device("cpu")), device=torch.device("cpu"),
                     budget=Budget(300.0), tmp=tmp_path)
    assert gpu_launch.gpu_tests_section(ctx)["status"].startswith("not run: ")


@pytest.mark.parametrize("name, precision, peak", [
    ("NVIDIA H200", "bf16", 989.0), ("Tesla T4", "fp16", 65.0), ("Tesla T4", "bf16", None),
    ("NVIDIA A100-SXM4-80GB", "fp32", 156.0), ("NVIDIA GeForce RTX 4090", "fp16", None), (None, "fp16", None),
])
def test_datasheet_peaks_are_found_by_model_name(name, precision, peak):
    assert datasheet_peak(name, precision) == peak


def test_the_full_plan_is_the_issues(tmp_path):
    plan = make_plan(False, torch.device("cpu"))
    assert (plan.ngf, plan.image_size, plan.levels) == (64, 256, 8)
    assert plan.train_batches == (4, 16, 64) and plan.precisions == ("fp16", "bf16", "fp32")
    assert plan.infer_batches == (1, 64) and plan.loader_workers == (1, 2, 4, 8)
    assert plan.compile_backend == "inductor" and len(plan.compile_rows) == 9
    assert make_plan(True, torch.device("cpu")).compile_backend == "eager"
    assert make_plan(True, torch.device("cpu"), compile=False).compile_backend is None
