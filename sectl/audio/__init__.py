"""Audio I/O: validated reading, atomic writing, file discovery and pairing."""

from sectl.audio.files import Pairing, find_audio_files, pair_files
from sectl.audio.io import STDIO, Audio, limit_peak, read_audio, resample, write_audio

__all__ = [
    "STDIO",
    "Audio",
    "Pairing",
    "find_audio_files",
    "limit_peak",
    "pair_files",
    "read_audio",
    "resample",
    "write_audio",
]
