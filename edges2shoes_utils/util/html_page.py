"""The HTML pages the project writes (the evaluation report, the demo's page): one look, one writer.

A page is a title (the browser tab and the heading) and a body of sections; it is plain HTML with
its style inline, so a report folder can be opened, copied or attached without anything else, and
it is written atomically, like every other file.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Sequence

from .atomic import atomic_write_text

# One stylesheet for every page; `.note` is grey small print, `.ok`/`.bad` a passed/failed verdict,
# `.curves` a row of plots two to a line.
STYLE = (
    "body{{font-family:sans-serif;margin:2em;max-width:{max_width}px}}table{{border-collapse:collapse}}"
    "td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}"
    "img{{max-width:100%;border:1px solid #eee}}.curves img{{width:48%;margin-right:1%}}.note{{color:#555}}"
    ".ok{{color:#070}}.bad{{color:#a00}}"
)


def html_page(title: str, sections: Sequence[str], *, max_width: int = 1100) -> str:
    """A whole page: `title` as tab title and heading, then `sections` (HTML) one per line."""
    head = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>\n"
        f"<style>{STYLE.format(max_width=max_width)}</style></head><body>"
    )
    return "\n".join([head, f"<h1>{html.escape(title)}</h1>", *sections, "</body></html>"]) + "\n"


def write_html_page(path: str | os.PathLike, title: str, sections: Sequence[str], *, max_width: int = 1100) -> Path:
    """Write `html_page(...)` to `path` atomically; returns the path."""
    atomic_write_text(path, html_page(title, sections, max_width=max_width))
    return Path(path)


def relative_url(path: Path, folder: Path) -> str:
    """`path` as a link from a page in `folder` (escaped for an attribute)."""
    return html.escape(Path(path).relative_to(folder).as_posix())


def image_tag(path: Path | None, folder: Path, alt: str) -> str:
    """An <img> of `path` for a page in `folder`; nothing for a picture that was not made."""
    if path is None:
        return ""
    return f"<img src='{relative_url(path, folder)}' alt='{html.escape(alt)}'>"


def link_tag(path: Path, folder: Path, label: str) -> str:
    """An <a> to `path` for a page in `folder`."""
    return f"<a href='{relative_url(path, folder)}'>{html.escape(label)}</a>"
