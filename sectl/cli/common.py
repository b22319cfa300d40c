"""What every command shares: consoles, exit codes, error reporting, progress bars."""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column

from sectl.errors import SectlError, SectlWarning, UsageError
from sectl.fileutil import stdout_errors

EXIT_OK = 0
EXIT_FAILURE = 1  # an error, or some inputs of a batch failed
EXIT_USAGE = 2  # bad arguments
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it; SIGTERM gives 143

# Results on stdout. Redirected to a file or a pipe, tables are not squeezed into 80 columns (Rich would
# cut numbers to "1.7…"): full values, and no colours (Rich's default off a terminal).
class _Stdout:
    """sys.stdout as it is at each call (test runners swap it), with write failures as one usage error."""

    def write(self, text: str) -> int:
        with stdout_errors():
            return sys.stdout.write(text)

    def flush(self) -> None:
        with stdout_errors():
            sys.stdout.flush()

    def isatty(self) -> bool:
        return sys.stdout.isatty()


out = Console(file=_Stdout()) if sys.stdout.isatty() else Console(file=_Stdout(), width=100_000)
err = Console(stderr=True)  # progress, warnings, errors: stderr only


DEVICE_HELP = "Where models compute: auto (CUDA when present), cpu, cuda or cuda:N."


def reflow(text: str) -> str:
    """Join the wrapped lines of each help paragraph (Rich wraps to the terminal); keep indented examples."""
    blocks = text.strip().split("\n\n")
    return "\n\n".join(b if b.startswith("  ") else " ".join(line.strip() for line in b.splitlines()) for b in blocks)


def fail(message: str, code: int = EXIT_FAILURE) -> None:
    """Print one error line on stderr and exit. The message is text, not markup: a file name or a rater id in it
    that looks like a tag (``[/x]``) is printed as it is, not taken for one."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Slurm, Kubernetes and ``timeout`` send), raised where Ctrl-C's KeyboardInterrupt
    would be, so both stop alike: finished outputs kept, no partial file, a summary."""


_stopped_by = signal.SIGINT


def _terminate(signum: int, frame: Any) -> None:
    global _stopped_by
    _stopped_by = signal.Signals(signum)
    raise Terminated()


def interrupted_exit_code() -> int:
    """128 + the signal that stopped the command (130 for Ctrl-C, 143 for SIGTERM), as shells report it."""
    return 128 + int(_stopped_by)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def warnings_as_lines() -> Iterator[None]:
    """The library's :class:`SectlWarning` as one ``warning:`` line on stderr (other warnings as Python shows them)."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, SectlWarning):
            warn(str(message))
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn :class:`SectlError` into one line on stderr and an exit code (no traceback): 2 for bad
    arguments or configuration (:class:`UsageError`), 1 for everything else, 130/143 when stopped by
    Ctrl-C/SIGTERM."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with sigterm_as_interrupt(), warnings_as_lines():
                return fn(*args, **kwargs)
        except UsageError as exc:
            fail(str(exc), code=EXIT_USAGE)
        except SectlError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("terminated" if _stopped_by == signal.SIGTERM else "interrupted", code=interrupted_exit_code())

    return wrapper


def given(ctx: typer.Context, *names: str) -> list[str]:
    """The options among ``names`` (parameter names) that the command line set, by their first spelling: a
    flag that does not apply must be refused even when its value equals the default."""
    spelled = {param.name: param.opts[0] for param in ctx.command.params}
    return [spelled[name] for name in names if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"]


def report_skipped(unreadable: list[str], skipped: list[str]) -> None:
    """What a batch left out, on stderr: files in formats soundfile cannot decode, and --skip-existing."""
    if unreadable:
        from pathlib import Path

        from sectl.audio.files import describe_unreadable

        warn(describe_unreadable([Path(p) for p in unreadable]))
    if skipped:
        err.print(f"skipped {len(skipped)} input(s) whose output exists (--skip-existing)", highlight=False)


def print_json(payload: Any) -> None:
    """Exactly one JSON document on stdout, nothing else."""
    with stdout_errors():
        sys.stdout.write(json.dumps(payload, indent=2, allow_nan=False) + "\n")
        sys.stdout.flush()


@contextmanager
def progress_bar(description: str, total: float, enabled: bool = True, unit: str = "") -> Iterator[Callable[[float, float], None]]:
    """A Rich progress bar on stderr; yields an ``on_progress(done, total)`` callback. The bar gives way
    first, so the count and the time left stay readable at 80 columns. Off a terminal (``2>log``) there is no
    bar: a transient one draws nothing there, and Rich would end it with a blank line."""
    if not enabled or not err.is_interactive:
        yield lambda done, total: None
        return
    count = TextColumn(f"{{task.completed:.0f}}/{{task.total:.0f}} {unit}".rstrip()) if unit else MofNCompleteColumn()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=10)),
        count,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        expand=True,
    )
    with progress:
        task = progress.add_task(description, total=total)

        def update(done: int, total_: int) -> None:
            progress.update(task, completed=done, total=total_)

        yield update
