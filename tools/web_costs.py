"""What each change to the browser's model costs, timed with onnxruntime on this CPU (Python, not
WASM: the ratios, not the milliseconds, carry over), against the plain fp32 ONNX export in the same
run: the page's graphs in train mode (instance norm + dropout masks) and eval mode, with fp32 or int8
weights, the DequantizeLinear folded at load or run at every call.

    python tools/web_costs.py WEIGHTS [--threads 2 1] [--runs 10] [--browser SITE]

With --browser (a site built by `edges2shoes web build`, whose ort/ runtime is used), the same
graphs are also timed by onnxruntime-web on WASM in headless Chromium, one bare page, one browser.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edges2shoes_utils.apps.web_bench import Graph, time_graphs
from edges2shoes_utils.weights import load_generator
from edges2shoes_utils.weights.onnx_export import export_onnx
from edges2shoes_utils.inference.web_model import draw_masks, export_web_model
from edges2shoes_utils.util.tables import Table


def median_ms(path: Path, feeds: dict, threads: int, runs: int, fold: bool = True) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if fold:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--browser", type=Path, metavar="SITE", help="also time them in headless Chromium with SITE/ort")
    args = parser.parse_args()
    generator = load_generator(args.weights)
    folder = Path(tempfile.mkdtemp(prefix="web-costs-"))
    exact = export_web_model(generator, folder / "fp32", quantize=False)
    int8 = export_web_model(generator, folder / "int8")
    size = exact.manifest["image_size"]
    plain = export_onnx(generator, folder / "plain.onnx", image_size=size)  # the page's size, not the default
    edges = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    masks = {f"dropout_{i}": m for i, m in enumerate(draw_masks(exact.mask_shapes("train"), 0))}
    for threads in args.threads:
        base = median_ms(plain, {"edges": edges}, threads, args.runs)
        rows = {
            "plain fp32 export (ConvTranspose, eval)": base,
            "page eval, fp32": median_ms(exact.graph("eval"), {"edges": edges}, threads, args.runs),
            "page train, fp32": median_ms(exact.graph("train"), {"edges": edges, **masks}, threads, args.runs),
            "page eval, int8 folded at load": median_ms(int8.graph("eval"), {"edges": edges}, threads, args.runs),
            "page train, int8 folded at load": median_ms(int8.graph("train"), {"edges": edges, **masks}, threads, args.runs),
            "page train, int8 dequantized every run": median_ms(int8.graph("train"), {"edges": edges, **masks}, threads, args.runs, fold=False),
        }
        table = Table(["threads", "runtime", "graph", "median ms", "x plain", "load ms"],
                      [[threads, "onnxruntime", name, ms, f"{ms / base:.2f}", None] for name, ms in rows.items()])
        if args.browser:
            shapes = tuple(exact.mask_shapes("train"))
            graphs = [
                Graph("plain fp32 export (ConvTranspose, eval)", plain),
                Graph("page eval, fp32", exact.graph("eval"), exact.folder / exact.manifest["weights"]),
                Graph("page train, fp32", exact.graph("train"), exact.folder / exact.manifest["weights"], mask_shapes=shapes),
                Graph("page eval, int8 folded at load", int8.graph("eval"), int8.folder / int8.manifest["weights"], fold=True),
                Graph("page train, int8 folded at load", int8.graph("train"), int8.folder / int8.manifest["weights"], fold=True, mask_shapes=shapes),
                Graph("page train, int8 dequantized every run", int8.graph("train"), int8.folder / int8.manifest["weights"], mask_shapes=shapes),
                Graph("plain fp32 export again", plain),
            ]
            timed = time_graphs(args.browser / "ort", graphs, threads, runs=args.runs)
            base = timed[graphs[0].name]["shoe_ms_median"]
            for name, found in timed.items():
                ms = found["shoe_ms_median"]
                table.rows.append([threads, "WASM", name, ms, f"{ms / base:.2f}", f"{found['model_load_ms']:.0f}"])
        print(table.text(indent=""))


if __name__ == "__main__":
    main()
