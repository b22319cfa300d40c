"""Matplotlib helpers: a headless backend and atomic PNG output (plots are optional extras of commands)."""

from __future__ import annotations

import io
from pathlib import Path

from sectl.fileutil import atomic_write_bytes


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | Path, dpi: int = 120) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
