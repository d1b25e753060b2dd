"""`edges2shoes bench app` (the app soak) runs end to end: a tiny count with tiny weights, every kind
of request in the mix, figures written as JSON. The real soak (paper-size generator, 2,000
requests) is run by hand; its figures are in the README."""

from __future__ import annotations

import json

import pytest

from app_support import tiny_weights
from bench_support import documented
from edges2shoes_utils.apps import cli
from edges2shoes_utils.bench.app import MIX

pytest.importorskip("gradio")
pytest.importorskip("httpx")
pytestmark = pytest.mark.slow  # it starts the app in its own process


@pytest.mark.timeout(300)
def test_the_app_soak_sends_every_kind_and_reports_its_figures(tmp_path, capsys):
    out = tmp_path / "soak.json"
    requests = 3 * len(MIX)
    code = cli.main(["bench", "app", "--requests", str(requests), "--clients", "3", "--leave", "2",
                     "--weights", str(tiny_weights(tmp_path)), "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    kinds = result["requests_by_kind"]
    assert sum(kinds.values()) == requests
    assert {"same sketch", "different sketch", "same sample on the page"} <= set(kinds)
    assert kinds["leaves mid-request"] == 2  # bounded by --leave; the third slot sends the same sketch
    assert sum(n for kind, n in kinds.items() if kind.startswith("bad upload")) == 3
    assert result["failures"] == {} and result["failed_valid_requests"] == 0
    assert result["valid_answered"] == requests - 2 - 3
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert result["server_log"] == {"asgi_exceptions": 0, "error_lines": 0, "distinct_error_lines": []}
    assert str(requests) in result["server_rss_mb"]
    assert "requests/s" in capsys.readouterr().out
    written = documented(out, tmp_path)  # its section of docs/benchmarks.md
    assert f"### `bench app` on {result['cpu']}, {result['date'][:10]}" in written
    assert (f"| {result['requests_per_s']:,.2f} | {result['valid_answered']} | {latency['p50']:,.1f} | "
            f"{latency['p95']:,.1f} |") in written
