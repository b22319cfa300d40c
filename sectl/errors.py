"""Project exceptions.

Every error a user can cause derives from :class:`SectlError`, so the CLI can print it as one line
and exit non-zero without a traceback, while library users can catch one type.
"""

from __future__ import annotations

from pathlib import Path


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors
    that wrap a third-party failure."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class SectlError(Exception):
    """Base class for errors caused by input or configuration, not by a bug."""


class AudioError(SectlError):
    """A file could not be used as audio; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class OutputExistsError(SectlError):
    """An output would overwrite an existing file (or an input) without permission."""


class UsageError(SectlError):
    """The request itself is wrong (arguments that exclude each other, a bad setting): exit code 2."""


class ConfigError(UsageError):
    """A preset or override is invalid; the message names the key."""


class ModelError(UsageError):
    """A model name or file cannot do what was asked (one that cannot stream or export, a damaged or missing
    file): exit code 2, like any argument naming something unusable."""


class SectlWarning(UserWarning):
    """Something a user should know that does not stop the work (a fallback, a rebuilt cache entry): the
    CLI prints it as one ``warning:`` line on stderr; library users see it through :mod:`warnings`."""
