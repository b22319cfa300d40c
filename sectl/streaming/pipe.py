"""WAV (or raw PCM) in from a pipe as it arrives, enhanced WAV out as it goes: ``sectl enhance --stream``.

libsndfile wants a seekable file or the whole input, so the live header is parsed here: recorders
writing to a pipe (``arecord``, ``sox``, ``ffmpeg``) do not know the length and put 0 or 0xFFFFFFFF
in the RIFF and data sizes; both mean "until the end of the stream". The output header says the
same, and every block is flushed as soon as it is enhanced; an output that can be rewritten (a file,
not a pipe) gets the real sizes at the end, so it is an ordinary WAV.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import numpy as np
import torch

from sectl.signal import FULLY_WET, DryWet
from sectl.errors import AudioError
from sectl.options import MAX_STREAM_RATE, MIN_STREAM_RATE
from sectl.fileutil import write_all

UNKNOWN_SIZE = 0xFFFFFFFF
READ_BYTES = 4096
PCM_FORMAT, FLOAT_FORMAT, EXTENSIBLE_FORMAT = 1, 3, 0xFFFE
SAMPLE_TYPES = {(PCM_FORMAT, 16): "<i2", (PCM_FORMAT, 32): "<i4", (FLOAT_FORMAT, 32): "<f4"}
MIN_RATE, MAX_RATE = MIN_STREAM_RATE, MAX_STREAM_RATE
"""Sample rates a stream may have: below 1 kHz nothing is speech (and one 4 KiB read would be seconds of
model input); 768 kHz is the highest rate audio interfaces offer (the WAV header's byte rate must fit 32 bits)."""
MAX_CHANNELS = 64  # more than any live source; keeps the header's byte rate within 32 bits at MAX_RATE
HEADER_BYTES = 44  # what :meth:`PcmFormat.header` writes; the RIFF size is at offset 4, the data size at 40
FMT_LIMIT = 1 << 16  # a fmt chunk is 16 to 40 bytes; a larger one is not a WAV header


def check_rate(rate: int, name: str = "<stdin>") -> int:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(name, f"sample rate {rate} Hz is outside what streams take ({MIN_RATE} to {MAX_RATE} Hz)")
    return rate


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
        return torch.from_numpy(np.array(data.T, dtype=np.float32, order="C"))  # a copy: the bytes are read-only

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

    def at_most(self, n: int) -> bytes:
        """Up to ``n`` bytes: fewer only where the stream ends."""
        data = b""
        while len(data) < n and (more := self.read_some(n - len(data))):
            data += more
        return data

    def skip(self, n: int, what: str) -> None:
        """Pass over ``n`` bytes (a metadata chunk, possibly large) without keeping them."""
        while n > 0:
            n -= len(self.exactly(min(n, READ_BYTES), what))


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
        if chunk != b"fmt ":
            reader.skip(size + (size & 1), chunk.decode("latin-1"))
        elif size > FMT_LIMIT:
            raise AudioError(name, f"WAV fmt chunk of {size} bytes (a fmt chunk holds 16 to 40)")
        else:
            fmt = _parse_fmt(reader.exactly(size + (size & 1), "fmt"), name)


def _parse_fmt(body: bytes, name: str) -> PcmFormat:
    if len(body) < 16:
        raise AudioError(name, f"WAV fmt chunk of {len(body)} bytes (a fmt chunk holds at least 16)")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == EXTENSIBLE_FORMAT and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID starts with the format tag
    dtype = SAMPLE_TYPES.get((tag, bits))
    if dtype is None or not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(name, f"unsupported WAV stream ({bits}-bit, format {tag}, {channels} channel(s), {rate} Hz); "
                               f"streams take 16/32-bit PCM or 32-bit float, 1 to {MAX_CHANNELS} channels")  # fmt: skip
    return PcmFormat(check_rate(rate, name), channels, dtype)


def read_blocks(stream: BinaryIO, fmt: PcmFormat, size: int | None = None, name: str = "<stdin>",
                on_warning: Callable[[str], None] | None = None, start: bytes = b"") -> Iterator[torch.Tensor]:  # fmt: skip
    """Sample blocks as they arrive (whatever the pipe delivers, in whole frames) until EOF or ``size`` bytes;
    ``start``: bytes already read. A last partial frame is dropped, and ``on_warning`` is told how much."""
    read_some = getattr(stream, "read1", stream.read)
    left, carry = size, start
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
    if carry:
        (on_warning or _warn)(f"{name}: the stream ended inside a sample frame ({fmt.frame_bytes} bytes); its last "
                              f"{len(carry)} byte(s) were dropped")  # fmt: skip


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def stream_enhance(model: object, source: BinaryIO, sink: BinaryIO, raw_rate: int | None = None,
                   dry_wet: DryWet = FULLY_WET, name: str = "<stdin>",
                   on_warning: Callable[[str], None] = _warn) -> int:  # fmt: skip
    """Enhance ``source`` into ``sink`` block by block with a loaded (or exported stream) ``model``, or a
    frame runner chosen for it (:func:`sectl.engines.stream_runner`);
    returns the number of frames written. ``raw_rate``: headerless 16-bit mono PCM in and out.
    ``on_warning`` hears, in one line each, what the output will not show (bytes dropped, a header in raw PCM)."""
    from sectl.streaming import Streamer, frame_runner

    runner = model if hasattr(model, "initial_state") else frame_runner(model)  # refuses one that cannot stream, before reading
    start = b""
    if raw_rate is None:
        fmt, size = read_wav_header(source, name)
    else:
        fmt, size = PcmFormat(check_rate(raw_rate, name), 1, "<i2"), None
        start = _Reader(source, name).at_most(4)
        if start == b"RIFF":
            on_warning(f"{name}: raw PCM that starts like a WAV file ('RIFF'): its header will play as a click "
                       "(leave out --raw to read WAV)")  # fmt: skip
    streamer = Streamer(runner, fmt.sample_rate, fmt.channels, dry_wet)
    header_at = _rewritable_position(sink) if raw_rate is None else None
    if raw_rate is None:
        write_all(sink, fmt.header())
    written = 0
    for block in read_blocks(source, fmt, size, name, on_warning, start):
        written += _write(sink, fmt, streamer.feed(block))
    written += _write(sink, fmt, streamer.flush())
    if header_at is not None:
        _patch_sizes(sink, header_at, written * fmt.frame_bytes)
    return written


def _write(sink: BinaryIO, fmt: PcmFormat, samples: torch.Tensor) -> int:
    if samples.shape[-1]:
        write_all(sink, fmt.encode(samples))
    return samples.shape[-1]


def _rewritable_position(sink: BinaryIO) -> int | None:
    """Where the header will start, if ``sink`` can be rewritten there: seekable, and not appending (``>>``:
    every write lands at the end, a patch too)."""
    try:
        if not sink.seekable():
            return None
        position = sink.tell()
    except (OSError, ValueError):
        return None
    try:
        import fcntl

        if fcntl.fcntl(sink.fileno(), fcntl.F_GETFL) & os.O_APPEND:
            return None
    except (ImportError, OSError, ValueError, io.UnsupportedOperation):
        pass  # no descriptor (an in-memory buffer) or no fcntl: nothing says it appends
    return position


def _patch_sizes(sink: BinaryIO, header_at: int, data_bytes: int) -> None:
    """The real RIFF and data sizes in the streaming header (kept unknown past 4 GiB, which they cannot say)."""
    if HEADER_BYTES - 8 + data_bytes > UNKNOWN_SIZE - 1:
        return
    end = sink.tell()
    sink.seek(header_at + 4)
    write_all(sink, struct.pack("<I", HEADER_BYTES - 8 + data_bytes))
    sink.seek(header_at + HEADER_BYTES - 4)
    write_all(sink, struct.pack("<I", data_bytes))
    sink.seek(end)
