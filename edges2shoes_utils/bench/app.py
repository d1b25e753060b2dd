"""`python -m edges2shoes_utils bench app`: the drawing app soaked with real traffic (not in CI).

Starts `edges2shoes app` in its own process on 127.0.0.1 with the paper-size generator (random
init, batch-norm statistics calibrated as in `bench infer`, exported to a temporary file) unless
`--weights` names one, and sends `--requests` requests (default 2,000) from `--clients` clients
at once (default 8), each request one of, in a fixed interleaved order:

* the same bundled sample sketch through the HTTP API (identical requests at once);
* the same sample clicked on the page (the examples' events, as the browser sends them);
* a different drawn sketch every time (`inference.drawings.canvas_drawing` with a new seed);
* a bad upload (the ones the app's tests send: empty, text named .jpg, cut off, 20,000 x 20,000,
  1 x 1, blank, and now and then 21 MB), which must be refused with a message naming the problem;
* a client that leaves mid-request (closes the connection before the answer), at most
  `--leave` of them.

Every answer's files are fetched and decoded. Reported: p50/p95/p99 latency of the valid requests
(upload to last file fetched), requests/s over the whole run, failures by kind, the server's
resident memory after 100 requests and at the end (and every 100 between, in the JSON), and the
error lines in the server's log ("Exception in ASGI application" apart). `--json PATH` writes it
all atomically. Goals: no failed valid request, no broken response, memory within 100 MB between
request 100 and the last.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from ..weights import export_generator
from ..inference import sample_sketches
from ..inference.drawings import canvas_drawing
from ..nets import GeneratorConfig
from ..util.servers import resident_mb
from ..util.tables import Table, cell
from .figures import Report, load_average, machine, write_figures
from .app_traffic import (SERVER_ERROR, Refused, bad_uploads, generate, over_the_limit, png_bytes, sample,
                          served_app, start_generate_and_leave)
from .infer import calibrated_random_generator

GOAL_MEMORY_GROWTH_MB = 100.0
MEMORY_FIRST_AT = 100  # requests: the first memory reading (after the server's warm-up)
# One round of the mix, by request number: most requests are valid; the kinds interleave so that
# every client sends every kind and identical requests meet each other.
MIX = ("same sketch", "different sketch", "same sample on the page", "same sketch", "different sketch",
       "same sketch", "bad upload", "different sketch", "same sketch", "leaves mid-request")
OVER_THE_LIMIT_EVERY = 200  # one bad upload in this many requests is the 21 MB one


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=2000, help="requests in all (default 2000)")
    parser.add_argument("--clients", type=int, default=8, help="clients sending at once (default 8)")
    parser.add_argument("--leave", type=int, default=100,
                        help="at most this many clients leave mid-request (default 100)")
    parser.add_argument("--weights", default=None, metavar="SOURCE",
                        help="weights for the app (default: the paper-size generator, random init, calibrated)")
    parser.add_argument("--ngf", type=int, default=64, help="generator width when no --weights (default 64)")
    parser.add_argument("--levels", type=int, default=8, help="generator levels when no --weights (default 8: 256x256)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a client waits for one request")
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights and the drawn sketches")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON (atomically)")


def run(args: argparse.Namespace) -> int:
    if args.requests < 1 or args.clients < 1 or args.leave < 0:
        raise SystemExit("bench app: --requests and --clients must be at least 1, --leave at least 0")
    with tempfile.TemporaryDirectory(prefix="edges2shoes-bench-app-") as work:
        folder = Path(work)
        weights = args.weights or _paper_size_weights(folder, args)
        with served_app(weights, folder / "app.log", env={"GRADIO_TEMP_DIR": str(folder / "gradio")}) as app:
            print(f"bench app: {args.requests} requests from {args.clients} clients to {app.url} ({weights})")
            soak = Soak(app, args)
            result = soak.run()
            log = app.log_text()
        errors = _error_lines(log)
        result["server_log"] = {"asgi_exceptions": log.count(SERVER_ERROR), "error_lines": len(errors),
                                "distinct_error_lines": sorted(set(errors))[:20]}
    result = {"benchmark": "app", **machine(), "load_average_after": load_average(),
              "weights": str(args.weights or "paper-size, random init"), **result}
    print(report(result).text(result))
    if args.json:
        write_figures(args.json, result, args)
    return 0


def _paper_size_weights(folder: Path, args: argparse.Namespace) -> Path:
    generator = calibrated_random_generator(GeneratorConfig(ngf=args.ngf, levels=args.levels), seed=args.seed)
    return export_generator(generator, folder / "generator.safetensors", metadata={"source": "bench app"})


def _error_lines(log: str) -> list[str]:
    """Lines of the server's log that report an error: tracebacks, ERROR records, broken responses,
    and the last line of each traceback (the exception)."""
    lines = log.splitlines()
    found = []
    for i, line in enumerate(lines):
        if "ERROR" in line or SERVER_ERROR in line:
            found.append(line.strip())
        elif line.startswith("Traceback"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j] and not lines[j].startswith(" ")), i)
            found.append(f"Traceback ... {lines[end].strip()[:160]}")
    return found


# --------------------------------------------------------------------------------------------------


class Soak:
    """The clients, the schedule of requests, and what came back."""

    def __init__(self, app, args: argparse.Namespace) -> None:
        self.app = app
        self.args = args
        self.same = sample_sketches()[0]
        self.bad = list(bad_uploads().items())
        self._next = 0
        self._left = 0
        self._lock = threading.Lock()
        self.latencies: list[float] = []
        self.outcomes: Counter[tuple[str, str]] = Counter()  # (kind, outcome) -> count
        self.memory_mb: dict[int, float] = {}

    def run(self) -> dict:
        started = time.perf_counter()
        with ThreadPoolExecutor(self.args.clients) as pool:
            list(pool.map(lambda _: self._client(), range(self.args.clients)))
        wall = time.perf_counter() - started
        self.memory_mb[self.args.requests] = resident_mb(self.app.process.pid)
        return self._figures(wall)

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.args.requests:
                return None
            self._next += 1
            return self._next - 1

    def _client(self) -> None:
        import httpx  # lazy: gradio's dependency, present with the [app] extra

        with httpx.Client(timeout=self.args.timeout) as http:
            while (number := self._take()) is not None:
                kind, send = self._request(number)
                started = time.perf_counter()
                try:
                    outcome = send(http)
                except Refused as refusal:
                    outcome = "refused" if kind.startswith("bad upload") else f"refused: {str(refusal)[:80]}"
                except Exception as error:  # every failure is counted by its kind
                    outcome = f"{type(error).__name__}: {str(error)[:80]}"
                seconds = time.perf_counter() - started
                self._record(number, kind, outcome, seconds)

    def _request(self, number: int) -> tuple[str, Callable]:
        """(kind, function sending it) for request `number`."""
        kind = MIX[number % len(MIX)]
        url = self.app.url
        if kind == "leaves mid-request":
            with self._lock:
                leaving = self._left < self.args.leave
                self._left += leaving
            if leaving:
                data = png_bytes(canvas_drawing(256, seed=self.args.seed + number))
                return kind, lambda http: start_generate_and_leave(http, url, data, f"left_{number}.png") or "left"
            kind = "same sketch"
        if kind == "same sketch":
            data = self.same.read_bytes()
            return kind, lambda http: _answered(generate(http, url, data, self.same.name))
        if kind == "same sample on the page":
            return kind, lambda http: _answered(sample(http, url, index=0))
        if kind == "different sketch":
            data = png_bytes(canvas_drawing(256, seed=self.args.seed + number))
            return kind, lambda http: _answered(generate(http, url, data, f"sketch_{number}.png"))
        if number % OVER_THE_LIMIT_EVERY == MIX.index("bad upload"):
            return "bad upload: over the limit", lambda http: _refused_upload(http, url)
        case, (name, data, words) = self.bad[(number // len(MIX)) % len(self.bad)]
        return f"bad upload: {case}", lambda http: _refusal_names(http, url, data, name, words)

    def _record(self, number: int, kind: str, outcome: str, seconds: float) -> None:
        with self._lock:
            self.outcomes[(kind, outcome)] += 1
            if outcome == "ok":
                self.latencies.append(seconds)
            done = sum(self.outcomes.values())
        if done % MEMORY_FIRST_AT == 0 and done < self.args.requests:
            self.memory_mb[done] = resident_mb(self.app.process.pid)
            print(f"  {done} requests: server RSS {self.memory_mb[done]:.0f} MB", flush=True)

    def _figures(self, wall: float) -> dict:
        expected = {"ok", "refused", "left"}
        failures = Counter({f"{kind}: {outcome}": n for (kind, outcome), n in self.outcomes.items()
                            if outcome not in expected})
        by_kind = Counter()
        for (kind, outcome), n in self.outcomes.items():
            by_kind[kind] += n
        latencies = sorted(self.latencies)
        first = self.memory_mb.get(MEMORY_FIRST_AT)
        last = self.memory_mb[self.args.requests]
        return {
            "requests": self.args.requests, "clients": self.args.clients, "seconds": round(wall, 1),
            "requests_per_s": round(self.args.requests / wall, 2),
            "valid_answered": len(latencies),
            "latency_ms": {name: round(1000 * _percentile(latencies, q), 1) for name, q in
                           (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))} if latencies else None,
            "requests_by_kind": dict(by_kind),
            "failures": dict(failures),
            "failed_valid_requests": sum(n for (kind, outcome), n in self.outcomes.items()
                                         if not kind.startswith("bad upload") and outcome not in expected),
            "server_rss_mb": {str(k): round(v, 1) for k, v in sorted(self.memory_mb.items())},
            "rss_growth_mb": round(last - first, 1) if first is not None else None,
        }


def _answered(answer) -> str:
    if len(answer.files) != 3:
        raise RuntimeError(f"{len(answer.files)} files in the answer, 3 expected")
    return "ok"


def _refusal_names(http, url: str, data: bytes, name: str, words: tuple[str, ...]) -> str:
    """A bad upload must be refused in words naming the problem, not answered with a shoe."""
    try:
        generate(http, url, data, name)
    except Refused as refusal:
        missing = [word for word in words if word not in str(refusal)]
        if missing:
            return f"refused without naming {missing}"
        return "refused"
    return "answered with a shoe"


def _refused_upload(http, url: str) -> str:
    """The 21 MB upload: the server refuses to store it (413) and keeps serving."""
    response = http.post(f"{url}gradio_api/upload", files={"files": ("big.png", over_the_limit(), "image/png")})
    return "refused" if response.status_code == 413 else f"HTTP {response.status_code}"


def _percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]


def report(result: dict) -> Report:
    """Throughput, latency and server memory in one table; what was sent, what failed and the log after it."""
    latency = result["latency_ms"] or {}
    rss = result["server_rss_mb"]
    title = (f"bench app: {result['requests']} requests from {result['clients']} clients in {result['seconds']} s; "
             f"weights: {result['weights']}")
    table = Table(["requests/s", "valid answered", "p50 ms", "p95 ms", "p99 ms", "valid failed",
                   f"RSS MB after {MEMORY_FIRST_AT}", f"RSS MB after {result['requests']}", "RSS growth MB"],
                  [[cell(result["requests_per_s"], 2), result["valid_answered"], latency.get("p50"), latency.get("p95"),
                    latency.get("p99"), result["failed_valid_requests"], rss.get(str(MEMORY_FIRST_AT)),
                    rss[str(result["requests"])], result["rss_growth_mb"]]])
    log = result["server_log"]
    notes = [f"requests by kind: {result['requests_by_kind']}",
             f"failures: {result['failures'] or 'none'}",
             f"goal: server memory growth <= {GOAL_MEMORY_GROWTH_MB:.0f} MB after request {MEMORY_FIRST_AT}",
             f"server log: {log['asgi_exceptions']} '{SERVER_ERROR}', {log['error_lines']} error lines",
             *(f"  {line}" for line in log["distinct_error_lines"])]
    return Report(title, [table], notes)
