"""Rendering ``index.html``: the package's page.html with its style, script and data inline, so the page is one
file that opens from ``file://`` and on any static host, and requests nothing from any network."""

from __future__ import annotations

import html
import json
import re
from importlib import resources

from sectl import __version__

PAGE_FORMAT = 1
"""Version of the data page.js reads; raised when its structure changes."""


def asset(name: str) -> str:
    """A file of the page shipped in this package (page.html, page.js, page.css)."""
    return resources.files("sectl.report").joinpath(name).read_text(encoding="utf-8")


def script_json(data: dict) -> str:
    """``data`` as JSON that cannot end its ``<script>`` element early (``</script>``, ``<!--``)."""
    text = json.dumps(data, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(data: dict) -> str:
    """The whole page for ``data`` (the structure page.js reads: see :func:`sectl.report.build.page_data`)."""
    fields = {"title": html.escape(data["title"]), "version": __version__, "style": asset("page.css"),
              "script": asset("page.js"), "data": script_json(data)}  # fmt: skip
    return re.sub(r"\{\{(\w+)\}\}", lambda m: fields[m.group(1)], asset("page.html"))  # one pass: inserted text is never re-read
