"""Traffic for the drawing app (`edges2shoes app`), sent as its clients send it, over plain HTTP.

Two ways in: the HTTP API (`generate`: upload a file, call, read the answer's event stream) and the
page's sample sketches (what the browser sends when a sample is clicked: load the sample onto the
canvas, then draw from the canvas through the queue). Either way every file the answer names (the
shoe, the sketch as the model saw it, the download) is fetched and must be a whole PNG. No
gradio_client: each step is a plain HTTP call here, so a soak sees which one failed and how. Used
by `bench app` and the app's tests; `served_app` runs the app in its own process, so its log and
memory are its own.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import struct
import subprocess
import sys
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from PIL import Image

from ..inference.drawings import canvas_drawing
from ..util.servers import free_port, logged_process

API = "gradio_api"
SERVER_ERROR = "Exception in ASGI application"  # what uvicorn logs when a response breaks mid-way


class Refused(Exception):
    """The app answered with a message instead of a shoe (a bad upload, a blank drawing)."""


@dataclass(frozen=True)
class Answer:
    """One answered request: the PNG files it named, in order, and its status line."""

    files: list[bytes]
    status: str


# --------------------------------------------------------------------------------------------------
# The app in its own process.


@dataclass(frozen=True)
class ServedApp:
    process: subprocess.Popen
    url: str  # ends with "/"
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def served_app(weights: str | Path, log: Path, *, args: Sequence[str] = (), env: dict[str, str] | None = None,
               start_timeout: float = 180.0, wait: bool = True) -> Iterator[ServedApp]:
    """`edges2shoes app --weights WEIGHTS` on a free 127.0.0.1 port, its output in `log`; stopped on
    exit. With `wait` (the default) it returns once the app answers."""
    port = free_port()
    command = [sys.executable, "-m", "edges2shoes_utils", "app", "--weights", str(weights), "--port", str(port),
               *args]
    environment = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    with logged_process(command, log, env=environment) as process:
        app = ServedApp(process, f"http://127.0.0.1:{port}/", port, log)
        if wait:
            wait_until_serving(app, start_timeout)
        yield app


def wait_until_serving(app: ServedApp, timeout: float) -> None:
    import httpx  # lazy: gradio's dependency, present with the [app] extra

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            raise RuntimeError(f"the app exited with {app.process.returncode}:\n{app.log_text()[-3000:]}")
        try:
            if httpx.get(f"{app.url}config", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the app did not serve {app.url} within {timeout:.0f} s:\n{app.log_text()[-3000:]}")


# --------------------------------------------------------------------------------------------------
# Requests.


def upload(http: Any, url: str, data: bytes, name: str) -> dict:
    """`data` uploaded as a file named `name`; returns the FileData the app's functions take."""
    response = http.post(f"{url}{API}/upload", files={"files": (name, data, "application/octet-stream")})
    response.raise_for_status()
    return {"path": response.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def generate(http: Any, url: str, data: bytes, name: str, seed: int = 0) -> Answer:
    """The HTTP API's `generate` for a file's bytes: the shoe, the preview and the download, fetched."""
    file = upload(http, url, data, name)
    event = http.post(f"{url}{API}/call/generate", json={"data": [file, seed]})
    event.raise_for_status()
    with http.stream("GET", f"{url}{API}/call/generate/{event.json()['event_id']}") as stream:
        lines = [line for line in stream.iter_lines() if line]
    kind, payload = lines[-2].removeprefix("event:").strip(), json.loads(lines[-1].removeprefix("data:"))
    if kind == "error":
        raise Refused(str(payload))
    if kind != "complete":
        raise RuntimeError(f"generate ended with event {kind!r}: {payload!r}")
    return fetch_answer(http, payload)


def start_generate_and_leave(http: Any, url: str, data: bytes, name: str, seed: int = 0) -> None:
    """A client that gives up: it sends a request, opens the answer's stream, and closes the
    connection before the answer arrives (a closed tab, Ctrl-C)."""
    file = upload(http, url, data, name)
    event = http.post(f"{url}{API}/call/generate", json={"data": [file, seed]})
    event.raise_for_status()
    with http.stream("GET", f"{url}{API}/call/generate/{event.json()['event_id']}") as stream:
        stream.close()


def sample(http: Any, url: str, index: int, seed: int = 0) -> Answer:
    """What the page does when sample sketch `index` is clicked: load it onto the canvas (the
    examples' own event), then the shoe from the canvas (the event chained to it, through the queue)."""
    config = http.get(f"{url}config").json()
    load = next(d for d in config["dependencies"] if d.get("api_name") == "load_example")
    draw = next(d for d in config["dependencies"] if d.get("trigger_after") == load["id"])
    session = secrets.token_hex(6)
    loaded = http.post(f"{url}{API}/run/predict",
                       json={"data": [index], "fn_index": load["id"], "session_hash": session})
    loaded.raise_for_status()
    canvas = loaded.json()["data"][0]
    canvas = canvas.get("value", canvas) if canvas.get("__type__") == "update" else canvas
    fetch_answer(http, [canvas["background"], "the sample on the canvas"])  # the page shows it
    joined = http.post(f"{url}{API}/queue/join", json={"data": [canvas, seed], "fn_index": draw["id"],
                                                       "session_hash": session, "event_data": None})
    joined.raise_for_status()
    event_id = joined.json()["event_id"]
    with http.stream("GET", f"{url}{API}/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line.removeprefix("data:"))
            if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                break
        else:
            raise RuntimeError("the queue's stream ended before the shoe")
    output = message.get("output", {})
    if not message.get("success"):
        raise Refused(str(output.get("error")))
    return fetch_answer(http, output["data"])


def fetch_answer(http: Any, outputs: list) -> Answer:
    """Every file the answer names, fetched and checked to be a whole picture; its status line."""
    files = []
    for item in outputs:
        if isinstance(item, dict) and item.get("url"):
            response = http.get(item["url"])
            response.raise_for_status()
            with Image.open(io.BytesIO(response.content)) as picture:
                picture.load()  # a cut-off file raises here
            files.append(response.content)
    if not files:
        raise Refused(str(outputs[-1]))  # the live canvas says why in its status line, with no shoe
    return Answer(files, str(outputs[-1]))


# --------------------------------------------------------------------------------------------------
# What people upload that is not a drawing.


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def white_png(width: int, height: int) -> bytes:
    """A valid, fully decodable 1-bit white PNG of any size, written directly (Pillow would take
    seconds to encode 20,000 x 20,000 pixels; zlib takes a fraction of one)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff" * ((width + 7) // 8)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit grey, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height, 1))
            + chunk(b"IEND", b""))


def bad_uploads() -> dict[str, tuple[str, bytes, tuple[str, ...]]]:
    """case -> (file name, its bytes, words the app's refusal must contain) for the bad uploads the
    app must refuse in words. (A file over the byte limit is `over_the_limit()`: it is 21 MB.)"""
    good = png_bytes(canvas_drawing(256))
    return {
        "empty": ("empty.png", b"", ("empty.png", "empty")),
        "text named .jpg": ("notes.jpg", b"this is a text file, not a drawing\n" * 20, ("notes.jpg", "not an image")),
        "truncated png": ("cut_off.png", good[: len(good) // 2], ("cut_off.png", "cannot read")),
        "20000 x 20000": ("huge.png", white_png(20_000, 20_000), ("huge.png", "too large")),
        "1 x 1": ("dot.png", png_bytes(Image.new("RGB", (1, 1), "black")), ("dot.png", "1 x 1")),
        "blank page": ("blank.png", png_bytes(Image.new("RGB", (300, 200), "white")), ("blank.png", "blank")),
    }


def over_the_limit() -> bytes:
    """A 21 MB "PNG": over the app's 20 MB upload limit, refused by the server before it is stored."""
    return b"\x89PNG" + bytes(21 * 2**20)
