"""Timing of the static page in headless Chromium: model load, time to the first shoe from a cold
page, and milliseconds per shoe on WASM with each thread count asked for.

It serves a built site on 127.0.0.1 with COOP/COEP headers, opens it in a fresh browser context per
thread count (a cold cache), puts the first bundled sample on the canvas, waits for the shoe, then
asks for new variations (train mode) or re-runs (eval mode) and reads the page's own timings of
`InferenceSession.run`. Needs Playwright (the dev extra) and a Chromium (Debian's by default).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..util.atomic import atomic_write_text
from ..util.errors import ConfigError
from .web_site import serve_site

DESCRIPTION = __doc__.splitlines()[0]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 300_000


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, nargs="?", default=Path("site"), help="a built site (default site/)")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1], help="WASM thread counts to time (default 2 1)")
    parser.add_argument("--mode", choices=["train", "eval"], default="train", help="test-time mode (default train)")
    parser.add_argument("--shoes", type=int, default=10, help="shoes timed per thread count after the first (default 10)")
    parser.add_argument("--chromium", default=None, help="the browser (default: chromium on PATH)")
    parser.add_argument("--baseline", type=Path, metavar="ONNX",
                        help="also time this ONNX file (e.g. the plain fp32 export) in a bare page, same browser, same threads: a yardstick")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.set_defaults(run=_run)


GRAPH_PAGE = """<!doctype html><meta charset="utf-8"><script src="ort/ort.min.js"></script><script>
// Median ms of `runs` calls of one graph (after one warm-up call), on WASM with `threads` threads.
window.time = async (threads, runs, graph, weights, fold, maskShapes) => {
  ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
  ort.env.wasm.numThreads = threads;
  const options = {executionProviders: ['wasm'], graphOptimizationLevel: 'all'};
  if (weights) options.externalData = [{path: weights.split('/').pop(), data: new Uint8Array(await (await fetch(weights)).arrayBuffer())}];
  if (fold) options.extra = {session: {disable_quant_qdq: '1'}};
  const started = performance.now();
  const session = await ort.InferenceSession.create(graph, options);
  const loadMs = performance.now() - started;
  const random = (n, f) => new Float32Array(n).map(f);
  const feeds = {};
  feeds[session.inputNames[0]] = new ort.Tensor('float32', random(3 * 256 * 256, () => Math.random() * 2 - 1), [1, 3, 256, 256]);
  maskShapes.forEach((shape, i) => {
    feeds['dropout_' + i] = new ort.Tensor('float32', random(shape.reduce((a, b) => a * b, 1), () => (Math.random() < 0.5 ? 0 : 2)), shape);
  });
  await session.run(feeds);
  const times = [];
  for (let i = 0; i < runs; i++) { const t = performance.now(); await session.run(feeds); times.push(performance.now() - t); }
  await session.release();
  return {loadMs, times};
};
</script>"""


@dataclass(frozen=True)
class Graph:
    """One ONNX graph to time in a bare page: its file, its external weights, whether to fold its
    DequantizeLinear nodes at load (as the page does), and its dropout masks' shapes."""

    name: str
    graph: Path
    weights: Path | None = None
    fold: bool = False
    mask_shapes: tuple = ()


def _browser(playwright, chromium: str | None):
    executable = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise ConfigError("no Chromium found: install it (apt-get install chromium) or pass --chromium")
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)


def _sync_playwright():
    try:
        from playwright.sync_api import sync_playwright  # lazy: a dev tool, not a dependency
    except ModuleNotFoundError:
        raise ConfigError("timing the page needs Playwright: pip install playwright") from None
    return sync_playwright()


def time_graphs(runtime: Path, graphs: list[Graph], threads: int, *, runs: int = 10, chromium: str | None = None) -> dict:
    """Each graph run by the onnxruntime-web files in `runtime` (a built site's ort/) in one bare
    page of one browser, one after another: {name: {model_load_ms, shoe_ms, shoe_ms_median}}."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="web-graphs-") as folder:
        root = Path(folder)
        (root / "ort").symlink_to(runtime.resolve())
        (root / "index.html").write_text(GRAPH_PAGE)
        for i, graph in enumerate(graphs):
            (root / str(i)).mkdir()
            (root / str(i) / graph.graph.name).symlink_to(graph.graph.resolve())
            if graph.weights is not None:
                (root / str(i) / graph.weights.name).symlink_to(graph.weights.resolve())
        server = serve_site(folder, port=0, isolate=True)
        try:
            with _sync_playwright() as playwright:
                browser = _browser(playwright, chromium)
                page = browser.new_context().new_page()
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
                for i, graph in enumerate(graphs):
                    weights = f"{i}/{graph.weights.name}" if graph.weights is not None else None
                    found = page.evaluate("(a) => window.time(...a)", [threads, runs, f"{i}/{graph.graph.name}", weights,
                                                                         graph.fold, [list(s) for s in graph.mask_shapes]])
                    results[graph.name] = {"model_load_ms": found["loadMs"], "shoe_ms": found["times"],
                                           "shoe_ms_median": statistics.median(found["times"])}
                browser.close()
        finally:
            server.shutdown()
    return results


def time_page(folder: Path, threads: int, *, mode: str = "train", shoes: int = 10, chromium: str | None = None) -> dict:
    """One cold page at `threads` WASM threads: its load, first-shoe and per-shoe timings."""
    server = serve_site(folder, port=0, isolate=True)
    url = f"http://127.0.0.1:{server.server_address[1]}/?threads={threads}&backend=wasm&sw=0"
    try:
        with _sync_playwright() as playwright:
            browser = _browser(playwright, chromium)
            page = browser.new_context().new_page()
            page.goto(url)
            if mode != "train":
                page.select_option("#mode", mode)
            page.wait_for_selector("#samples img", timeout=WAIT_MS)
            page.click("#samples img >> nth=0")
            page.wait_for_function("() => window.e2s.shoes >= 1 || window.e2s.error", timeout=WAIT_MS)
            state = page.evaluate("() => ({error: e2s.error, load: e2s.load, first: e2s.firstShoeAt,"
                                  " isolated: self.crossOriginIsolated})")
            if state["error"]:
                raise ConfigError(f"the page failed: {state['error']}")
            times = []
            for _ in range(shoes):
                before = page.evaluate("() => e2s.shoes")
                if mode == "train":
                    page.click("#variation")  # new masks, the same drawing
                else:
                    page.evaluate("() => e2s.regenerate()")
                page.wait_for_function("(n) => e2s.shoes > n", arg=before, timeout=WAIT_MS)
                times.append(page.evaluate("() => e2s.last.shoeMs"))
            browser.close()
    finally:
        server.shutdown()
    load = state["load"]
    return {
        "threads": load["backend"]["threads"], "backend": load["backend"]["name"], "mode": mode,
        "isolated": state["isolated"], "download_ms": load["downloadMs"], "model_load_ms": load["loadMs"],
        "first_shoe_ms": state["first"], "shoe_ms": times,
        "shoe_ms_median": statistics.median(times) if times else None,
    }


def _run(args: argparse.Namespace) -> int:
    results = []
    for threads in args.threads:
        result = time_page(args.folder, threads, mode=args.mode, shoes=args.shoes, chromium=args.chromium)
        results.append(result)
        spread = f"{min(result['shoe_ms']):.0f}-{max(result['shoe_ms']):.0f}" if result["shoe_ms"] else "-"
        print(f"{result['backend']} {result['threads']} thread(s), {result['mode']} mode: "
              f"{result['shoe_ms_median']:.0f} ms per shoe (median of {len(result['shoe_ms'])}, range {spread}); "
              f"model download {result['download_ms']:.0f} ms, session load {result['model_load_ms']:.0f} ms; "
              f"first shoe {result['first_shoe_ms']:.0f} ms after navigation")
        if args.baseline:
            base = time_graphs(args.folder / "ort", [Graph("baseline", args.baseline)], threads,
                               runs=args.shoes, chromium=args.chromium)["baseline"]
            result["baseline"] = base
            print(f"  yardstick {args.baseline.name}, same browser, {threads} thread(s): {base['shoe_ms_median']:.0f} ms "
                  f"(range {min(base['shoe_ms']):.0f}-{max(base['shoe_ms']):.0f}), session load {base['model_load_ms']:.0f} ms; "
                  f"the page's model runs at {result['shoe_ms_median'] / base['shoe_ms_median']:.2f}x its time")
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=1))
    return 0
