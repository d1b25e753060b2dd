"""The official dataset download: a real HTTP server on 127.0.0.1 (Range requests, cut connections,
a server that ignores Range) serves small tarballs built here; nothing touches the internet."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tarfile
from collections import namedtuple
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edges2shoes_utils.apps import cli
from edges2shoes_utils.data import PairsDataset, archive, official, resolve_dataset_root
from edges2shoes_utils.util.errors import DataError
from edges2shoes_utils.util.servers import free_port
from local_servers import http_server

Usage = namedtuple("Usage", "total used free")


# --------------------------------------------------------------------------------------------------
# Tarballs and a server.


def tiny_pair(seed: int) -> bytes:
    """A 64x32 A|B JPEG of noise (noise so the tarball does not compress to nothing)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_special(tar: tarfile.TarFile, name: str, kind: bytes, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    tar.addfile(info)


IMAGES = {f"edges2shoes/train/{i}_AB.jpg": tiny_pair(i) for i in (1, 2, 3, 10, 11, 12)}
IMAGES.update({f"edges2shoes/val/{i}_AB.jpg": tiny_pair(100 + i) for i in (1, 2)})


def make_tarball(extra=None, images=IMAGES) -> bytes:
    """The official layout (edges2shoes/train, edges2shoes/val); `extra(tar)` adds members after it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in images.items():
            add_file(tar, name, data)
        if extra is not None:
            extra(tar)
    return buffer.getvalue()


TARBALL = make_tarball()
OTHER_TARBALL = make_tarball(images={name: tiny_pair(500 + i) for i, name in enumerate(IMAGES)})


class Handler(BaseHTTPRequestHandler):
    """Serves server.files[path]; honours `Range: bytes=N-` (and If-Range against server.etag)
    unless server.ignore_range; server.cuts lists how many bytes each next answer sends before
    hanging up; server.served records (path, first byte, end byte, Range header) per answer."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        server = self.server
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        asked = self.headers.get("Range")
        start = 0
        if asked and not server.ignore_range and self.headers.get("If-Range", server.etag) == server.etag:
            start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                server.served.append((self.path, start, start, asked))
                return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        if server.etag:
            self.send_header("ETag", server.etag)
        self.end_headers()
        payload = body[start:]
        if server.cuts:
            payload = payload[: server.cuts.pop(0)]
        self.wfile.write(payload)
        server.served.append((self.path, start, start + len(payload), asked))
        self.close_connection = True  # after a cut the client sees the connection close mid-body

    def log_message(self, *args):
        pass


@pytest.fixture
def tarball_server():
    """The tarball at /edges2shoes.tar.gz; tests change what it serves through its attributes."""
    with http_server(Handler, files={"/edges2shoes.tar.gz": TARBALL}, cuts=[], served=[], ignore_range=False,
                     etag=None) as httpd:
        httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/edges2shoes.tar.gz"
        yield httpd


@pytest.fixture(autouse=True)
def no_mirror_variable(monkeypatch):
    monkeypatch.delenv(official.DATASET_URL_ENV, raising=False)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/edges2shoes.tar.gz"


def fetch(out: Path, url: str, **options) -> Path:
    return official.fetch_official_dataset(out, url=url, progress=False, **options)


def assert_is_the_dataset(root: Path, images=IMAGES) -> None:
    assert official.split_counts(root) == {"train": 6, "val": 2}
    for name, data in images.items():
        assert (root / name.split("/", 1)[1]).read_bytes() == data
    pairs = PairsDataset(root, "val", image_size=32, jitter=False)
    assert len(pairs) == 2 and tuple(pairs[0][0].shape) == (3, 32, 32)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --------------------------------------------------------------------------------------------------
# Download, resume, restart.


def test_download_unpacks_the_layout_records_the_sha256_and_removes_the_archive(tmp_path, tarball_server, capsys):
    out = tmp_path / "edges2shoes"
    assert official.fetch_official_dataset(out, url=tarball_server.url) == out
    assert_is_the_dataset(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edges2shoes", "edges2shoes.tar.gz.sha256"]
    recorded = (tmp_path / "edges2shoes.tar.gz.sha256").read_text().split()[0]
    assert recorded == hashlib.sha256(TARBALL).hexdigest()
    assert "train 6 images, val 2 images" in capsys.readouterr().err
    assert fetch(out, closed_port_url()) == out  # already there: no network needed
    assert len(tarball_server.served) == 1


def test_cut_download_resumes_without_fetching_the_first_half_again(tmp_path, tarball_server):
    half = len(TARBALL) // 2
    tarball_server.cuts = [half]
    out = tmp_path / "edges2shoes"
    with pytest.raises(DataError, match=rf"stopped after {half} of {len(TARBALL)} bytes.*run the same command again to resume"):
        fetch(out, tarball_server.url, attempts=1)
    assert (tmp_path / "edges2shoes.tar.gz.part").stat().st_size == half
    assert not out.exists()
    room_for_the_rest = Usage(10**12, 0, (len(TARBALL) - half) + len(TARBALL) + official.SPACE_MARGIN)
    fetch(out, tarball_server.url, attempts=1, disk_usage=lambda path: room_for_the_rest)  # a fresh start would not fit
    assert [(start, end, asked) for _, start, end, asked in tarball_server.served] == [
        (0, half, None), (half, len(TARBALL), f"bytes={half}-")]
    assert_is_the_dataset(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edges2shoes", "edges2shoes.tar.gz.sha256"]


def test_cut_download_is_resumed_within_the_same_call(tmp_path, tarball_server):
    tarball_server.cuts = [1000, 3000]
    fetch(tmp_path / "edges2shoes", tarball_server.url)
    assert [(start, end) for _, start, end, _ in tarball_server.served] == [(0, 1000), (1000, 4000), (4000, len(TARBALL))]
    assert_is_the_dataset(tmp_path / "edges2shoes")


def test_server_ignoring_range_gets_a_clean_restart(tmp_path, tarball_server):
    half = len(TARBALL) // 2
    tarball_server.cuts = [half]
    out = tmp_path / "edges2shoes"
    with pytest.raises(DataError, match="resume"):
        fetch(out, tarball_server.url, attempts=1)
    tarball_server.ignore_range = True  # answers 200 with the whole file to `Range: bytes=half-`
    fetch(out, tarball_server.url, attempts=1)
    assert [(start, end, asked) for _, start, end, asked in tarball_server.served] == [
        (0, half, None), (0, len(TARBALL), f"bytes={half}-")]
    assert_is_the_dataset(out)
    assert (tmp_path / "edges2shoes.tar.gz.sha256").read_text().split()[0] == hashlib.sha256(TARBALL).hexdigest()


def test_a_file_changed_on_the_server_since_the_cut_restarts_instead_of_mixing(tmp_path, tarball_server):
    tarball_server.etag, tarball_server.cuts = '"v1"', [len(TARBALL) // 2]
    out = tmp_path / "edges2shoes"
    with pytest.raises(DataError, match="resume"):
        fetch(out, tarball_server.url, attempts=1)
    tarball_server.etag, tarball_server.files["/edges2shoes.tar.gz"] = '"v2"', OTHER_TARBALL  # If-Range "v1" no longer holds
    fetch(out, tarball_server.url, attempts=1)
    assert tarball_server.served[1][1:] == (0, len(OTHER_TARBALL), f"bytes={len(TARBALL) // 2}-")
    assert_is_the_dataset(out, {name: tiny_pair(500 + i) for i, name in enumerate(IMAGES)})


# --------------------------------------------------------------------------------------------------
# Integrity and space.


def test_download_whose_sha256_differs_from_the_record_is_refused_and_leaves_nothing(tmp_path, tarball_server):
    out = tmp_path / "edges2shoes"
    fetch(out, tarball_server.url)
    recorded = (tmp_path / "edges2shoes.tar.gz.sha256").read_text()
    out_files = listing(out)
    shutil.rmtree(out)
    tarball_server.files["/edges2shoes.tar.gz"] = OTHER_TARBALL  # the server now hands out other bytes
    with pytest.raises(DataError, match=r"sha256 is [0-9a-f]{64}, but [0-9a-f]{64} was recorded"):
        fetch(out, tarball_server.url)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edges2shoes.tar.gz.sha256"]  # no archive, part, dataset
    assert (tmp_path / "edges2shoes.tar.gz.sha256").read_text() == recorded
    tarball_server.files["/edges2shoes.tar.gz"] = TARBALL
    assert listing(fetch(out, tarball_server.url)) == out_files


def test_kept_archive_that_changed_since_is_refused(tmp_path, tarball_server):
    out = tmp_path / "edges2shoes"
    fetch(out, tarball_server.url, keep_archive=True)
    (tmp_path / "edges2shoes.tar.gz").write_bytes(OTHER_TARBALL)
    shutil.rmtree(out)
    with pytest.raises(DataError, match="differs from .* recorded at its first download"):
        fetch(out, tarball_server.url)
    assert not out.exists()


def test_too_little_free_space_is_refused_before_anything_is_written(tmp_path, tarball_server):
    out = tmp_path / "edges2shoes"
    enough_to_download_only = Usage(10**12, 0, len(TARBALL) + official.SPACE_MARGIN + 1)
    with pytest.raises(DataError, match=r"only .* free, but the download needs .* and unpacking it about"):
        fetch(out, tarball_server.url, disk_usage=lambda path: enough_to_download_only)
    assert listing(tmp_path) == []
    calls = []
    plenty = Usage(10**12, 0, 2 * len(TARBALL) + official.SPACE_MARGIN)
    fetch(out, tarball_server.url, disk_usage=lambda path: calls.append(path) or plenty)
    assert calls and all(Path(path) == tmp_path for path in calls)
    assert_is_the_dataset(out)


# --------------------------------------------------------------------------------------------------
# Unsafe archives.


def escape_by_dotdot(tar, outside):
    add_file(tar, "edges2shoes/../../outside/evil.txt", b"x")


def escape_by_absolute_path(tar, outside):
    add_file(tar, str(outside / "evil.txt"), b"x")


def symlink_to_etc(tar, outside):  # only the link: a broken extractor running as root must not write to /etc
    add_special(tar, "edges2shoes/train/etc", tarfile.SYMTYPE, "/etc")


def symlink_climbing_out(tar, outside):
    add_special(tar, "edges2shoes/train/up", tarfile.SYMTYPE, "../../../outside")
    add_file(tar, "edges2shoes/train/up/evil.txt", b"x")


def hard_link_out(tar, outside):
    add_special(tar, "edges2shoes/train/passwd", tarfile.LNKTYPE, "../../outside/evil.txt")


def device(tar, outside):
    add_special(tar, "edges2shoes/train/null", tarfile.CHRTYPE)


@pytest.mark.parametrize("with_data_filter", [True, False], ids=["data-filter", "own-checks-only"])
@pytest.mark.parametrize("attack, reason", [
    (escape_by_dotdot, "outside the folder"),
    (escape_by_absolute_path, "an absolute path"),
    (symlink_to_etc, "a link to the absolute path /etc"),
    (symlink_climbing_out, "a link to ../../../outside"),
    (hard_link_out, "outside the folder"),
    (device, "a device file"),
])
def test_unsafe_member_is_refused_and_nothing_is_left(tmp_path, tarball_server, monkeypatch, attack, reason, with_data_filter):
    if with_data_filter and not archive.HAS_DATA_FILTER:
        pytest.skip("this Python's tarfile has no data filter")
    monkeypatch.setattr(archive, "HAS_DATA_FILTER", with_data_filter)
    work = tmp_path / "work"
    outside = work / "outside"  # where an escape would land; it must not appear
    tarball_server.files["/edges2shoes.tar.gz"] = make_tarball(lambda tar: attack(tar, outside))
    out = work / "data" / "edges2shoes"
    out.parent.mkdir(parents=True)
    (out.parent / "mine.txt").write_text("already here")
    before = listing(tmp_path)
    with pytest.raises(DataError, match=reason) as caught:
        fetch(out, tarball_server.url)
    assert "refused member" in str(caught.value)
    assert listing(tmp_path) == before  # no escape, no half dataset, no staging, no archive or record


def test_links_inside_the_folder_are_kept(tmp_path, tarball_server):
    tarball_server.files["/edges2shoes.tar.gz"] = make_tarball(
        lambda tar: add_special(tar, "edges2shoes/val/latest.jpg", tarfile.SYMTYPE, "2_AB.jpg"))
    out = fetch(tmp_path / "edges2shoes", tarball_server.url)
    assert (out / "val" / "latest.jpg").resolve() == (out / "val" / "2_AB.jpg").resolve()


def test_archive_without_the_layout_is_refused(tmp_path, tarball_server):
    tarball_server.files["/edges2shoes.tar.gz"] = make_tarball(images={"photos/1.jpg": tiny_pair(1)})
    with pytest.raises(DataError, match="no train/ and val/ folders"):
        fetch(tmp_path / "edges2shoes", tarball_server.url)
    assert listing(tmp_path) == []


def test_interrupted_extraction_leaves_no_half_dataset(tmp_path, tarball_server, monkeypatch):
    real_extract = tarfile.TarFile.extract
    calls = []

    def crash_on_third(self, member, *args, **kwargs):
        calls.append(member.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_extract(self, member, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extract", crash_on_third)
    out = tmp_path / "edges2shoes"
    with pytest.raises(KeyboardInterrupt):
        fetch(out, tarball_server.url)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edges2shoes.tar.gz", "edges2shoes.tar.gz.sha256"]
    monkeypatch.setattr(tarfile.TarFile, "extract", real_extract)
    fetch(out, tarball_server.url)  # the kept archive is unpacked; nothing is downloaded again
    assert len(tarball_server.served) == 1
    assert_is_the_dataset(out)


# --------------------------------------------------------------------------------------------------
# No network, the command line, and discovery's last resort.


def test_no_network_is_one_clear_error(tmp_path):
    url = closed_port_url()
    with pytest.raises(DataError) as caught:
        fetch(tmp_path / "edges2shoes", url)
    message = str(caught.value)
    for hint in (url, "could not connect", "--url", official.DATASET_URL_ENV, "Kaggle"):
        assert hint in message
    assert "\n" not in message
    assert listing(tmp_path) == []


def test_cli_without_network_exits_2_with_one_line(tmp_path, capsys):
    code = cli.main(["data", "fetch", "official", "--out", str(tmp_path / "e2s"), "--url", closed_port_url()])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("edges2shoes data: error:") and "could not connect" in err


def test_cli_fetch_prints_the_folder_and_reads_the_mirror_variable(tmp_path, tarball_server, monkeypatch, capsys):
    monkeypatch.setenv(official.DATASET_URL_ENV, tarball_server.url)
    assert cli.main(["data", "fetch", "official", "--out", str(tmp_path / "e2s")]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(tmp_path / "e2s")
    assert "train 6 images, val 2 images" in captured.err
    assert_is_the_dataset(tmp_path / "e2s")


def test_cli_refuses_a_folder_that_holds_something_else(tmp_path, tarball_server, capsys):
    (tmp_path / "e2s").mkdir()
    (tmp_path / "e2s" / "notes.txt").write_text("mine")
    assert cli.main(["data", "fetch", "official", "--out", str(tmp_path / "e2s"), "--url", tarball_server.url]) == 2
    assert "is not an edges2shoes dataset" in capsys.readouterr().err
    assert tarball_server.served == [] and listing(tmp_path) == ["e2s", "e2s/notes.txt"]


def offline_kaggle(handle: str) -> str:
    raise ConnectionError("no network")


def test_resolve_uses_the_official_tarball_only_when_asked(tmp_path, tarball_server, monkeypatch):
    monkeypatch.delenv("EDGES2SHOES_DATA", raising=False)
    monkeypatch.setenv(official.DATASET_URL_ENV, tarball_server.url)
    kaggle_input = tmp_path / "kaggle-input"
    kaggle_input.mkdir()
    out = tmp_path / "official"
    with pytest.raises(DataError, match="data fetch official"):
        resolve_dataset_root(downloader=offline_kaggle, kaggle_input=kaggle_input, official_dir=out)
    assert tarball_server.served == []  # not asked: no download
    found = resolve_dataset_root(downloader=offline_kaggle, kaggle_input=kaggle_input,
                                 download_official=True, official_dir=out)
    assert found == out
    assert_is_the_dataset(out)


def test_resolve_reports_both_failures(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGES2SHOES_DATA", raising=False)
    monkeypatch.setenv(official.DATASET_URL_ENV, closed_port_url())
    kaggle_input = tmp_path / "kaggle-input"
    kaggle_input.mkdir()
    with pytest.raises(DataError, match=r"(?s)ConnectionError: no network.*official download failed too: .*could not connect"):
        resolve_dataset_root(downloader=offline_kaggle, kaggle_input=kaggle_input,
                             download_official=True, official_dir=tmp_path / "official")
