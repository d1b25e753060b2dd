"""The sections of `bench gpu` that run in other processes: the `gpu` tests under pytest, and a
`torchrun` launch of the real `train` command over every visible GPU (gloo on a CPU dry run).

Both run with this checkout on PYTHONPATH and a timeout taken from the budget; a process that
outlives it is killed with its whole process group (torchrun's workers included).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import make_synthetic
from .gpu_plan import NOT_RUN_BUDGET, RunContext

CHECKOUT = Path(__file__).resolve().parents[2]  # the folder holding edges2shoes_utils/ (and tests/ in a checkout)
GPU_TESTS = Path("tests") / "test_gpu.py"


@dataclass(frozen=True)
class CommandResult:
    returncode: int | None  # None: killed at the timeout
    output: str
    seconds: float

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.output.strip().splitlines()[-lines:])


def run_command(command: list[str], timeout_s: float, cwd: Path) -> CommandResult:
    """Run `command` with this checkout importable; stdout and stderr together, through a file
    (no pipe to fill up). At the timeout the whole process group is killed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(CHECKOUT), *filter(None, [env.get("PYTHONPATH")])])
    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            returncode: int | None = process.wait(timeout=max(timeout_s, 1.0))
        except subprocess.TimeoutExpired:
            _kill_group(process)
            returncode = None
        log.seek(0)
        output = log.read().decode("utf-8", errors="replace")
    return CommandResult(returncode, output, time.perf_counter() - started)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the group this call started (start_new_session)
    except (AttributeError, ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


# --------------------------------------------------------------------------------------------------
# The gpu tests.


def gpu_tests_section(ctx: RunContext) -> dict:
    """`python -m pytest -m gpu tests/test_gpu.py` from the checkout; counts from its JUnit XML."""
    if not (CHECKOUT / GPU_TESTS).is_file():
        return {"status": f"not run: {GPU_TESTS} not found next to the package (run from a checkout)"}
    if importlib.util.find_spec("pytest") is None:
        return {"status": "not run: pytest is not installed for this Python"}
    timeout = min(ctx.plan.tests_timeout_s, ctx.budget.remaining())
    if timeout < 20:
        return {"status": NOT_RUN_BUDGET}
    xml = ctx.tmp / "gpu-tests.xml"
    command = [sys.executable, "-m", "pytest", "-m", "gpu", str(GPU_TESTS), "-q", "-p", "no:cacheprovider",
               f"--junitxml={xml}"]
    result = run_command(command, timeout, cwd=CHECKOUT)
    counts = junit_counts(xml) if xml.is_file() else {}
    section = {"status": _pytest_status(result.returncode, timeout), "command": " ".join(command[1:4] + command[4:6]),
               "returncode": result.returncode, "seconds": result.seconds, **counts}
    if result.returncode not in (0, 5):
        section["output_tail"] = result.tail()
    return section


def _pytest_status(returncode: int | None, timeout: float) -> str:
    return {None: f"failed: timed out after {timeout:.0f} s", 0: "ok", 1: "failed: some tests failed",
            5: "ok: no test selected"}.get(returncode, f"failed: pytest exit code {returncode}")


def junit_counts(path: Path) -> dict:
    """passed / failed / errors / skipped from pytest's JUnit XML, and the names of the failures."""
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    failing = [f"{case.get('classname', '')}::{case.get('name', '')}" for case in root.iter("testcase")
               if case.find("failure") is not None or case.find("error") is not None]
    return {"passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
            "failed": total["failures"], "errors": total["errors"], "skipped": total["skipped"], "failing": failing}


# --------------------------------------------------------------------------------------------------
# torchrun.


def torchrun_section(ctx: RunContext) -> dict:
    """Two short epochs of the real `train` command under torchrun: one process per visible GPU with
    NCCL (gloo and `ddp_processes` CPU processes on a dry run). images/s is the second epoch's, from
    the run's losses.json, over all processes (the first pays for start-up)."""
    plan, device = ctx.plan, ctx.device
    cuda = device.type == "cuda"
    processes = torch.cuda.device_count() if cuda else plan.ddp_processes
    steps = 2 * plan.ddp_steps_per_epoch
    timeout = min(plan.ddp_timeout_s, ctx.budget.remaining())
    section: dict = {"processes": processes, "backend": ("nccl" if cuda else "gloo") if processes > 1 else
                     "none (one process: no process group)", "batch_per_process": plan.ddp_batch, "steps": steps,
                     "image_size": plan.image_size, "ngf": plan.ngf}
    if timeout < 30:
        return {**section, "status": NOT_RUN_BUDGET}
    data = make_synthetic(ctx.tmp / "ddp-set", n=processes * plan.ddp_batch * plan.ddp_steps_per_epoch,
                          size=plan.image_size, seed=0, n_val=1, workers=max(1, min(8, (os.cpu_count() or 1) - 1)))
    run_dir = ctx.tmp / "ddp-run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
        "-m", "edges2shoes_utils", "train", "--data", str(data), "--out", str(run_dir), "--device", device.type,
        "--epochs", "2", "--max-steps", str(steps), "--batch-size", str(plan.ddp_batch),
        "--image-size", str(plan.image_size), "--ngf", str(plan.ngf), "--ndf", str(plan.ngf),
        "--num-workers", str(plan.ddp_workers), "--checkpoint-every", "0", "--sample-count", "0",
        "--no-save-epoch-weights", "--no-progress",
    ]
    result = run_command(command, timeout, cwd=ctx.tmp)
    section.update(command="torchrun " + " ".join(command[3:]), returncode=result.returncode, seconds=result.seconds)
    epochs = _read_history(run_dir / "losses.json")
    if result.returncode == 0 and len(epochs) == 2:
        section.update(status="ok", images_per_s=epochs[-1]["images_per_s"],
                       first_epoch_images_per_s=epochs[0]["images_per_s"])
    else:
        why = "timed out" if result.returncode is None else f"exit code {result.returncode}"
        section.update(status=f"failed: {why}, {len(epochs)} of 2 epochs logged", output_tail=result.tail())
    return section


def _read_history(path: Path) -> list[dict]:
    try:
        history = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return history if isinstance(history, list) else []


__all__ = ["CHECKOUT", "gpu_tests_section", "junit_counts", "run_command", "torchrun_section"]
