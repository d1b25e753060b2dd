"""The drawing app under load: `edges2shoes app` in its own process, 8 clients at once, 200 requests.

Each request sends a different sketch (the bundled ones, then drawn shoes) through the plain HTTP
API (gradio's REST calls: upload, call, read the event stream; test_app.py covers gradio_client) and
must get its shoe back. p50/p95 latency is printed (measured, not asserted: speed belongs to the
benchmarks); the server's resident memory after 200 requests must be within 200 MB of its value
after the first 10 (a leak per request would show), and the server must listen on 127.0.0.1 only.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from app_support import TINY_SIZE, drawn_shoe, tiny_weights
from local_servers import free_port, logged_process
from edges2shoes_utils.inference import sample_sketches

pytest.importorskip("gradio")
httpx = pytest.importorskip("httpx")

CLIENTS = 8
REQUESTS_PER_CLIENT = 10
TOTAL = 200
WARM_UP = 10
MEMORY_GROWTH_LIMIT_MB = 200


@pytest.fixture(scope="module")
def app_process(tmp_path_factory):
    """`edges2shoes app` with tiny weights in a subprocess (its memory is its own to measure)."""
    work = tmp_path_factory.mktemp("app")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(work / "gradio")}
    log_path = work / "app.log"
    command = [sys.executable, "-m", "edges2shoes_utils", "app", "--weights", str(tiny_weights(work)),
               "--port", str(port)]
    url = f"http://127.0.0.1:{port}/"
    with logged_process(command, log_path, env=env) as process:
        _wait_until_serving(url, process, log_path)
        yield process, url, port


def _wait_until_serving(url: str, process: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}config", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the app did not serve {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp* writes them) with a socket listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, local_port = local.rsplit(":", 1)
            if state == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def _sketches(folder: Path) -> list[Path]:
    """TOTAL different sketches: the bundled ones, then drawn shoes."""
    paths = list(sample_sketches())
    for variant in range(TOTAL - len(paths)):
        path = folder / f"drawn_{variant:03d}.png"
        drawn_shoe(256, variant=variant, width=3).save(path)
        paths.append(path)
    return paths


def _request(http: httpx.Client, url: str, sketch: Path) -> tuple[float, tuple[int, int]]:
    """(seconds, size of the shoe that came back) for one request through the plain HTTP API:
    upload the file, call `generate`, read the answer's event stream, fetch the shoe."""
    started = time.perf_counter()
    with sketch.open("rb") as handle:
        uploaded = http.post(f"{url}gradio_api/upload", files={"files": (sketch.name, handle, "image/png")})
    uploaded.raise_for_status()
    file = {"path": uploaded.json()[0], "meta": {"_type": "gradio.FileData"}}
    event = http.post(f"{url}gradio_api/call/generate", json={"data": [file, 0]})
    event.raise_for_status()
    with http.stream("GET", f"{url}gradio_api/call/generate/{event.json()['event_id']}") as stream:
        lines = [line for line in stream.iter_lines() if line]
    assert lines[-2] == "event: complete", (sketch.name, lines[-2:])
    shoe = http.get(json.loads(lines[-1].removeprefix("data:"))[0]["url"])
    seconds = time.perf_counter() - started
    shoe.raise_for_status()
    with Image.open(io.BytesIO(shoe.content)) as image:
        image.load()
        return seconds, image.size


def _run_clients(url: str, sketches: list[Path], clients: int) -> list[tuple[float, tuple[int, int]]]:
    """`clients` clients at once, each sending its share of `sketches` one after another."""
    shares = [sketches[i::clients] for i in range(clients)]

    def one_client(share):
        with httpx.Client(timeout=60) as http:
            return [_request(http, url, sketch) for sketch in share]

    with ThreadPoolExecutor(clients) as pool:
        return [result for share in pool.map(one_client, shares) for result in share]


@pytest.mark.timeout(300)
def test_eight_clients_get_every_shoe_and_memory_stays_flat(app_process, tmp_path):
    process, url, port = app_process
    sketches = _sketches(tmp_path)
    assert len({path.read_bytes() for path in sketches}) == TOTAL  # every request a different sketch

    warm = _run_clients(url, sketches[:WARM_UP], clients=1)
    memory_after_warm_up = _resident_mb(process.pid)
    concurrent_part = sketches[WARM_UP:WARM_UP + CLIENTS * REQUESTS_PER_CLIENT]
    started = time.perf_counter()
    measured = _run_clients(url, concurrent_part, clients=CLIENTS)
    wall = time.perf_counter() - started
    rest = _run_clients(url, sketches[WARM_UP + len(concurrent_part):], clients=CLIENTS)
    memory_after_all = _resident_mb(process.pid)

    results = warm + measured + rest
    assert len(results) == TOTAL
    assert all(size == (TINY_SIZE, TINY_SIZE) for _, size in results)
    latencies = sorted(seconds for seconds, _ in measured)
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)]
    print(f"\n{CLIENTS} clients x {REQUESTS_PER_CLIENT} requests: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
          f"{len(measured) / wall:.1f} requests/s; server RSS {memory_after_warm_up:.0f} MB after {WARM_UP} "
          f"requests, {memory_after_all:.0f} MB after {TOTAL}")
    assert memory_after_all - memory_after_warm_up < MEMORY_GROWTH_LIMIT_MB
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only (the default --host)
    assert process.poll() is None  # still serving
