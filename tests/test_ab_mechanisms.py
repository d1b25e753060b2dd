"""tools/ab_mechanisms.py, the paired A/B that decides which speed mechanisms stay, still runs: one
clean-up row, in-process, with the fewest rounds it takes. What it measures is for the command to
say (docs/benchmarks.md); the test checks the row's shape and that A and B gave the same pixels."""

from __future__ import annotations

import json

from bench_support import load_tool


def test_a_clean_up_row_runs_and_checks_its_outputs_agree(tmp_path, capsys):
    tool = load_tool("ab_mechanisms")
    out = tmp_path / "ab.json"
    assert tool.main(["--only", "opencv filters", "--rounds", "4", "--warmup", "0", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    (row,) = figures["rows"]
    assert (row["area"], row["mechanism"], row["rounds"]) == ("clean-up", "opencv filters", 4)
    assert row["same_output"] is True
    assert row["median_ratio"] > 0 and row["keep"] == (row["median_ratio"] <= figures["keep_at_most"])
    assert "| clean-up | opencv filters |" in capsys.readouterr().out
