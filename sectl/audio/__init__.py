"""Audio I/O: validated reading, atomic writing, file discovery and pairing.

The names below load their modules on first use (PEP 562), so that ``sectl.audio.formats`` can be
imported, as commands do to check their arguments, without importing torch.
"""

from __future__ import annotations

from sectl.lazy import lazy_attributes

_LAZY = {
    "STDIO": "sectl.audio.io",
    "Audio": "sectl.audio.io",
    "limit_peak": "sectl.audio.io",
    "read_audio": "sectl.audio.io",
    "resample": "sectl.audio.io",
    "write_audio": "sectl.audio.io",
    "Pairing": "sectl.audio.files",
    "find_audio_files": "sectl.audio.files",
    "pair_files": "sectl.audio.files",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_attributes(__name__, _LAZY)
