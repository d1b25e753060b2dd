"""The notebook upload interface: a person uploads a drawing and gets a shoe photo.

Built on ipywidgets' FileUpload and written for both versions people meet: ipywidgets 7 (what
Colab ships; upgrading it forces a runtime restart) and 8. Their upload values differ:
  7: {name: {"metadata": {...}, "content": bytes}}
  8: a tuple of dicts {"name", "type", "size", "content": memoryview, "last_modified"}
Values set from Python are plain dicts, so contents are read as `f["content"]`, never `f.content`.
Any failure shows as a short message in the page, never as a traceback: the person on the other
side of the browser can act on "this is not an image", not on a stack dump.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from PIL import Image

from ..inference import Translation, load_image
from ..util.errors import Edges2ShoesError
from ..util.images import image_grid

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadedFile:
    name: str
    content: bytes

    @classmethod
    def from_path(cls, path: str | Path) -> "UploadedFile":
        path = Path(path)
        return cls(path.name, path.read_bytes())


Translator = Callable[[UploadedFile], Translation]


# --------------------------------------------------------------------------------------------------
# Reading FileUpload values of ipywidgets 7 and 8.


def read_upload_value(value: Any) -> list[UploadedFile]:
    """The files in a FileUpload `.value`, whichever ipywidgets version produced it."""
    if not value:
        return []
    if isinstance(value, Mapping):  # ipywidgets 7: {name: {"metadata": ..., "content": ...}}
        entries: Iterable[tuple[str, Any]] = (
            (str(name), item) for name, item in value.items()
        )
        return [UploadedFile(name, _content_bytes(item, name)) for name, item in entries]
    files = []
    for index, item in enumerate(value):  # ipywidgets 8: tuple of dicts
        name = str(_field(item, "name") or f"upload-{index}")
        files.append(UploadedFile(name, _content_bytes(item, name)))
    return files


def _field(item: Any, key: str) -> Any:
    return item[key] if isinstance(item, Mapping) else getattr(item, key, None)


def _content_bytes(item: Any, name: str) -> bytes:
    content = _field(item, "content")
    if content is None:
        raise ValueError(f"upload {name!r} carries no content")
    return bytes(content)  # bytes, memoryview and bytearray alike


# --------------------------------------------------------------------------------------------------
# Turning an upload into a shoe with a Sketch2Shoe model.


def translator_for(model: Any) -> Translator:
    """A Translator backed by an `inference.Sketch2Shoe`: the upload is cleaned up like the
    dataset's edges (`inference.prepare_sketch`), then generated."""

    def translate(upload: UploadedFile) -> Translation:
        original = load_image(upload.content, upload.name)  # SketchError naming the file if unreadable
        [done] = model.translate([model.prepare(upload.content, name=upload.name)])
        return replace(done, original=original)

    return translate


def translate_file(translate: Translator, path: str | Path) -> Translation:
    return translate(UploadedFile.from_path(path))


def side_by_side(result: Translation, cell: int = 256) -> Image.Image:
    """Original | Prepared | Generated as one picture (uint8 pixels: nothing to clip)."""
    return image_grid(
        {"Original": [result.original], "Prepared": [result.preview], "Generated": [result.shoe]},
        cell=cell,
    )


# --------------------------------------------------------------------------------------------------
# The widget.


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def download_link(image: Image.Image, filename: str) -> str:
    """An HTML link that saves `image` as a PNG: works in Jupyter, Voila and Colab alike."""
    data = base64.b64encode(png_bytes(image)).decode("ascii")
    return (
        f'<a class="e2s-download" download="{html.escape(filename)}" '
        f'href="data:image/png;base64,{data}">Download {html.escape(filename)}</a>'
    )


class SketchToShoeApp:
    """Upload button + sample picker + Original | Prepared | Generated panels + download link."""

    def __init__(
        self,
        translate: Translator,
        samples: Mapping[str, Path] | None = None,
        display_size: int = 256,
    ) -> None:
        import ipywidgets as widgets  # lazy: optional dependency

        self.translate = translate
        self.samples = dict(samples or {})
        self.display_size = display_size
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload sketch")
        self.upload.add_class("e2s-upload")
        self.sample_picker = widgets.Dropdown(options=list(self.samples), description="Sample")
        self.sample_button = widgets.Button(description="Use sample", icon="pencil")
        self.sample_button.add_class("e2s-sample-button")
        self.status = widgets.HTML(value="Upload a drawing of a shoe (.jpg or .png), or try a sample.")
        self.status.add_class("e2s-status")
        self.panels = {
            title: widgets.Image(format="png", width=display_size, height=display_size)
            for title in ("Original", "Prepared", "Generated")
        }
        for title, panel in self.panels.items():
            panel.add_class(f"e2s-{title.lower()}")
        columns = [
            widgets.VBox([widgets.HTML(f"<b>{title}</b>"), panel]) for title, panel in self.panels.items()
        ]
        self.results = widgets.HBox(columns, layout=widgets.Layout(display="none"))
        self.download = widgets.HTML(value="")
        self.upload.observe(self._on_upload, names="value")
        self.sample_button.on_click(self._on_sample)
        controls = [self.upload] + ([self.sample_picker, self.sample_button] if self.samples else [])
        self.widget = widgets.VBox([widgets.HBox(controls), self.status, self.results, self.download])
        self.widget.add_class("e2s-app")
        self.last: Translation | None = None

    def _ipython_display_(self) -> None:  # lets a notebook cell end with `app`
        from IPython.display import display  # lazy: optional dependency

        display(self.widget)

    # ------------------------------------------------------------------ events

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        try:
            files = read_upload_value(change["new"])
        except ValueError as error:
            self.show_error(str(error))
            return
        if files:
            self.handle(files[-1])

    def _on_sample(self, _button: Any = None) -> None:
        name = self.sample_picker.value
        if name:
            self.handle(UploadedFile.from_path(self.samples[name]))

    # ------------------------------------------------------------------ work

    def handle(self, upload: UploadedFile) -> Translation | None:
        """Translate one upload and show it; on failure show why, in words."""
        self.status.value = f"Generating a shoe from <code>{html.escape(upload.name)}</code>..."
        try:
            result = self.translate(upload)
        except Edges2ShoesError as error:
            self.show_error(str(error))
            return None
        except Exception as error:  # the page is the user's only view: no stack dumps there
            log.exception("generation failed for %s", upload.name)
            self.show_error(f"{upload.name}: generation failed ({type(error).__name__}: {error})")
            return None
        self.show(upload.name, result)
        return result

    def show(self, name: str, result: Translation) -> None:
        for title, image in zip(self.panels, (result.original, result.preview, result.shoe)):
            shown = image.copy()
            shown.thumbnail((self.display_size, self.display_size))
            self.panels[title].value = png_bytes(shown)
        self.results.layout.display = "flex"
        stem = Path(name).stem or "sketch"
        self.download.value = download_link(result.shoe, f"{stem}_shoe.png")
        self.status.value = f'<span class="e2s-done">Done: <code>{html.escape(name)}</code></span>'
        self.last = result

    def show_error(self, message: str) -> None:
        self.results.layout.display = "none"
        self.download.value = ""
        self.status.value = f'<span class="e2s-error" style="color:#b00020">{html.escape(message)}</span>'


def upload_with_colab(translate: Translator, upload: Callable[[], Mapping[str, bytes]] | None = None) -> list[Translation]:
    """Fallback for Colab when widgets don't render: Colab's own upload dialog. A file that cannot
    be used is reported in one line and skipped. `upload` replaces the dialog (tests)."""
    if upload is None:
        from google.colab import files  # type: ignore[import-not-found]  # lazy: optional dependency

        upload = files.upload
    results = []
    for name, content in upload().items():
        try:
            results.append(translate(UploadedFile(name, bytes(content))))
        except Edges2ShoesError as error:
            print(f"Skipped: {error}")
    return results
