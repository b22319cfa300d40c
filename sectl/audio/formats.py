"""The audio formats sectl reads and writes, by file suffix: light to import (no torch), so that commands
can check their inputs and outputs before the heavy imports."""

from __future__ import annotations

import soundfile as sf

_KNOWN_SUFFIXES = {
    ".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG", ".opus": "OGG", ".mp3": "MP3",
    ".aif": "AIFF", ".aiff": "AIFF", ".aifc": "AIFF", ".au": "AU", ".snd": "AU", ".caf": "CAF", ".w64": "W64",
    ".rf64": "RF64",
}  # fmt: skip
SUFFIX_FORMATS = {suffix: fmt for suffix, fmt in _KNOWN_SUFFIXES.items() if fmt in sf.available_formats()}
"""File suffix -> soundfile format, for every format this soundfile (libsndfile) reads and writes."""
AUDIO_EXTENSIONS = tuple(SUFFIX_FORMATS)
