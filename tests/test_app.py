"""The drawing app (`edges2shoes app`): its functions called directly, then its HTTP API through
gradio_client against a real server on 127.0.0.1, with tiny weights made on the spot.

Bad uploads must come back as a message naming the file and the problem, and the next good request
must still succeed; the file route must refuse anything but what the app made.
"""

from __future__ import annotations

import io
import os
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile
from skimage.morphology import skeletonize

from app_support import TINY_SIZE, bad_uploads, drawn_shoe, tiny_weights
from edges2shoes_utils.apps import cli
from edges2shoes_utils.apps.web_app import (DEFAULT_HOST, INSTALL_HINT, SESSIONS_KEPT, Handlers, build_app,
                                            import_gradio, launch_app, use_private_folders)
from edges2shoes_utils.apps.web_app_inputs import UploadLimits, drawing_from_canvas, check_upload, fit_on_canvas
from edges2shoes_utils.apps.web_app_service import BLANK_CANVAS, ShoeService
from edges2shoes_utils.inference import Sketch2Shoe, sample_sketches
from edges2shoes_utils.util.errors import SketchError
from edges2shoes_utils.bench.app_traffic import png_bytes, white_png
from edges2shoes_utils.util.servers import free_port

REPO = Path(__file__).resolve().parents[1]
# gradio's own queue code trips pandas 3 deprecation warnings; they are not ours to fix
pytestmark = [pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]
gradio = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Sketch2Shoe:
    return Sketch2Shoe.from_weights(tiny_weights(tmp_path_factory.mktemp("weights")), device="cpu", seed=0)


@pytest.fixture()
def service(model, tmp_path) -> ShoeService:
    return ShoeService(model, out_dir=tmp_path / "shoes")


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    return bad_uploads(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="module")
def app(gradio_env, model):
    """The app serving on 127.0.0.1 (gradio Blocks)."""
    blocks = build_app(model)
    launch_app(blocks, port=free_port(), block=False, quiet=True)
    try:
        yield blocks
    finally:
        blocks.close()


@pytest.fixture(scope="module")
def client(app, tmp_path_factory):
    return gradio_client.Client(app.local_url, verbose=False,
                                download_files=str(tmp_path_factory.mktemp("downloads")))


def _generate(client, path: Path, **kwargs):
    job = client.submit(gradio_client.handle_file(str(path)), api_name="/generate", **kwargs)
    return job.result(timeout=120)


def _dark_lines_on_white(image: Image.Image) -> tuple[float, float]:
    """(share of dark pixels, their mean stroke width: dark area / centre-line length)."""
    dark = np.asarray(image.convert("L")) < 128
    return float(dark.mean()), float(dark.sum() / max(1, skeletonize(dark).sum()))


# --------------------------------------------------------------------------------------------------
# The functions, called directly.


def test_the_canvas_value_is_read_as_the_drawing_on_white():
    drawing = np.asarray(drawn_shoe(128))
    assert drawing_from_canvas(None) is None
    assert drawing_from_canvas({"background": None, "layers": [], "composite": None}) is None
    assert drawing_from_canvas({"composite": np.full((128, 128, 3), 255, np.uint8)}) is None  # blank
    assert np.array_equal(drawing_from_canvas({"composite": drawing}), drawing)
    # a transparent canvas (RGBA) is read as strokes on white paper, not on black
    rgba = np.zeros((128, 128, 4), np.uint8)
    rgba[..., 3] = np.where(drawing[..., 0] < 128, 255, 0)
    assert np.array_equal(drawing_from_canvas(rgba), np.where(drawing < 128, 0, 255).astype(np.uint8))


def test_an_upload_is_fitted_on_the_white_canvas_keeping_its_shape():
    fitted = fit_on_canvas(Image.new("RGB", (400, 100), "black"), 512)
    assert fitted.size == (512, 512)
    dark = np.asarray(fitted.convert("L")) < 128
    rows, cols = np.nonzero(dark)
    assert (cols.min(), cols.max() + 1) == (0, 512)
    assert rows.max() + 1 - rows.min() == 128  # 400 x 100 keeps its 4:1 shape


def test_a_drawing_becomes_a_shoe_at_the_model_size(service):
    result = service.from_canvas({"composite": np.asarray(drawn_shoe())}, seed=0)
    assert result.shoe.size == result.preview.size == (TINY_SIZE, TINY_SIZE)
    dark_share, stroke_width = _dark_lines_on_white(result.preview)
    assert 0.01 < dark_share < 0.3 and stroke_width < 3.0  # thin dark lines on white
    for path, picture in ((result.files["shoe"], result.shoe), (result.files["preview"], result.preview)):
        with Image.open(path) as saved:  # the download is the shoe itself, as a PNG; the preview too
            assert saved.format == "PNG"
            assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(picture))
        assert path.is_relative_to(service.out_dir)


def test_the_seed_decides_the_dropout_in_train_mode(service, model):
    canvas = {"composite": np.asarray(drawn_shoe())}
    first, again, other = (service.from_canvas(canvas, seed) for seed in (7, 7, 8))
    assert (first.seed, other.seed) == (7, 8)
    assert np.array_equal(np.asarray(first.shoe), np.asarray(again.shoe))
    assert not np.array_equal(np.asarray(first.shoe), np.asarray(other.shoe))
    # equal shoes, each in a file of its own answer: never one file that a second request rewrites
    first_file, again_file = first.files["shoe"], again.files["shoe"]
    assert first_file != again_file and first_file.read_bytes() == again_file.read_bytes()


def test_eval_mode_ignores_the_seed(model, tmp_path):
    eval_model = Sketch2Shoe(model.generator, mode="eval", device="cpu")
    service = ShoeService(eval_model, out_dir=tmp_path)
    canvas = {"composite": np.asarray(drawn_shoe())}
    a, b = service.from_canvas(canvas, 1), service.from_canvas(canvas, 2)
    assert a.seed is None and np.array_equal(np.asarray(a.shoe), np.asarray(b.shoe))


@pytest.mark.parametrize("case", ["empty", "text named .jpg", "truncated png", "20000 x 20000", "1 x 1",
                                  "blank page"])
def test_a_bad_upload_is_refused_naming_the_problem_and_the_next_one_works(service, bad_files, case):
    path, words = bad_files[case]
    with pytest.raises(SketchError) as error:
        service.from_upload(path, seed=0)
    for word in words:
        assert word in str(error.value)
    good = service.from_upload(sample_sketches()[0], seed=0)
    assert good.shoe.size == (TINY_SIZE, TINY_SIZE)


@pytest.mark.parametrize("width, height, words", [
    (8000, 7500, "8000x7500 pixels is more than a sketch needs"),  # Pillow would decode it; we refuse
    (20_000, 20_000, "the image is too large to open"),  # past Pillow's own bomb limit
])
def test_a_huge_image_is_refused_from_its_header_before_any_decoding(service, tmp_path, monkeypatch,
                                                                     width, height, words):
    path = tmp_path / "photo.png"
    path.write_bytes(white_png(width, height))

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for read in (lambda: service.from_upload(path, 0), lambda: service.canvas_picture(path)):
        with pytest.raises(SketchError, match=f"photo.png: {words}"):
            read()


def test_a_file_over_the_byte_limit_is_refused(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(drawn_shoe(512)))
    limits = UploadLimits(max_bytes=1024)
    with pytest.raises(SketchError, match=r"big\.png: the file is .* MB; the limit is"):
        check_upload(path, limits=limits)
    assert check_upload(path) == path  # under the default limit


def test_a_blank_or_unusable_canvas_clears_the_output_and_says_why(service):
    handlers = Handlers(service, import_gradio())
    shoe, preview, download, status = handlers.draw({"composite": np.full((512, 512, 3), 255, np.uint8)}, 0)
    assert (shoe, preview, download, status) == (None, None, None, BLANK_CANVAS)
    dot = np.full((512, 512, 3), 255, np.uint8)
    dot[200:202, 200:202] = 0  # a speck: not a drawing
    shoe, _, _, status = handlers.draw({"composite": dot}, 0)
    assert shoe is None and "found no drawing" in status
    shoe, preview, download, status = handlers.draw({"composite": np.asarray(drawn_shoe())}, 3)
    with Image.open(shoe) as picture, Image.open(preview) as seen:
        assert picture.size == seen.size == (TINY_SIZE, TINY_SIZE)
    assert download == shoe and "seed 3" in status


def test_old_shoes_are_pruned(service):
    shoe_file = service.from_canvas({"composite": np.asarray(drawn_shoe())}, 0).files["shoe"]
    assert service.prune(now=shoe_file.stat().st_mtime + service.keep_seconds - 1) == 0
    assert service.prune(now=shoe_file.stat().st_mtime + service.keep_seconds + 1) == 1
    assert not shoe_file.exists()


def test_without_gradio_the_command_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now raises ImportError
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # the app's folder is made there, and forgotten after
    code = cli.main(["app", "--weights", str(tmp_path / "never_read.pt")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and INSTALL_HINT in err and "never_read" not in err


def test_gradio_gets_a_private_folder_not_the_shared_one(monkeypatch):
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    monkeypatch.delenv("GRADIO_EXAMPLES_CACHE", raising=False)
    folder = use_private_folders()
    assert os.environ["GRADIO_TEMP_DIR"] == str(folder) and folder.name.startswith("edges2shoes-gradio-")
    assert Path(os.environ["GRADIO_EXAMPLES_CACHE"]).is_relative_to(folder)
    folder.rmdir()


def test_gradio_folder_set_for_several_apps_gets_a_folder_of_this_process_inside(monkeypatch, tmp_path):
    shared = tmp_path / "shared"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(shared))
    folder = use_private_folders()
    assert folder.parent == shared and folder.is_dir()
    assert os.environ["GRADIO_TEMP_DIR"] == str(folder)
    assert Path(os.environ["GRADIO_EXAMPLES_CACHE"]).is_relative_to(folder)
    assert use_private_folders() == folder  # the same process keeps its folder


def test_the_server_keeps_a_bounded_number_of_sessions(app):
    # every API call is a gradio session with its own copy of the page's config; gradio's default
    # keeps 10,000 of them, which the app soak saw as memory growing by about 45 KB a request
    assert app.state_holder.capacity == SESSIONS_KEPT <= 1000


def test_the_app_listens_on_localhost_unless_told_otherwise(app):
    assert DEFAULT_HOST == "127.0.0.1"
    assert app.server_name == "127.0.0.1" and app.local_url.startswith("http://127.0.0.1:")
    args = cli.build_parser().parse_args(["app", "--weights", "w.pt"])
    assert (args.host, args.share, args.mode) == ("127.0.0.1", False, "train")


# --------------------------------------------------------------------------------------------------
# The HTTP API, through gradio_client.


def test_generate_returns_the_shoe_first(client):
    shoe_path, preview_path, download_path, status = _generate(client, sample_sketches()[0])
    with Image.open(shoe_path) as shoe, Image.open(preview_path) as preview:
        assert shoe.size == preview.size == (TINY_SIZE, TINY_SIZE)
        assert np.asarray(shoe).std() > 0  # a picture, not a flat fill
    assert sample_sketches()[0].name in status and "seed 0" in status
    with Image.open(download_path) as download, Image.open(shoe_path) as shoe:
        assert np.array_equal(np.asarray(download.convert("RGB")), np.asarray(shoe.convert("RGB")))


def test_generate_takes_a_seed(client):
    sketch = sample_sketches()[1]
    a, b = (_generate(client, sketch, seed=seed) for seed in (5, 6))
    with Image.open(a[0]) as shoe_a, Image.open(b[0]) as shoe_b:
        assert not np.array_equal(np.asarray(shoe_a), np.asarray(shoe_b))
    assert "seed 5" in a[3] and "seed 6" in b[3]


@pytest.mark.parametrize("case", ["empty", "text named .jpg", "truncated png", "20000 x 20000", "1 x 1",
                                  "blank page"])
def test_a_bad_upload_gets_an_api_error_naming_the_problem_and_the_server_keeps_serving(client, bad_files, case):
    path, words = bad_files[case]
    with pytest.raises(gradio_client.exceptions.AppError) as error:
        _generate(client, path)
    message = str(error.value)
    for word in words:
        assert word in message, message
    assert "Traceback" not in message
    shoe_path = _generate(client, sample_sketches()[2])[0]
    with Image.open(shoe_path) as shoe:
        assert shoe.size == (TINY_SIZE, TINY_SIZE)


def test_a_file_over_the_upload_limit_is_refused_by_the_server(app, client, tmp_path):
    import httpx

    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(21 * 2**20))  # 21 MB, over the 20 MB limit
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # gradio_client checks first
        _generate(client, big)
    with big.open("rb") as handle:  # and the server refuses it too, when a client does not check
        response = httpx.post(f"{app.local_url}gradio_api/upload", timeout=60,
                              files={"files": ("big.png", handle, "image/png")})
    assert response.status_code == 413 and "maximum allowed size" in response.text
    with Image.open(_generate(client, sample_sketches()[0])[0]) as shoe:
        assert shoe.size == (TINY_SIZE, TINY_SIZE)


def test_the_file_route_serves_what_the_app_made_and_nothing_else_from_disk(app, client, tmp_path):
    import httpx

    raw = gradio_client.Client(app.local_url, verbose=False, download_files=False)
    shoe = raw.submit(gradio_client.handle_file(str(sample_sketches()[0])), api_name="/generate").result(timeout=120)[0]
    made = httpx.get(shoe["url"], timeout=30)
    assert made.status_code == 200
    assert Image.open(io.BytesIO(made.content)).size == (TINY_SIZE, TINY_SIZE)
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(drawn_shoe(64)))
    for path in ("/etc/passwd", REPO / "pyproject.toml", sample_sketches()[0], secret):
        response = httpx.get(f"{app.local_url}gradio_api/file={path}", timeout=30)
        assert response.status_code == 403, (path, response.status_code)


def test_the_space_entry_starts_the_app_on_the_space_port(tmp_path):
    space = runpy.run_path(str(REPO / "space" / "app.py"), run_name="space_app")
    assert space["command"]({}) == ["app", "--weights", "pix2pix-official", "--host", "0.0.0.0", "--port", "7860"]
    custom = space["command"]({"EDGES2SHOES_APP_WEIGHTS": "kaggle", "GRADIO_SERVER_PORT": "9000"})
    assert custom[custom.index("--weights") + 1] == "kaggle" and custom[custom.index("--port") + 1] == "9000"
    requirements = (REPO / "space" / "requirements.txt").read_text()
    assert "edges2shoes[app]" in requirements.replace(" ", "")
