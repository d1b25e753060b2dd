"""The draw-a-shoe page as a static site, where the generator
runs in the visitor's browser (onnxruntime-web), with no server of ours.

`build` writes a self-contained folder any static host serves (GitHub Pages, a static Hugging Face
Space): the page from the checkout's `web/`, the runtime files it loads from `web/node_modules`
(after `npm ci --prefix web`), the model (`inference.web_model`) and the bundled sample sketches,
cleaned as the Python tools clean them. `serve` previews it on this machine with the headers that
let WebAssembly use several threads.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from ..weights import load_generator
from ..inference.sketch import prepare_sketch, sample_sketches
from ..inference.web_model import WebModel, check_quality, export_web_model
from ..util.atomic import atomic_write_text
from ..util.errors import ConfigError, Edges2ShoesError, WeightsError

WEB_SOURCE = Path(__file__).resolve().parents[2] / "web"
PAGE_FILES = ("index.html", "style.css", "coi.js", "sw.js", "app.js", "prepare.js", "worker.js")
# What ort.min.js loads: the WASM build with WebGPU (JSEP) is the one it fetches even for the plain
# wasm provider; without these two files the page gets a 404 and "no available backend found".
RUNTIME_FILES = ("ort.min.js", "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm")
RUNTIME_PACKAGE = Path("node_modules") / "onnxruntime-web" / "dist"
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
MIME_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
              ".onnx": "application/octet-stream", ".weights": "application/octet-stream", ".json": "application/json"}


QUALITY_GATE_DB = 30.0  # the int8 model's PSNR against PyTorch's fp32 output, every checked input


@dataclass(frozen=True)
class BuiltSite:
    folder: Path
    model: WebModel
    quality: dict[str, dict[str, float]]  # mode -> input -> PSNR in dB (`web_model.check_quality`)

    def model_bytes(self) -> int:
        """The model's download: graphs, shared weights and manifest."""
        return sum(path.stat().st_size for path in self.model.files())


def runtime_folder(web: Path = WEB_SOURCE) -> Path:
    """Where the pinned onnxruntime-web's files are; raises ConfigError (one line) when missing."""
    folder = web / RUNTIME_PACKAGE
    missing = [name for name in RUNTIME_FILES if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"{folder}: onnxruntime-web is not installed ({missing[0]} missing); run `npm ci --prefix {web}` first")
    return folder


def build_site(weights: str, out: str | Path, *, web: Path = WEB_SOURCE, quantize: bool = True) -> BuiltSite:
    """Write the static site for the generator in `weights` (any source `load_generator` reads)."""
    out = Path(out)
    runtime = runtime_folder(web)
    missing = [name for name in PAGE_FILES if not (web / name).is_file()]
    if missing:
        raise ConfigError(f"{web}: the page's source is incomplete ({missing[0]} missing)")
    try:
        generator = load_generator(weights)
    except Edges2ShoesError:
        raise
    except Exception as error:  # an unreadable file of a kind no loader knows
        raise WeightsError(f"{weights}: cannot read a generator from it ({type(error).__name__}: {error})") from None
    out.mkdir(parents=True, exist_ok=True)
    model = export_web_model(generator, out / "model", quantize=quantize, source=str(weights))
    for name in PAGE_FILES:
        shutil.copyfile(web / name, out / name)
    (out / "ort").mkdir(exist_ok=True)
    for name in RUNTIME_FILES:
        shutil.copyfile(runtime / name, out / "ort" / name)
    _write_samples(out / "samples", model.manifest["image_size"])
    (out / ".nojekyll").touch()  # GitHub Pages: serve the files as they are
    return BuiltSite(out, model, check_quality(generator, model))


def _write_samples(folder: Path, size: int) -> None:
    """The bundled sketches, cleaned by `prepare_sketch` (the page takes clean drawings only)."""
    folder.mkdir(exist_ok=True)
    names = []
    for path in sample_sketches():
        _, preview = prepare_sketch(path, size=max(size, 256))
        name = f"{path.stem}.png"
        preview.save(folder / name)
        names.append(name)
    atomic_write_text(folder / "samples.json", json.dumps(names))


# --------------------------------------------------------------------------------------------------
# Preview.


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with JavaScript and WebAssembly MIME types, and (with `isolate`) the COOP/COEP
    headers that make the page cross-origin isolated."""

    isolate = True
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def end_headers(self) -> None:
        if self.isolate:
            for key, value in ISOLATION_HEADERS.items():
                self.send_header(key, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        if self.server.verbose:  # type: ignore[attr-defined]
            super().log_message(format, *args)


def serve_site(folder: str | Path, *, host: str = "127.0.0.1", port: int = 8000, isolate: bool = True,
               verbose: bool = False) -> http.server.ThreadingHTTPServer:
    """A server for the built site, started on a background thread; `.shutdown()` stops it."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise ConfigError(f"{folder}: no index.html; build the site first (edges2shoes web build)")
    handler = type("Handler", (SiteHandler,), {"isolate": isolate})
    server = http.server.ThreadingHTTPServer((host, port), functools.partial(handler, directory=str(folder)))
    server.verbose = verbose  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True, name="web-site").start()
    return server
