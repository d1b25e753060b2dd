"""Fetching weights: a local HTTP server on 127.0.0.1 stands in for the official model zoo and an
injected kagglehub-like downloader for Kaggle; nothing here touches the internet."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import torch

from edges2shoes_utils.apps import cli
from edges2shoes_utils.util.errors import WeightsError
from edges2shoes_utils.nets import UNetGenerator
from edges2shoes_utils.weights.fetch import KAGGLE_DATASET, default_cache_dir, fetch_weights
from edges2shoes_utils.weights.load import load_generator
from edges2shoes_utils.util.servers import free_port
from local_servers import http_server

PAYLOAD = random.Random(0).randbytes(300_000)
OTHER = random.Random(1).randbytes(300_000)


class Handler(BaseHTTPRequestHandler):
    """Serves server.routes[path] = (body, bytes to send before hanging up, or None for all)."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        body, cut = route
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if cut is None else body[:cut])
        self.close_connection = True  # with a cut: the client sees the connection close mid-body

    def log_message(self, *args):
        pass


@pytest.fixture
def zoo_server():
    """A stand-in for the official model zoo: (the server, its base URL)."""
    routes = {"/edges2shoes.pth": (PAYLOAD, None), "/cut.pth": (PAYLOAD, 100_000), "/other.pth": (OTHER, None)}
    with http_server(Handler, routes=routes) as httpd:
        yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/edges2shoes.pth"


def official(tmp_path: Path, url: str) -> Path:
    return fetch_weights("pix2pix-official", cache_dir=tmp_path, url=url, progress=False)


# --------------------------------------------------------------------------------------------------
# The official model zoo over HTTP.


def test_official_download_records_sha256_then_serves_the_cache_offline(tmp_path, zoo_server):
    _, base = zoo_server
    path = official(tmp_path, base + "/edges2shoes.pth")
    assert path == tmp_path / "pix2pix-official" / "edges2shoes_net_G.pth"
    assert path.read_bytes() == PAYLOAD
    sidecar = path.with_name(path.name + ".sha256")
    assert sidecar.read_text().split()[0] == hashlib.sha256(PAYLOAD).hexdigest()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, sidecar.name]  # no temporary left
    assert official(tmp_path, closed_port_url()) == path  # cached: no network needed


def test_interrupted_transfer_leaves_no_file(tmp_path, zoo_server):
    _, base = zoo_server
    with pytest.raises(WeightsError, match="nothing was saved|stopped after"):
        official(tmp_path, base + "/cut.pth")
    folder = tmp_path / "pix2pix-official"
    assert not (folder / "edges2shoes_net_G.pth").exists()
    assert list(folder.iterdir()) == []


def test_download_with_another_sha256_than_recorded_is_refused(tmp_path, zoo_server):
    _, base = zoo_server
    official(tmp_path, base + "/edges2shoes.pth")
    target = tmp_path / "pix2pix-official" / "edges2shoes_net_G.pth"
    target.unlink()
    with pytest.raises(WeightsError, match=r"sha256 is [0-9a-f]{64}, but [0-9a-f]{64} was recorded"):
        official(tmp_path, base + "/other.pth")  # the server now hands out different bytes
    assert not target.exists()
    assert official(tmp_path, base + "/edges2shoes.pth").read_bytes() == PAYLOAD


def test_cached_file_that_changed_is_refused(tmp_path, zoo_server):
    _, base = zoo_server
    path = official(tmp_path, base + "/edges2shoes.pth")
    path.write_bytes(PAYLOAD[:-1] + b"x")
    with pytest.raises(WeightsError, match="differs from .* recorded"):
        official(tmp_path, base + "/edges2shoes.pth")


def test_no_network_is_one_clear_error(tmp_path):
    with pytest.raises(WeightsError) as caught:
        official(tmp_path, closed_port_url())
    message = str(caught.value)
    assert "could not connect" in message and "edges2shoes_net_G.pth" in message and "EDGES2SHOES_PIX2PIX_URL" in message


def test_http_error_is_reported(tmp_path, zoo_server):
    _, base = zoo_server
    with pytest.raises(WeightsError, match="404"):
        official(tmp_path, base + "/missing.pth")


def test_cli_fetch_prints_the_path_and_uses_the_mirror_variable(tmp_path, zoo_server, monkeypatch, capsys):
    _, base = zoo_server
    monkeypatch.setenv("EDGES2SHOES_PIX2PIX_URL", base + "/edges2shoes.pth")
    assert cli.main(["weights", "fetch", "pix2pix-official", "--cache-dir", str(tmp_path)]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed.read_bytes() == PAYLOAD


def test_cli_fetch_without_network_exits_2_with_advice(tmp_path, capsys):
    assert cli.main(["weights", "fetch", "pix2pix-official", "--cache-dir", str(tmp_path), "--url", closed_port_url()]) == 2
    err = capsys.readouterr().err
    assert "could not connect" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------------
# Kaggle through an injected kagglehub-like downloader.


def fake_kagglehub(root: Path, files: dict[str, bytes], calls: list, *, latest: str = "3", error: Exception | None = None):
    """Like kagglehub.dataset_download: (handle, path=None) -> local path inside a versions/N folder."""

    def download(handle: str, path: str | None = None) -> str:
        calls.append((handle, path))
        if error is not None:
            raise error
        version = handle.split("/versions/")[1] if "/versions/" in handle else latest
        base = root / "datasets" / handle.split("/versions/")[0] / "versions" / version
        for name, data in files.items():
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            (base / name).write_bytes(data)
        if path is not None:
            if not (base / path).is_file():
                raise FileNotFoundError(f"{path} is not in {handle}")
            return str(base / path)
        return str(base)

    return download


def test_kaggle_fetch_pins_the_version_it_got(tmp_path):
    calls: list = []
    download = fake_kagglehub(tmp_path / "hub", {"generator_9.pt": b"g9", "generator_4.pt": b"g4"}, calls)
    path = fetch_weights("kaggle", cache_dir=tmp_path / "cache", downloader=download)
    assert path.read_bytes() == b"g9" and path.name == "generator_9.pt"
    assert calls == [(KAGGLE_DATASET, "generator_9.pt")]
    path4 = fetch_weights("kaggle", cache_dir=tmp_path / "cache", downloader=download, epoch=4)
    assert path4.read_bytes() == b"g4"
    assert calls[-1] == (f"{KAGGLE_DATASET}/versions/3", "generator_4.pt")  # pinned: works offline from the cache


def test_kaggle_version_can_be_pinned_by_environment(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setenv("EDGES2SHOES_KAGGLE_VERSION", "5")
    fetch_weights("kaggle", cache_dir=tmp_path, downloader=fake_kagglehub(tmp_path / "hub", {"generator_9.pt": b"x"}, calls))
    assert calls == [(f"{KAGGLE_DATASET}/versions/5", "generator_9.pt")]


def test_kaggle_file_in_a_subfolder_is_found_in_the_whole_dataset(tmp_path):
    calls: list = []
    download = fake_kagglehub(tmp_path / "hub", {"weights/generator_9.pt": b"g9"}, calls)
    assert fetch_weights("kaggle", cache_dir=tmp_path, downloader=download).read_bytes() == b"g9"
    assert calls == [(KAGGLE_DATASET, "generator_9.pt"), (KAGGLE_DATASET, None)]


def test_kaggle_missing_epoch_lists_what_is_there(tmp_path):
    download = fake_kagglehub(tmp_path / "hub", {"generator_0.pt": b"g0"}, [])
    with pytest.raises(WeightsError, match="no generator_9.pt.*generator_0.pt"):
        fetch_weights("kaggle", cache_dir=tmp_path, downloader=download)


def test_kaggle_without_network_or_credentials_is_one_clear_error(tmp_path):
    download = fake_kagglehub(tmp_path / "hub", {}, [], error=ConnectionError("Name or service not known"))
    with pytest.raises(WeightsError) as caught:
        fetch_weights("kaggle", cache_dir=tmp_path, downloader=download)
    message = str(caught.value)
    for words in ("Name or service not known", "kagglehub.login()", "KAGGLE_USERNAME", "kaggle.com/datasets/rudenkoilya/edges2shoes-weights"):
        assert words in message


def test_load_generator_from_kaggle_source(tmp_path):
    generator = UNetGenerator(ngf=8, levels=6)
    (tmp_path / "g.pt").parent.mkdir(exist_ok=True)
    torch.save(generator.state_dict(), tmp_path / "g.pt")
    download = fake_kagglehub(tmp_path / "hub", {"generator_9.pt": (tmp_path / "g.pt").read_bytes()}, [])
    loaded = load_generator("kaggle", cache_dir=tmp_path / "cache", downloader=download)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), generator.state_dict().values()))


def test_kagglehub_is_imported_lazily():
    code = "import sys, edges2shoes_utils.weights.command_line; print('kagglehub' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------------
# Local paths and the cache folder.


def test_local_path_is_returned_as_is_and_a_missing_one_explained(tmp_path):
    (tmp_path / "mine.pt").write_bytes(b"x")
    assert fetch_weights(tmp_path / "mine.pt") == tmp_path / "mine.pt"
    with pytest.raises(WeightsError, match="no such weights file.*'kaggle' or 'pix2pix-official'"):
        fetch_weights(tmp_path / "nope.pt")


def test_cache_folder_comes_from_the_environment_else_the_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGES2SHOES_WEIGHTS", str(tmp_path / "w"))
    assert default_cache_dir() == tmp_path / "w"
    monkeypatch.delenv("EDGES2SHOES_WEIGHTS")
    assert default_cache_dir() == Path(__file__).resolve().parents[1] / "weights"
