"""Batch progress in seconds of input audio: it moves chunk by chunk within a long file, so a one-hour
recording shows progress and a true time left, not one step at its end."""

from __future__ import annotations

import threading
from typing import Callable

import soundfile as sf

from sectl.audio.io import STDIO


def input_seconds(path: str) -> float:
    """A file's duration from its header (0 where it cannot be read: that file fails later, by name)."""
    if str(path) == STDIO:
        return 0.0  # stdin is read once, by the job itself
    try:
        info = sf.info(path)
        return info.frames / info.samplerate
    except Exception:  # noqa: BLE001 - any unreadable input counts for nothing here
        return 0.0


class SecondsProgress:
    """``on_progress(done, total)`` in seconds of the batch's inputs. ``chunk(src, s)`` as a job reads a
    chunk of ``src``; ``file_done(src)`` when it is finished (its whole length counts, whatever the
    chunks said). Safe to call from several threads."""

    def __init__(self, sources: list[str], on_progress: Callable[[float, float], None] | None) -> None:
        self.on_progress = on_progress
        self.seconds = {src: input_seconds(src) for src in sources} if on_progress else {}
        if self.seconds and not any(self.seconds.values()):  # no durations to read (latent files): count files
            self.seconds = dict.fromkeys(sources, 1.0)
        self.total = sum(self.seconds.values())
        self.finished = 0.0
        self.partial: dict[str, float] = {}
        self.lock = threading.Lock()

    def chunk(self, src: str, seconds: float) -> None:
        with self.lock:
            self.partial[src] = self.partial.get(src, 0.0) + seconds
        self._tell()

    def file_done(self, src: str) -> None:
        with self.lock:
            self.partial.pop(src, None)
            self.finished += self.seconds.get(src, 0.0)
        self._tell()

    def _tell(self) -> None:
        if self.on_progress:
            with self.lock:
                done = self.finished + sum(self.partial.values())
            self.on_progress(min(done, self.total), self.total)
