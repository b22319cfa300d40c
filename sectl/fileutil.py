"""File-system helpers shared by audio output, checkpoints and reports."""

from __future__ import annotations

import errno
import io
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Mapping, TextIO

from sectl.errors import OutputExistsError, SectlError, UsageError

TEMP_PREFIX = ".sectl-"
"""Every file sectl writes starts as a hidden temporary named ``.sectl-<random><suffix>`` beside its target
(short, whatever the target's name, so names near the file-system limit still work); folder scans skip
them, so an interrupted run's leftovers are never taken for inputs."""


def is_temporary(path: str | Path) -> bool:
    return Path(path).name.startswith(TEMP_PREFIX)


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a file-system error while writing ``path`` (permissions, a full disk, a file where a folder
    should be) into one :class:`SectlError` that names it."""
    try:
        yield
    except OSError as exc:
        raise SectlError(f"{path}: cannot write ({exc.strerror or type(exc).__name__})") from None


def write_all(stream: BinaryIO, payload: bytes) -> None:
    """All of ``payload`` to ``stream``, flushed. An unbuffered stream (``python -u``, ``PYTHONUNBUFFERED``: stdout
    is then a raw file) may take part of it, as a pipe whose reader leaves does: the rest is written again, so
    the loss surfaces as an error (``BrokenPipeError``) instead of a silently short output."""
    view = memoryview(payload)
    while view:
        written = stream.write(view)
        if written is None:  # a non-blocking stream that is full
            raise BlockingIOError(errno.EAGAIN, "output would block")
        view = view[written:]
    stream.flush()


def write_stdout(payload: bytes) -> None:
    """Bytes to standard output, flushed; a full disk or a closed pipe is one error, not a traceback."""
    import sys

    with stdout_errors():
        write_all(sys.stdout.buffer, payload)


def complete_text(stream: TextIO) -> TextIO:
    """``stream``, or a text layer like it over a buffered binary one where its own is a raw file (``python -u``):
    a text layer ignores how much of a write the raw file took, so tables and JSON cut short by a closed pipe
    would be lost without an error; a buffer writes the rest, and the closed pipe raises."""
    raw = getattr(stream, "buffer", None)
    if not isinstance(stream, io.TextIOWrapper) or not isinstance(raw, io.RawIOBase):
        return stream
    return io.TextIOWrapper(io.BufferedWriter(raw), encoding=stream.encoding, errors=stream.errors,
                            line_buffering=True, write_through=True)  # fmt: skip


@contextmanager
def stdout_errors() -> Iterator[None]:
    """Standard output that cannot be written (``> /dev/full``, a closed pipe): a usage error (exit 2), since
    where stdout goes is part of the command line."""
    try:
        yield
    except OSError as exc:
        raise UsageError(f"cannot write to standard output ({exc.strerror or type(exc).__name__})") from None


def make_folder(folder: str | Path) -> Path:
    """Create ``folder`` (and parents) and check that files can be created in it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SectlError(f"{folder}: exists and is not a folder (an output folder was expected here)")
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    return folder


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write via a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            commit(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def temp_beside(target: Path, suffix: str = ".tmp") -> str:
    """An empty temporary file in ``target``'s folder (same file system, so rename is atomic)."""
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=target.parent)
    os.close(fd)
    return tmp


def commit(tmp: str | Path, target: str | Path) -> None:
    """Give ``tmp`` the usual permissions (mkstemp makes 0600) and rename it over ``target``."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, target)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def check_new_file(path: str | Path | None, overwrite: bool = False, what: str = "output") -> None:
    """Refuse, before any work, a report or plot target that is a folder, or an existing file without
    ``overwrite``: finding out after minutes of scoring would throw the scores away."""

    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; the {what} needs a file name (e.g. {path / 'scores'}{path.suffix or ''})")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: output exists (use --overwrite to replace it)")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name one file (through links, ``..`` or hard links)."""
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def file_identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, else None: equal for every name of one file."""
    try:
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    return stat.st_dev, stat.st_ino


class InputTargetError(UsageError):
    """An output named one of the command's own inputs: refused whatever ``--overwrite`` says (exit 2)."""


@dataclass(frozen=True)
class Input:
    """Something a command reads, which no output of the same command may replace: a file, or a folder
    whose files ending in ``suffixes`` (every file when None: a run folder) it reads."""

    path: Path
    role: str
    suffixes: tuple[str, ...] | None = None

    def holds(self, target: Path) -> bool:
        if not self.path.exists() or not target.exists():
            return False  # what does not exist cannot be lost
        if not self.path.is_dir():
            return same_file(self.path, target)
        inside = target.resolve().is_relative_to(self.path.resolve())
        return inside and (self.suffixes is None or target.suffix.lower() in self.suffixes)


def inputs(role: str, paths: Iterable[str | Path | None] | str | Path | None,
           suffixes: tuple[str, ...] | None = None) -> list[Input]:  # fmt: skip
    """``Input`` records for one role's paths (``-`` for stdin and missing options are left out)."""
    if paths is None or isinstance(paths, (str, Path)):
        paths = [paths]
    return [Input(Path(p), role, suffixes) for p in paths if p is not None and str(p) != "-"]


def refuse_inputs(outputs: Mapping[str, str | Path | None], reads: Iterable[Input]) -> None:
    """Refuse any output (``what`` -> path) that is one of ``reads`` or a file of an input folder."""
    reads = list(reads)
    for what, target in outputs.items():
        if target is None or str(target) == "-":
            continue
        target = Path(target)
        for source in reads:
            if source.holds(target):
                where = "" if same_file(source.path, target) else f" (in {source.role} {source.path})"
                raise InputTargetError(f"{target}: is an input of this command{where or f' ({source.role})'}; "
                                       f"the {what} cannot replace it, even with --overwrite")  # fmt: skip


def check_outputs(outputs: Mapping[str, str | Path | None], reads: Iterable[Input], overwrite: bool = False) -> None:
    """The one check, before any work, of every output a command names against every input it reads.

    An input is never a target, whatever the flags: the error says it is an input (exit 2). Otherwise a
    file target follows :func:`check_new_file` (exists: only with ``overwrite``). ``outputs`` maps what
    each output is (``"--plot file"``) to its path; ``-`` (stdout) and None are skipped.
    """
    refuse_inputs(outputs, reads)
    for what, target in outputs.items():
        if target is None or str(target) == "-":
            continue
        target = Path(target)
        if not what.endswith("folder"):
            check_new_file(target, overwrite, what)
        elif target.exists() and not target.is_dir():
            raise UsageError(f"{target}: exists and is not a folder (the {what})")


def write_new(path: str | Path, payload: bytes, overwrite: bool = False) -> None:
    """Write a report or plot atomically, refusing to replace an existing file unless ``overwrite``."""
    if Path(path).exists() and not overwrite:
        raise OutputExistsError(f"{path}: output exists (use --overwrite to replace it)")
    atomic_write_bytes(path, payload)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
