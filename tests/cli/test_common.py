"""What every command shares (sectl.cli.common): progress bars on stderr."""

from __future__ import annotations

import io

from rich.console import Console

from sectl.cli import common


def test_progress_bars_leave_a_redirected_stderr_alone_and_draw_on_a_terminal(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(common, "err", Console(file=log))  # `2>log`: not a terminal
    with common.progress_bar("enhancing", total=2) as on_progress:
        on_progress(1, 2)
    assert log.getvalue() == ""  # Rich ended each bar with a blank line
    terminal = io.StringIO()
    monkeypatch.setattr(common, "err", Console(file=terminal, force_terminal=True, force_interactive=True, width=80))
    with common.progress_bar("enhancing", total=2) as on_progress:
        on_progress(1, 2)
    assert "enhancing" in terminal.getvalue()
