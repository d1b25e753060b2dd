"""`bench infer --peers`: our fast path against the runtimes a user would pick instead.

One process, one generator, one input, eval mode (the peers have no seeded train-mode dropout),
every path timed round by round so a change in machine load hits all alike:

* plain eager fp32, the yardstick;
* ours (`Sketch2Shoe`'s runner, as users get it);
* onnxruntime's CPU provider with every graph optimisation, on our ONNX export;
* OpenVINO's CPU plugin on the same ONNX file, in f32 and, where the CPU has native bf16, with its
  bf16 precision hint;
* `torch.compile` with inductor's freezing, fp32 and, where the CPU has native bf16, under bf16
  autocast.

Each row gives the median, the ratio to plain, the largest difference from plain's output and what
it took to get ready (building, exporting and loading, or compiling on the first call). A peer that
is not installed, or fails, is one line in the table.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..weights.onnx_export import export_onnx
from ..inference import Sketch2Shoe
from ..nets import UNetGenerator
from ..training.device import cpu_has_native_bf16
from ..util.tables import Table
from ..util.timing import interleaved_times

Call = Callable[[], torch.Tensor]


@dataclass
class Peer:
    """A way to run the generator: its call once ready, or why it cannot run here."""

    name: str
    precision: str
    call: Call | None = None
    ready_s: float | None = None
    status: str = "ok"


def build_peers(generator: UNetGenerator, x: torch.Tensor, workdir: Path, precision: str) -> list[Peer]:
    """Every peer, made ready; each failure is kept as that peer's status instead of raised."""
    generator = copy.deepcopy(generator).cpu().eval()
    bf16 = cpu_has_native_bf16()
    peers = [_ready("plain eager", "fp32", lambda: _plain(generator, x))]
    peers.append(_ready("ours", "", lambda: _ours(generator, x, precision)))
    onnx_path = workdir / "generator.onnx"
    peers.append(_ready("onnxruntime", "fp32", lambda: _onnxruntime(generator, x, onnx_path), needs="onnxruntime"))
    for hint in ["f32"] + (["bf16"] if bf16 else []):
        peers.append(_ready("openvino", hint, lambda h=hint: _openvino(generator, x, onnx_path, h), needs="openvino"))
    for autocast in [False] + ([True] if bf16 else []):
        peers.append(_ready("torch.compile", "bf16" if autocast else "fp32",
                            lambda a=autocast: _compiled(generator, x, a)))
    return peers


def _ready(name: str, precision: str, make: Callable[[], tuple[Call, str | None]], needs: str | None = None) -> Peer:
    if needs is not None and importlib.util.find_spec(needs) is None:
        return Peer(name, precision, status="not installed")
    start = time.perf_counter()
    try:
        call, actual = make()
        call()  # the first call: compiles, or creates oneDNN primitives
    except Exception as error:  # noqa: BLE001 - a peer that cannot run is one line, not a traceback
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return Peer(name, precision, status=f"failed: {message[:120]}")
    return Peer(name, actual or precision, call, time.perf_counter() - start)


# --------------------------------------------------------------------------------------------------
# The peers.


def _plain(generator: UNetGenerator, x: torch.Tensor) -> tuple[Call, None]:
    def call() -> torch.Tensor:
        with torch.no_grad():
            return generator(x)
    return call, None


def _ours(generator: UNetGenerator, x: torch.Tensor, precision: str) -> tuple[Call, str]:
    model = Sketch2Shoe(generator, mode="eval", precision=precision)
    actual = model.precision if model.runner.fast else "fp32 plain"  # the fast path lost to plain here
    return (lambda: model.generate_batch(x)), actual


def _onnxruntime(generator: UNetGenerator, x: torch.Tensor, path: Path) -> tuple[Call, None]:
    import onnxruntime  # lazy: optional peer

    if not path.exists():
        export_onnx(generator, path, image_size=x.shape[-1])
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"edges": x.numpy()}
    return (lambda: torch.from_numpy(session.run(None, feed)[0])), None


def _openvino(generator: UNetGenerator, x: torch.Tensor, path: Path, hint: str) -> tuple[Call, None]:
    import openvino  # lazy: optional peer

    if not path.exists():
        export_onnx(generator, path, image_size=x.shape[-1])
    core = openvino.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU", {
        "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": torch.get_num_threads()})
    request = compiled.create_infer_request()
    array = np.ascontiguousarray(x.numpy())
    return (lambda: torch.from_numpy(np.array(request.infer([array])[compiled.output(0)]))), None


def _compiled(generator: UNetGenerator, x: torch.Tensor, bf16: bool) -> tuple[Call, None]:
    compiled = torch.compile(copy.deepcopy(generator), dynamic=False, options={"freezing": True})

    def call() -> torch.Tensor:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return compiled(x).float()
    return call, None


# --------------------------------------------------------------------------------------------------
# The run.


def run_peers(generator: UNetGenerator, x: torch.Tensor, args: argparse.Namespace) -> list[dict]:
    """Rows of the peers table: each peer timed interleaved with the others, `args.repeats` rounds."""
    with tempfile.TemporaryDirectory(prefix="edges2shoes-peers-") as workdir:
        peers = build_peers(generator, x, Path(workdir), args.precision)
        ready = [peer for peer in peers if peer.call is not None]
        reference = ready[0].call().float()
        outputs = {peer.name + peer.precision: peer.call().float() for peer in ready}
        times = interleaved_times({peer.name + peer.precision: peer.call for peer in ready},
                                   args.warmup, args.repeats, torch.device("cpu"))
    plain_ms = statistics.median(times[ready[0].name + ready[0].precision])
    rows = []
    for peer in peers:
        row = {"peer": peer.name, "precision": peer.precision, "status": peer.status}
        if peer.call is not None:
            key = peer.name + peer.precision
            median = statistics.median(times[key])
            row.update(median_ms=round(median, 2), ratio_to_plain=round(median / plain_ms, 3),
                       max_difference=float((outputs[key] - reference).abs().max()),
                       ready_s=round(peer.ready_s, 2))
        rows.append(row)
    return rows


def peers_table(rows: list[dict]) -> Table:
    """Per runtime: median, ratio to plain, largest difference from plain's output, time to get ready;
    a runtime that could not run shows only why."""
    cells: list[list[object]] = []
    for row in rows:
        if "median_ms" not in row:
            cells.append([row["peer"], row["precision"], None, None, None, None, row["status"]])
            continue
        cells.append([row["peer"], row["precision"], row["median_ms"], f"{row['ratio_to_plain']:.2f}",
                      f"{row['max_difference']:.2g}", row["ready_s"], row["status"]])
    return Table(["runtime", "precision", "median ms", "x plain", "max diff", "ready s", "status"], cells)
