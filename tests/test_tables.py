"""util/tables.py: one table, as aligned text and as Markdown, with the same cells in both."""

from __future__ import annotations

import pytest

from edges2shoes_utils.util.tables import Table, cell


def test_text_aligns_numbers_right_and_words_left_under_a_rule():
    table = Table(["runtime", "median ms", "x plain"], [["plain eager", "66.0", "1.00"], ["ours", "20.4", "0.31"]])
    assert table.text(indent="") == "\n".join([
        "runtime      median ms  x plain",
        "-------------------------------",
        "plain eager       66.0     1.00",
        "ours              20.4     0.31",
    ])


def test_markdown_marks_number_columns_right_aligned_and_escapes_pipes():
    table = Table(["what", "ratio"], [["a|b", "0.5x"], ["c", "-"]])
    assert table.markdown() == "\n".join([
        "| what | ratio |",
        "| --- | ---: |",
        "| a\\|b | 0.5x |",
        "| c | - |",
    ])


def test_a_short_row_ends_in_a_note_across_the_remaining_columns():
    table = Table(["tier", "mode", "fast ms"], [["none", "eval", "20.1"], ["AVX512_CORE_BF16", "skipped: lacks avx512_bf16"]])
    lines = table.text(indent="  ").splitlines()
    assert lines[2] == "  none              eval     20.1"
    assert lines[3] == "  AVX512_CORE_BF16  skipped: lacks avx512_bf16"  # the note sets no column's width
    assert table.markdown().splitlines()[3] == "| AVX512_CORE_BF16 | skipped: lacks avx512_bf16 |  |"


def test_cells_show_none_bools_and_floats_one_way():
    assert [cell(None), cell(True), cell(False), cell(1234.567), cell(0.123, 2), cell("x"), cell(3)] == [
        "-", "yes", "no", "1,234.6", "0.12", "x", "3"]
    assert Table(["a", "b"], [[None, 2.26]]).markdown().splitlines()[2] == "| - | 2.3 |"


def test_explicit_alignment_and_bad_shapes_are_refused_clearly():
    assert Table(["a", "b"], [["1", "2"]], align="<<").markdown().splitlines()[1] == "| --- | --- |"
    with pytest.raises(ValueError, match="one '<' or '>' per column"):
        Table(["a", "b"], [["1", "2"]], align="<").text()
    with pytest.raises(ValueError, match="3 cells for 2 columns"):
        Table(["a", "b"], [["1", "2", "3"]]).markdown()


def test_html_escapes_every_cell_and_bolds_the_cells_asked_for():
    table = Table(["weights", "L1"], [["<mine>", 0.25], ["official & co", None]])
    assert table.html(bold=[(0, 1)]) == (
        "<table><tr><th>weights</th><th>L1</th></tr>"
        "<tr><td>&lt;mine&gt;</td><td><b>0.2</b></td></tr>"
        "<tr><td>official &amp; co</td><td>-</td></tr></table>"
    )
