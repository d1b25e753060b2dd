"""`edges2shoes web build | serve | bench`: the static draw-a-shoe page (`web_site`), its preview
server and its timing in headless Chromium (`web_bench`)."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from . import web_bench
from .web_site import QUALITY_GATE_DB, WEB_SOURCE, build_site, serve_site


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(run=lambda args: (parser.print_help(), 1)[1])
    actions = parser.add_subparsers(dest="web_action", metavar="ACTION")
    build = actions.add_parser("build", help="write the static site (page, runtime, int8 model, samples)",
                               description="Write a static folder that runs the generator in the visitor's browser.")
    build.add_argument("--weights", required=True, metavar="SOURCE",
                       help="a weights file or a named source ('kaggle', 'pix2pix-official', 'huggan', hub:USER/NAME)")
    build.add_argument("--out", type=Path, default=Path("site"), help="the folder to write (default site/)")
    build.add_argument("--web", type=Path, default=WEB_SOURCE,
                       help=f"the page's source, with node_modules from `npm ci` (default {WEB_SOURCE})")
    build.add_argument("--fp32", action="store_true", help="keep fp32 weights (four times the download; for comparison)")
    build.set_defaults(run=_run_build)

    serve = actions.add_parser("serve", help="preview a built site on this machine, with COOP/COEP headers",
                               description="Serve a built site with the headers that let WebAssembly use several threads.")
    serve.add_argument("folder", type=Path, nargs="?", default=Path("site"), help="the built site (default site/)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--no-isolation", action="store_true",
                       help="leave the headers out, as GitHub Pages does (the page's service worker then adds them)")
    serve.set_defaults(run=_run_serve)

    bench = actions.add_parser("bench", help="time the page in headless Chromium: model load, first shoe, ms per shoe",
                               description=web_bench.DESCRIPTION)
    web_bench.configure_cli(bench)


def _run_build(args: argparse.Namespace) -> int:
    site = build_site(args.weights, args.out, web=args.web, quantize=not args.fp32)
    manifest = site.model.manifest
    side = manifest["image_size"]
    print(f"edges2shoes web: wrote {site.folder} ({side}x{side}, model {site.model_bytes() / 1e6:.1f} MB, "
          f"weights: {manifest['quantized']})")
    for mode, scores in site.quality.items():
        listed = ", ".join(f"{name} {db:.1f}" for name, db in scores.items())
        print(f"PSNR against PyTorch fp32, {mode} mode (dB): {listed}")
    low = [f"{mode}/{name}" for mode, scores in site.quality.items() for name, db in scores.items() if db < QUALITY_GATE_DB]
    if low:
        print(f"warning: below {QUALITY_GATE_DB:.0f} dB: {', '.join(low)}")
    print(f"preview: edges2shoes web serve {site.folder}")
    return 0


def _run_serve(args: argparse.Namespace) -> int:
    server = serve_site(args.folder, host=args.host, port=args.port, isolate=not args.no_isolation, verbose=True)
    how = "without COOP/COEP headers" if args.no_isolation else "with COOP/COEP headers"
    print(f"edges2shoes web: serving {args.folder} at http://{args.host}:{server.server_address[1]}/ {how}; Ctrl-C stops it")
    try:
        threading.Event().wait()
    finally:
        server.shutdown()
    return 0
