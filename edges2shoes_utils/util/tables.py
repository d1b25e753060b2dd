"""Tables of figures, rendered as aligned text for the terminal, as Markdown for reports, model
cards and docs/benchmarks.md, and as HTML for the report pages. One implementation, so that a bench's printed table and its documented
one show the same columns and the same figures."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Sequence

# A cell that reads as a number (1,234 / 0.31 / -2.1e-06 / 57% / 3.2x / inf) is right-aligned.
_NUMBER = re.compile(r"[-+]?(?:[\d,]*\.?\d+(?:e[-+]?\d+)?|inf)\s*[%x]?", re.IGNORECASE)
_EMPTY = ("", "-")


def cell(value: object, digits: int = 1) -> str:
    """How a value shows in a table: None as "-", a bool as yes/no, a float with `digits` decimals and
    thousands separators, anything else as str()."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


@dataclass
class Table:
    """Rows of cells under headers; each cell goes through `cell` (so pre-format a float that needs
    other than one decimal). Columns of numbers are right-aligned and text left, unless `align` gives
    one '<' or '>' per column. A row shorter than the headers ends in a note that runs on across the
    remaining columns: a tier that was skipped, a runtime that failed."""

    headers: Sequence[str]
    rows: list[Sequence[object]] = field(default_factory=list)
    align: str | None = None

    def text(self, indent: str = "  ") -> str:
        """Aligned columns two spaces apart, a rule under the headers; for the terminal."""
        rows = self._cells()
        widths = [max([len(self.headers[i])] + [len(row[i]) for row in rows if i < _spanning(row, self.headers)])
                  for i in range(len(self.headers))]
        aligns = self._aligns(rows)

        def line(cells: Sequence[str]) -> str:
            end = _spanning(cells, self.headers)
            parts = [_pad(text, widths[i], aligns[i]) for i, text in enumerate(cells[:end])] + list(cells[end:])
            return (indent + "  ".join(parts)).rstrip()

        rule = indent + "-" * (sum(widths) + 2 * (len(widths) - 1))
        return "\n".join([line(list(self.headers)), rule, *(line(row) for row in rows)])

    def markdown(self) -> str:
        """A GitHub-flavoured Markdown table; a note row's remaining cells are left empty."""
        rows = self._cells()
        rule = ["---:" if a == ">" else "---" for a in self._aligns(rows)]

        def line(cells: Sequence[str]) -> str:
            padded = [_escape(text) for text in cells] + [""] * (len(self.headers) - len(cells))
            return "| " + " | ".join(padded) + " |"

        return "\n".join([line(list(self.headers)), line(rule), *(line(row) for row in rows)])

    def html(self, bold: Sequence[tuple[int, int]] = ()) -> str:
        """An HTML table, every cell escaped; the cells at (row, column) in `bold` are in bold (the
        best score of each column, say)."""
        emphasised = set(bold)

        def data(text: str, at: tuple[int, int]) -> str:
            text = html.escape(text)
            return f"<td><b>{text}</b></td>" if at in emphasised else f"<td>{text}</td>"

        head = "".join(f"<th>{html.escape(text)}</th>" for text in self.headers)
        body = "".join("<tr>" + "".join(data(text, (r, c)) for c, text in enumerate(row)) + "</tr>"
                       for r, row in enumerate(self._cells()))
        return f"<table><tr>{head}</tr>{body}</table>"

    def _cells(self) -> list[list[str]]:
        for row in self.rows:
            if len(row) > len(self.headers):
                raise ValueError(f"a row has {len(row)} cells for {len(self.headers)} columns: {row!r}")
        return [[cell(value) for value in row] for row in self.rows]

    def _aligns(self, rows: list[list[str]]) -> str:
        if self.align is not None:
            if len(self.align) != len(self.headers) or set(self.align) - {"<", ">"}:
                raise ValueError(f"align needs one '<' or '>' per column ({len(self.headers)}), got {self.align!r}")
            return self.align
        aligns = ""
        for i in range(len(self.headers)):
            column = [row[i] for row in rows if i < _spanning(row, self.headers) and row[i] not in _EMPTY]
            aligns += ">" if all(_NUMBER.fullmatch(text) for text in column) else "<"  # an empty column too
        return aligns


def _spanning(row: Sequence[str], headers: Sequence[str]) -> int:
    """How many of the row's cells sit in their own column: all of a full row, all but the note of
    a short one."""
    return len(row) if len(row) == len(headers) else len(row) - 1


def _pad(text: str, width: int, align: str) -> str:
    return text.rjust(width) if align == ">" else text.ljust(width)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


__all__ = ["Table", "cell"]
