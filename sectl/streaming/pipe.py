"""WAV (or raw PCM) in from a pipe as it arrives, enhanced WAV out as it goes: ``sectl enhance --stream``.

libsndfile wants a seekable file or the whole input, so the live header is parsed here: recorders
writing to a pipe (``arecord``, ``sox``, ``ffmpeg``) do not know the length and put 0 or 0xFFFFFFFF
in the RIFF and data sizes; both mean "until the end of the stream". The output header says the
same, and every block is flushed as soon as it is enhanced.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import numpy as np
import torch

from sectl.enhance import FULLY_WET, DryWet
from sectl.errors import AudioError

UNKNOWN_SIZE = 0xFFFFFFFF
READ_BYTES = 4096
PCM_FORMAT, FLOAT_FORMAT, EXTENSIBLE_FORMAT = 1, 3, 0xFFFE
SAMPLE_TYPES = {(PCM_FORMAT, 16): "<i2", (PCM_FORMAT, 32): "<i4", (FLOAT_FORMAT, 32): "<f4"}


@dataclass(frozen=True)
class PcmFormat:
    sample_rate: int
    channels: int
    dtype: str  # numpy: "<i2", "<i4" or "<f4"

    @property
    def frame_bytes(self) -> int:
        return np.dtype(self.dtype).itemsize * self.channels

    def decode(self, payload: bytes) -> torch.Tensor:
        """Whole frames of ``payload`` -> float32 ``(channels, n)`` in [-1, 1]."""
        data = np.frombuffer(payload, self.dtype).reshape(-1, self.channels)
        if data.dtype.kind == "i":
            data = data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
        return torch.from_numpy(np.ascontiguousarray(data.T, dtype=np.float32))

    def encode(self, samples: torch.Tensor) -> bytes:
        data = samples.T.numpy()
        if np.dtype(self.dtype).kind == "i":
            scale = float(2 ** (8 * np.dtype(self.dtype).itemsize - 1))
            data = np.clip(np.round(data * scale), -scale, scale - 1)
        return data.astype(self.dtype).tobytes()

    def header(self) -> bytes:
        """A streaming WAV header: unknown RIFF and data sizes."""
        bits = 8 * np.dtype(self.dtype).itemsize
        tag = FLOAT_FORMAT if self.dtype == "<f4" else PCM_FORMAT
        fmt = struct.pack("<HHIIHH", tag, self.channels, self.sample_rate, self.sample_rate * self.frame_bytes,
                          self.frame_bytes, bits)  # fmt: skip
        return b"RIFF" + struct.pack("<I", UNKNOWN_SIZE) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + \
            b"data" + struct.pack("<I", UNKNOWN_SIZE)  # fmt: skip


class _Reader:
    """Exact reads from a pipe that may deliver a few bytes at a time."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self.stream, self.name = stream, name
        self.read_some: Callable[[int], bytes] = getattr(stream, "read1", stream.read)

    def exactly(self, n: int, what: str) -> bytes:
        data = b""
        while len(data) < n:
            more = self.read_some(n - len(data))
            if not more:
                raise AudioError(self.name, f"stream ended inside the WAV header ({what})")
            data += more
        return data


def read_wav_header(stream: BinaryIO, name: str = "<stdin>") -> tuple[PcmFormat, int | None]:
    """The format and the data size (None: until the end) of a WAV stream, leaving it at the samples."""
    reader = _Reader(stream, name)
    riff = reader.exactly(12, "RIFF")
    if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise AudioError(name, "not a WAV stream (use --raw RATE for headerless 16-bit PCM)")
    fmt = None
    while True:
        chunk, size = struct.unpack("<4sI", reader.exactly(8, "chunk header"))
        if chunk == b"data":
            if fmt is None:
                raise AudioError(name, "WAV data before its fmt chunk")
            return fmt, None if size in (0, UNKNOWN_SIZE) else size
        body = reader.exactly(size + (size & 1), chunk.decode("latin-1"))
        if chunk == b"fmt ":
            fmt = _parse_fmt(body, name)


def _parse_fmt(body: bytes, name: str) -> PcmFormat:
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == EXTENSIBLE_FORMAT and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID starts with the format tag
    dtype = SAMPLE_TYPES.get((tag, bits))
    if dtype is None or channels < 1 or rate < 1:
        raise AudioError(name, f"unsupported WAV stream ({bits}-bit, format {tag}, {channels} channel(s), {rate} Hz); "
                               "streams take 16/32-bit PCM or 32-bit float")  # fmt: skip
    return PcmFormat(rate, channels, dtype)


def read_blocks(stream: BinaryIO, fmt: PcmFormat, size: int | None = None) -> Iterator[torch.Tensor]:
    """Sample blocks as they arrive (whatever the pipe delivers, in whole frames) until EOF or ``size`` bytes."""
    read_some = getattr(stream, "read1", stream.read)
    left, carry = size, b""
    while left is None or left > 0:
        data = read_some(READ_BYTES if left is None else min(READ_BYTES, left))
        if not data:
            break
        if left is not None:
            left -= len(data)
        data = carry + data
        whole = len(data) - len(data) % fmt.frame_bytes
        carry = data[whole:]
        if whole:
            yield fmt.decode(data[:whole])


def stream_enhance(model: object, source: BinaryIO, sink: BinaryIO, raw_rate: int | None = None,
                   dry_wet: DryWet = FULLY_WET, name: str = "<stdin>") -> int:  # fmt: skip
    """Enhance ``source`` into ``sink`` block by block with a loaded (or exported stream) ``model``;
    returns the number of frames written. ``raw_rate``: headerless 16-bit mono PCM in and out."""
    from sectl.streaming import Streamer, frame_runner

    runner = frame_runner(model)  # refuses a model that cannot stream before reading anything
    if raw_rate is None:
        fmt, size = read_wav_header(source, name)
    else:
        fmt, size = PcmFormat(raw_rate, 1, "<i2"), None
    streamer = Streamer(runner, fmt.sample_rate, fmt.channels, dry_wet)
    if raw_rate is None:
        sink.write(fmt.header())
        sink.flush()
    written = 0
    for block in read_blocks(source, fmt, size):
        written += _write(sink, fmt, streamer.feed(block))
    return written + _write(sink, fmt, streamer.flush())


def _write(sink: BinaryIO, fmt: PcmFormat, samples: torch.Tensor) -> int:
    if samples.shape[-1]:
        sink.write(fmt.encode(samples))
        sink.flush()
    return samples.shape[-1]
