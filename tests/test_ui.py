"""The notebook upload widget, driven with real file bytes in both ipywidgets formats."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
import torch
from PIL import Image

from edges2shoes_utils.inference.sketch2shoe import Sketch2Shoe
from edges2shoes_utils.nets import UNetGenerator
from edges2shoes_utils.inference.sketch import sample_sketches
from edges2shoes_utils.apps.upload_widget import (
    SketchToShoeApp,
    UploadedFile,
    read_upload_value,
    side_by_side,
    translate_file,
    translator_for,
    upload_with_colab,
)

SIZE = 64


@pytest.fixture(scope="module")
def translate():
    torch.manual_seed(0)
    model = Sketch2Shoe(UNetGenerator(ngf=8, levels=6), mode="eval", fast=False)
    return translator_for(model)


@pytest.fixture(scope="module")
def sketch_bytes() -> tuple[str, bytes]:
    path = sample_sketches()[0]
    return path.name, path.read_bytes()


def v7_value(name: str, content: bytes) -> dict:
    """What Colab's ipywidgets 7 FileUpload holds after an upload."""
    return {name: {"metadata": {"name": name, "type": "image/png", "size": len(content), "lastModified": 0},
                   "content": content}}


def v8_value(name: str, content: bytes) -> tuple:
    """What ipywidgets 8 holds: a tuple of dicts whose content is a memoryview."""
    return ({"name": name, "type": "image/png", "size": len(content),
             "last_modified": datetime.now(timezone.utc), "content": memoryview(content)},)


def decode_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("make_value", [v7_value, v8_value], ids=["ipywidgets7", "ipywidgets8"])
def test_read_upload_value_gives_name_and_bytes(make_value):
    files = read_upload_value(make_value("drawing.jpg", b"\xff\xd8abc"))
    assert files == [UploadedFile("drawing.jpg", b"\xff\xd8abc")]
    assert type(files[0].content) is bytes


def test_read_upload_value_of_empty_widget_is_empty():
    assert read_upload_value(()) == [] and read_upload_value({}) == [] and read_upload_value(None) == []


@pytest.mark.parametrize("make_value", [v7_value, v8_value], ids=["ipywidgets7", "ipywidgets8"])
def test_upload_handler_shows_original_prepared_generated(translate, sketch_bytes, make_value):
    name, content = sketch_bytes
    app = SketchToShoeApp(translate)
    app._on_upload({"new": make_value(name, content)})

    assert "e2s-done" in app.status.value and name in app.status.value
    assert app.results.layout.display == "flex"
    generated = decode_png(app.panels["Generated"].value)
    prepared = decode_png(app.panels["Prepared"].value)
    assert generated.size == (SIZE, SIZE) and prepared.size == (SIZE, SIZE)
    assert decode_png(app.panels["Original"].value).mode == "RGB"
    assert 'download="' + name.rsplit(".", 1)[0] + '_shoe.png"' in app.download.value
    assert app.last is not None and app.last.shoe.size == (SIZE, SIZE)


def test_setting_the_widget_value_runs_the_handler(translate, sketch_bytes):
    """The observer is wired to the widget itself (ipywidgets 8 is installed here)."""
    name, content = sketch_bytes
    app = SketchToShoeApp(translate)
    app.upload.value = v8_value(name, content)
    assert "e2s-done" in app.status.value
    assert decode_png(app.panels["Generated"].value).size == (SIZE, SIZE)


def test_non_image_upload_shows_a_message_not_a_traceback(translate):
    app = SketchToShoeApp(translate)
    app._on_upload({"new": v8_value("notes.jpg", b"this is not an image")})
    assert "e2s-error" in app.status.value
    assert "notes.jpg" in app.status.value
    assert "Traceback" not in app.status.value
    assert app.results.layout.display == "none" and app.download.value == ""


def test_blank_drawing_shows_a_message(translate):
    blank = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(blank, format="PNG")
    app = SketchToShoeApp(translate)
    app._on_upload({"new": v7_value("blank.png", blank.getvalue())})
    assert "e2s-error" in app.status.value and "blank.png" in app.status.value


def test_sample_button_uses_a_bundled_sketch(translate):
    samples = {path.name: path for path in sample_sketches()}
    app = SketchToShoeApp(translate, samples=samples)
    app.sample_picker.value = sorted(samples)[-1]
    app.sample_button.click()
    assert sorted(samples)[-1] in app.status.value and "e2s-done" in app.status.value


def test_side_by_side_has_three_panels(translate):
    result = translate_file(translate, sample_sketches()[0])
    picture = side_by_side(result, cell=SIZE)
    assert picture.width > 3 * SIZE and picture.height > SIZE


def test_colab_dialog_fallback_reports_bad_files_and_keeps_good_ones(translate, sketch_bytes, capsys):
    name, content = sketch_bytes
    results = upload_with_colab(translate, upload=lambda: {"junk.jpg": b"not an image", name: content})
    assert len(results) == 1 and results[0].shoe.size == (SIZE, SIZE)
    printed = capsys.readouterr().out
    assert "junk.jpg" in printed and "Traceback" not in printed
