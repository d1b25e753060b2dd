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


BASELINE_PAGE = """<!doctype html><meta charset="utf-8"><script src="ort/ort.min.js"></script><script>
window.run = async (threads, runs) => {
  ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
  ort.env.wasm.numThreads = threads;
  const started = performance.now();
  const session = await ort.InferenceSession.create('baseline.onnx', {executionProviders: ['wasm'], graphOptimizationLevel: 'all'});
  const loadMs = performance.now() - started;
  const feeds = {};
  for (const name of session.inputNames) {
    const size = 256, data = new Float32Array(3 * size * size).map(() => Math.random() * 2 - 1);
    feeds[name] = new ort.Tensor('float32', data, [1, 3, size, size]);
  }
  await session.run(feeds);
  const times = [];
  for (let i = 0; i < runs; i++) { const t = performance.now(); await session.run(feeds); times.push(performance.now() - t); }
  return {loadMs, times};
};
</script>"""


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


def time_baseline(site: Path, model: Path, threads: int, *, shoes: int = 10, chromium: str | None = None) -> dict:
    """A plain ONNX file (one 256x256 image input) run by the site's onnxruntime-web in a bare page."""
    with tempfile.TemporaryDirectory(prefix="web-baseline-") as folder:
        (Path(folder) / "ort").symlink_to((site / "ort").resolve())
        (Path(folder) / "baseline.onnx").symlink_to(model.resolve())
        (Path(folder) / "index.html").write_text(BASELINE_PAGE)
        server = serve_site(folder, port=0, isolate=True)
        try:
            with _sync_playwright() as playwright:
                browser = _browser(playwright, chromium)
                page = browser.new_context().new_page()
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
                result = page.evaluate("([t, n]) => window.run(t, n)", [threads, shoes])
                browser.close()
        finally:
            server.shutdown()
    return {"threads": threads, "model_load_ms": result["loadMs"], "shoe_ms": result["times"],
            "shoe_ms_median": statistics.median(result["times"])}


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
            base = time_baseline(args.folder, args.baseline, threads, shoes=args.shoes, chromium=args.chromium)
            result["baseline"] = base
            print(f"  yardstick {args.baseline.name}, same browser, {threads} thread(s): {base['shoe_ms_median']:.0f} ms "
                  f"(range {min(base['shoe_ms']):.0f}-{max(base['shoe_ms']):.0f}), session load {base['model_load_ms']:.0f} ms; "
                  f"the page's model runs at {result['shoe_ms_median'] / base['shoe_ms_median']:.2f}x its time")
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=1))
    return 0
