"""`edges2shoes app`: draw a shoe in the browser and watch pix2pix turn it into a photo as you draw.

    edges2shoes app --weights pix2pix-official            # http://127.0.0.1:7860
    pip install 'edges2shoes[app]'                        # gradio, the optional extra it needs

pix2pix (Isola et al. 2017, arXiv 1611.07004), after Christopher Hesse's pix2pix-tensorflow demo
(pencil, eraser, undo, clear, examples, save) and pix2pix-turbo's sketch demo (the output redrawn on
every canvas change). Built on gradio, so the same page runs locally, inline in Colab, behind a
share link and as a Hugging Face Space (`space/`).

The page: a 512x512 canvas with a pencil-thin black brush, an eraser, undo and clear; an upload
button for a photo or scan (shown on the canvas to draw over); the bundled sample sketches one
click away; the sketch as the model sees it beside the shoe; "new variation" (a fresh dropout
seed, train mode); a download button. The shoe is recomputed on every canvas change, newest state
only (`trigger_mode="always_last"`: changes made while a shoe is being computed collapse into one).

The HTTP API: `generate` takes an image file (and optionally a seed) and returns the shoe first:

    from gradio_client import Client, handle_file
    shoe_path, preview_path, *_ = Client("http://127.0.0.1:7860/").predict(
        handle_file("my_drawing.jpg"), api_name="/generate")

What it touches: it listens on 127.0.0.1 unless told otherwise, keeps gradio's uploads and outputs
in a folder of its own process (gradio's default is shared by every gradio app on the machine),
allows no extra paths, so the only files it serves are the ones it made and copies of the bundled
samples, sends no analytics, and turns every bad upload into a message naming the file and the
problem. Every answer's pictures are files of that answer's own, so equal answers at once never
share a file.
The work itself is in `web_app_service.py` (no gradio there); this module is the page.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from ..inference import MODES, DEFAULT_MODE, Sketch2Shoe, Translation, sample_sketches
from ..util.errors import ConfigError, Edges2ShoesError, SketchError
from ..util.memory import limit_malloc_arenas
from .web_app_inputs import DEFAULT_LIMITS, UploadLimits
from .web_app_service import BLANK_CANVAS, CANVAS_SIZE, ShoeService

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'edges2shoes[app]'"
DEFAULT_HOST = "127.0.0.1"
# Tool radii in canvas pixels. The brush draws a line 4 px wide on the 512 canvas, 2 px at the 256 the
# paper model sees: a pencil, and the width of the dataset's edges. The eraser is 30 px wide, as
# Hesse's (15 px at 256).
BRUSH_RADIUS = 2
ERASER_RADIUS = 15
CONCURRENT_REQUESTS = 2  # clean-up of one drawing overlaps the network of another; the network takes turns
OUTPUT_HEIGHT = 300  # pixels on the page for the preview and the shoe (the paper model makes 256)
QUEUE_SIZE = 64  # requests waiting beyond this are refused with "queue full", not held in memory
# gradio keeps a state object per session (a copy of every component's config, tens of KB for this
# page) and every HTTP API call is a session of its own; its default keeps 10,000 of them, so the
# server's memory would climb for 10,000 requests. The page keeps no state on the server (every event
# sends the canvas and the seed), so a session evicted after this many newer ones loses nothing.
SESSIONS_KEPT = 500
# The preview and the shoe fill their boxes (a small model's 64 px would otherwise show as a stamp),
# pixel for pixel: the preview is meant to show exactly what the model sees.
CSS = "#e2s-preview img, #e2s-shoe img {width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated;}"
INTRO = (
    "## Draw a shoe, watch it appear\n"
    "Draw a shoe **from the side, toe to the left**, with thin dark lines, as in the samples below. "
    "The shoe is redrawn as you draw. Upload a photo or scan of a drawing to start from it."
)


def import_gradio() -> Any:
    """gradio, imported on first use (it is the optional [app] extra), with analytics off unless
    asked for and this app's own folders for uploads and outputs (see `use_private_folders`)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    use_private_folders()  # before the import: some of gradio's modules read the folder at import
    try:
        import gradio  # lazy: optional dependency (the [app] extra)
    except ImportError:
        raise ConfigError(f"the app needs gradio, which is not installed: {INSTALL_HINT}") from None
    return gradio


def use_private_folders() -> Path:
    """Point gradio's upload/output folder and its examples cache at a fresh folder of this process,
    inside GRADIO_TEMP_DIR when that is set (else in the system's temporary folder), removed when
    the process ends. gradio serves any file in that folder and deletes the files it made there on
    shutdown and on a schedule; its default, /tmp/gradio, and any GRADIO_TEMP_DIR set for several
    apps are shared, so two apps on one machine would serve, and delete, each other's files (equal
    uploads even get the same name). Called again in the same process, it keeps the same folder."""
    current = os.environ.get("GRADIO_TEMP_DIR")
    if current not in _PRIVATE_FOLDERS:
        if current:
            Path(current).mkdir(parents=True, exist_ok=True)
        current = tempfile.mkdtemp(prefix="edges2shoes-gradio-", dir=current or None)
        _PRIVATE_FOLDERS.add(current)
        atexit.register(shutil.rmtree, current, ignore_errors=True)
        os.environ["GRADIO_TEMP_DIR"] = current
        os.environ["GRADIO_EXAMPLES_CACHE"] = str(Path(current) / "examples")
    return Path(current)


_PRIVATE_FOLDERS: set[str] = set()  # the folders use_private_folders made in this process


# --------------------------------------------------------------------------------------------------
# The page's event handlers: the service's answers in gradio's terms.


class Handlers:
    """What each event does. Problems with the input become messages (the status line for the
    live canvas, gradio's error toast and the API's error for uploads), never a traceback."""

    def __init__(self, service: ShoeService, gr: Any) -> None:
        self.service = service
        self.gr = gr

    def draw(self, canvas: Any, seed: float | None) -> tuple:
        """The live canvas: blank or unusable drawings clear the output and say why."""
        try:
            answer = self.service.from_canvas(canvas, seed)
        except Edges2ShoesError as error:
            return self._nothing(str(error))
        except Exception as error:  # the page is the person's only view: no stack dumps there
            log.exception("generation from the canvas failed")
            return self._nothing(f"Generation failed ({type(error).__name__}); try again.")
        return self._answer(answer, "the canvas") if answer else self._nothing(BLANK_CANVAS)

    def generate(self, path: str | None, seed: float | None = None) -> tuple:
        """The HTTP API: an image file in, the shoe (then the preview, its PNG, a status line) out."""
        name = Path(path).name if path else "the upload"  # gradio keeps the uploaded file's own name
        with self._errors_as_messages(name, "generation failed"):
            return self._answer(self.service.from_upload(self._arrived(path), seed, name), name)

    def load_upload(self, path: str | None) -> str:
        """The page's upload button: the picture goes onto the canvas, to draw over it; the event
        chained to this one then makes the shoe from the canvas. It goes out as a file of this
        answer's own, as the shoe does (see `_answer`)."""
        name = Path(path).name if path else "the upload"
        with self._errors_as_messages(name, "could not read it"):
            return str(self.service.canvas_picture(self._arrived(path), name))

    @contextlib.contextmanager
    def _errors_as_messages(self, name: str, failure: str) -> Iterator[None]:
        """Problems become gradio errors: a toast in the page, an error naming the problem in the
        API. Our own errors say what is wrong in words; anything else is logged and named only."""
        try:
            yield
        except Edges2ShoesError as error:  # the person's input, not a fault of the server: no traceback in its log
            raise self.gr.Error(str(error), print_exception=False) from None
        except Exception as error:
            log.exception("%s: %s", name, failure)  # logged here once, with its traceback
            raise self.gr.Error(f"{name}: {failure} ({type(error).__name__}).", print_exception=False) from None

    @staticmethod
    def _arrived(path: str | None) -> str:
        if not path:
            raise SketchError("No file arrived: send an image file.")
        return path

    @staticmethod
    def new_seed() -> int:
        return random.randrange(2**31)

    def _answer(self, answer: Translation, source: str) -> tuple:
        how = f"{self.service.mode} mode" + (f", seed {answer.seed}" if answer.seed is not None else "")
        status = f"Shoe from {source} in {answer.seconds * 1000:.0f} ms ({how})."
        # Paths, not pictures: gradio would save a picture under a name made from its content and
        # rewrite that file in place, so equal answers at once would share a file that one rewrites
        # while another's is being sent (a cut-off response). The service's PNGs are this answer's
        # own, inside gradio's folder, served as they are; the shoe's is also the download.
        shoe, preview = str(answer.files["shoe"]), str(answer.files["preview"])
        return shoe, preview, shoe, status

    @staticmethod
    def _nothing(message: str) -> tuple:
        return None, None, None, message


# --------------------------------------------------------------------------------------------------
# The page.


def build_app(model: Sketch2Shoe | ShoeService, *, limits: UploadLimits = DEFAULT_LIMITS) -> Any:
    """The gradio Blocks (queued, not launched) for `model`, shared by everyone who opens the page."""
    gr = import_gradio()
    service = model if isinstance(model, ShoeService) else ShoeService(
        model, limits=limits, out_dir=use_private_folders() / "shoes")
    handlers = Handlers(service, gr)
    train_mode = service.mode == "train"
    with gr.Blocks(title="edges2shoes: draw a shoe", delete_cache=(600, 3600)) as blocks:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            canvas = gr.Sketchpad(
                label="Your drawing", elem_id="e2s-canvas", type="numpy", image_mode="RGB", format="png",
                canvas_size=(CANVAS_SIZE, CANVAS_SIZE), fixed_canvas=True, layers=False, transforms=(),
                brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"),
                eraser=gr.Eraser(default_size=ERASER_RADIUS), height=CANVAS_SIZE + 110, scale=2)
            with gr.Column(scale=1):
                preview = gr.Image(label="As the model sees it", elem_id="e2s-preview", type="pil",
                                   format="png", interactive=False, height=OUTPUT_HEIGHT)
                shoe = gr.Image(label="Shoe", elem_id="e2s-shoe", type="pil", format="png", interactive=False,
                                height=OUTPUT_HEIGHT)
        with gr.Row():
            upload = gr.UploadButton("Upload a photo or scan", elem_id="e2s-upload", file_types=["image"],
                                     type="filepath")
            seed = gr.Number(value=service.default_seed, precision=0, label="Seed (dropout)", elem_id="e2s-seed",
                             visible=train_mode, minimum=0)
            variation = gr.Button("New variation", elem_id="e2s-variation", visible=train_mode)
            download = gr.DownloadButton("Download the shoe", elem_id="e2s-download")
        status = gr.Markdown("Draw on the canvas, pick a sample, or upload a drawing.", elem_id="e2s-status",
                             label="message")
        samples = gr.Examples(examples=[[str(path)] for path in sample_sketches()], inputs=[canvas],
                              label="Sample sketches (click one)", api_visibility="private")
        with gr.Column(visible=False):  # the HTTP API's input: a file, opened by us (gr.Image would decode it)
            api_image = gr.File(label="image", file_types=["image"], type="filepath")

        outputs = [shoe, preview, download, status]
        live = dict(trigger_mode="always_last", show_progress="hidden", concurrency_id="model",
                    api_visibility="private")
        canvas.change(handlers.draw, [canvas, seed], outputs, **live)
        # A canvas set by the page itself (a sample, an upload, a new seed) fires no change: chain the shoe.
        seed.input(handlers.draw, [canvas, seed], outputs, **live)
        samples.load_input_event.then(handlers.draw, [canvas, seed], outputs, **live)
        # A refused upload shows its message and leaves the canvas as it was (no error state on it).
        upload.upload(handlers.load_upload, [upload], [canvas], api_visibility="private",
                      show_progress="hidden").success(handlers.draw, [canvas, seed], outputs, **live)
        variation.click(handlers.new_seed, None, seed, api_visibility="private", queue=False).then(
            handlers.draw, [canvas, seed], outputs, **live)
        api_image.upload(handlers.generate, [api_image, seed], outputs, api_name="generate", concurrency_id="model")
    blocks.queue(default_concurrency_limit=CONCURRENT_REQUESTS, max_size=QUEUE_SIZE)
    return blocks


def launch_app(blocks: Any, *, host: str = DEFAULT_HOST, port: int | None = None, share: bool = False,
               limits: UploadLimits = DEFAULT_LIMITS, block: bool = True, **launch_options: Any) -> Any:
    """Serve `blocks`. `block=False` returns at once with the server running in the background
    (tests, notebooks); close it with `blocks.close()`. Other options go to gradio's `launch`."""
    launch_options.setdefault("state_session_capacity", SESSIONS_KEPT)
    blocks.launch(server_name=host, server_port=port, share=share, max_file_size=limits.gradio_max_file_size,
                  allowed_paths=[], prevent_thread_lock=not block, show_error=False, ssr_mode=False,
                  mcp_server=False, css=CSS, **launch_options)
    return blocks


# --------------------------------------------------------------------------------------------------
# The command line.


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve the drawing app: a canvas in the browser, the shoe redrawn as you draw, an upload button, "
        f"the bundled samples, and an HTTP API (`generate`). Needs the [app] extra: {INSTALL_HINT}."
    )
    parser.add_argument("--weights", required=True, metavar="SOURCE",
                        help="a weights file (any format load_generator reads), 'kaggle', 'pix2pix-official', 'huggan' or 'hub:USER/NAME'")
    parser.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                        help="test-time mode: 'train' (the paper's: per-image statistics and dropout, "
                             "re-seeded by 'new variation'; the default) or 'eval' (deterministic)")
    parser.add_argument("--seed", type=int, default=0, help="the first dropout seed in train mode (default 0)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; "
                             "0.0.0.0 opens it to the network)")
    parser.add_argument("--port", type=int, default=None, help="port (default: the first free one from 7860)")
    parser.add_argument("--share", action="store_true",
                        help="also open a public gradio.live link (needs internet; Kaggle needs it)")
    parser.add_argument("--device", default="auto", help="'auto' (CUDA if present), 'cpu' or 'cuda'")
    parser.set_defaults(run=run_app)


def run_app(args: argparse.Namespace) -> int:
    limit_malloc_arenas()  # before any server thread allocates: keeps a long-running server's memory flat
    import_gradio()  # say what to install before spending time on the weights
    model = Sketch2Shoe.from_weights(args.weights, device=args.device, mode=args.mode, seed=args.seed)
    print(f"edges2shoes app: {model.describe()}; Ctrl-C stops it")
    launch_app(build_app(model), host=args.host, port=args.port, share=args.share)
    return 0
