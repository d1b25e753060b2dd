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
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.set_defaults(run=_run)


def time_page(folder: Path, threads: int, *, mode: str = "train", shoes: int = 10, chromium: str | None = None) -> dict:
    """One cold page at `threads` WASM threads: its load, first-shoe and per-shoe timings."""
    try:
        from playwright.sync_api import sync_playwright  # lazy: a dev tool, not a dependency
    except ModuleNotFoundError:
        raise ConfigError("timing the page needs Playwright: pip install playwright") from None
    executable = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise ConfigError("no Chromium found: install it (apt-get install chromium) or pass --chromium")
    server = serve_site(folder, port=0, isolate=True)
    url = f"http://127.0.0.1:{server.server_address[1]}/?threads={threads}&backend=wasm&sw=0"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
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
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=1))
    return 0
