"""`bench infer --peers` and `--tiers` on a tiny generator: every peer and tier is one row, and one
that cannot run says why in its row instead of stopping the table."""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex

import pytest

from bench_support import TINY_BENCHES, documented
from edges2shoes_utils.apps import cli
from edges2shoes_utils.bench import infer, peers, tiers


def bench_args(**overrides) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    infer.configure(parser)
    args = parser.parse_args(["--repeats", "2", "--warmup", "1"])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_peers_table_times_each_runtime_and_reports_the_rest_in_one_line(monkeypatch, tmp_path):
    def no_compiler(generator, x, bf16):
        raise RuntimeError("no C++ compiler found\nlong details")

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(peers, "_compiled", no_compiler)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real_find_spec(name, *a))
    figures = tmp_path / "peers.json"
    command = ["bench", "infer", "--peers", *TINY_BENCHES["infer"], "--precision", "fp32", "--json", str(figures)]
    assert cli.main(command) == 0
    result = json.loads(figures.read_text())
    rows = result["peers"]
    by_name = {row["peer"]: row for row in rows}
    assert [row["peer"] for row in rows][:3] == ["plain eager", "ours", "onnxruntime"]
    assert by_name["plain eager"]["ratio_to_plain"] == pytest.approx(1.0, abs=0.5)
    assert by_name["plain eager"]["max_difference"] == 0.0
    assert by_name["ours"]["max_difference"] < 1e-3 and by_name["ours"]["status"] == "ok"
    assert by_name["onnxruntime"]["max_difference"] < 1e-4 and by_name["onnxruntime"]["median_ms"] > 0
    assert by_name["openvino"]["status"] == "not installed" and "median_ms" not in by_name["openvino"]
    assert by_name["torch.compile"]["status"] == "failed: no C++ compiler found"
    printed = peers.peers_table(rows).text()
    assert "not installed" in printed and "failed: no C++ compiler found" in printed and "long details" not in printed
    # docs/benchmarks.md's section for it: the same rows, a runtime that could not run with its reason
    written = documented(figures, tmp_path)
    assert f"### `bench infer --peers` on {result['cpu']}, {result['date'][:10]}" in written
    assert "| openvino | f32 | - | - | - | - | not installed |" in written
    onnx = by_name["onnxruntime"]
    assert f"| onnxruntime | fp32 | {onnx['median_ms']:.1f} | {onnx['ratio_to_plain']:.2f} |" in written


def test_tiers_table_runs_each_reachable_tier_in_its_own_process(tmp_path, monkeypatch, capsys):
    impossible = tiers.Tier("AVX512_IMAGINARY", ("no_such_cpu_flag",), None)
    monkeypatch.setattr(tiers, "TIERS", (tiers.TIERS[-1], impossible))
    figures = tmp_path / "tiers.json"
    command = ["bench", "infer", "--tiers", *TINY_BENCHES["infer"], "--modes", "eval", "--json", str(figures)]
    assert cli.main(command) == 0
    printed = capsys.readouterr().out
    assert "AVX512_IMAGINARY  skipped: this CPU lacks no_such_cpu_flag" in printed
    row = next(line for line in printed.splitlines() if line.strip().startswith("none "))
    assert " eval " in row and ("fp32" in row or "bf16" in row)
    result = json.loads(figures.read_text())
    assert [tier["tier"] for tier in result["tiers"]] == ["none", "AVX512_IMAGINARY"]
    assert result["tiers"][0]["rows"][0]["mode"] == "eval"
    written = documented(figures, tmp_path)
    assert f"`edges2shoes {shlex.join(command)}`" in written
    assert "| AVX512_IMAGINARY | skipped: this CPU lacks no_such_cpu_flag |  |  |  |  |  |" in written
    assert "| none | eval | " in written


def test_a_tier_that_fails_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tiers, "TIERS", (tiers.TIERS[-1],))
    args = bench_args(weights=str(tmp_path / "missing.safetensors"), modes="eval", tiers=True)
    assert infer.run(args) == 0
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines() if line.strip().startswith("none "))
    assert "failed (exit" in line and "missing.safetensors" in line


def test_unreachable_tiers_name_what_the_cpu_lacks():
    avx2 = tiers.tier_named("avx2")
    assert tiers.unreachable_reason(avx2, flags={"sse2"}) == "this CPU lacks avx2, fma"
    assert tiers.unreachable_reason(avx2, flags={"avx2", "fma"}) is None
    assert tiers.unreachable_reason(tiers.tier_named("none"), flags=set()) is None
    env = tiers.tier_named("AVX2_VNNI").environment({"ONEDNN_MAX_CPU_ISA": "x", "PATH": "/bin"})
    assert env == {"ONEDNN_MAX_CPU_ISA": "AVX2_VNNI", "ATEN_CPU_CAPABILITY": "avx2", "PATH": "/bin"}
    assert tiers.tier_named("none").environment({"ONEDNN_MAX_CPU_ISA": "x", "ATEN_CPU_CAPABILITY": "y"}) == {}
