"""Matplotlib helpers: a headless backend and atomic PNG output (plots are optional extras of commands)."""

from __future__ import annotations

import io
from pathlib import Path

from sectl.fileutil import write_new


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | Path, overwrite: bool = False, dpi: int = 120) -> None:
    """Write ``fig`` as a PNG atomically; an existing file is replaced only with ``overwrite``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    write_new(path, buffer.getvalue(), overwrite)
