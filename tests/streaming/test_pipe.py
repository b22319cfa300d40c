"""Live WAV/raw PCM pipes (sectl.streaming.pipe): header edges answer in one line, empty streams give empty
output, what is dropped is said, every byte reaches the sink, a rewritable output is a normal WAV."""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from sectl.errors import AudioError
from sectl.models import build_enhancer
from sectl.streaming.pipe import PcmFormat, read_wav_header, stream_enhance


@pytest.fixture(scope="module")
def nsnet2():
    torch.manual_seed(0)
    return build_enhancer("nsnet2", "tiny").eval()  # 16 kHz


def wav_header(fmt_body: bytes, data_size: int = 0xFFFFFFFF) -> bytes:
    fmt = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body
    return b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + fmt + b"data" + struct.pack("<I", data_size)


def pcm16_fmt(rate: int, channels: int = 1) -> bytes:
    return struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)


@pytest.mark.parametrize("header,message", [
    (wav_header(pcm16_fmt(16000)[:10]), "<stdin>: WAV fmt chunk of 10 bytes (a fmt chunk holds at least 16)"),
    (wav_header(struct.pack("<HHIIHH", 1, 1, 4_000_000_000, 0, 2, 16)), "<stdin>: sample rate 4000000000 Hz is outside"),
    (wav_header(pcm16_fmt(1)), "<stdin>: sample rate 1 Hz is outside what streams take (1000 to 768000 Hz)"),
    (wav_header(pcm16_fmt(999)), "sample rate 999 Hz"),
    (wav_header(pcm16_fmt(768_001)), "sample rate 768001 Hz"),
    (wav_header(pcm16_fmt(16000, channels=65)), "65 channel(s)"),
    (b"RIFF" + b"\xff" * 4 + b"WAVEfmt " + struct.pack("<I", 1 << 30), "WAV fmt chunk of 1073741824 bytes"),
])  # fmt: skip
def test_bad_headers_are_one_audio_error(header, message):
    with pytest.raises(AudioError) as caught:
        read_wav_header(io.BytesIO(header))
    text = str(caught.value)
    assert text.startswith("<stdin>: ") and message in text and "\n" not in text


def test_bounds_are_accepted_and_metadata_chunks_skipped():
    body = pcm16_fmt(768_000)
    header = b"RIFF" + b"\xff" * 4 + b"WAVE" + b"LIST" + struct.pack("<I", 9) + b"x" * 10 + b"fmt " + \
        struct.pack("<I", 16) + body + b"data" + struct.pack("<I", 8)  # fmt: skip
    fmt, size = read_wav_header(io.BytesIO(header))
    assert (fmt.sample_rate, fmt.channels, size) == (768_000, 1, 8)
    assert read_wav_header(io.BytesIO(wav_header(pcm16_fmt(1000))))[0].sample_rate == 1000


def test_raw_rate_is_checked(nsnet2):
    with pytest.raises(AudioError, match=r"^<stdin>: sample rate 500 Hz is outside"):
        stream_enhance(nsnet2, io.BytesIO(b"\0" * 100), io.BytesIO(), raw_rate=500)


def test_float32_blocks_decode_without_numpy_warnings():
    x = np.linspace(-1, 1, 64, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = PcmFormat(16000, 1, "<f4").decode(x.tobytes())
        y += 0  # and the block is writable
    assert torch.equal(y[0], torch.from_numpy(x))


@pytest.mark.parametrize("rate", [16000, 48000])  # 48000: resampled to the model's 16 kHz and back
def test_empty_streams_give_empty_output(nsnet2, rate):
    sink = io.BytesIO()
    assert stream_enhance(nsnet2, io.BytesIO(b""), sink, raw_rate=rate) == 0 and sink.getvalue() == b""
    header = PcmFormat(rate, 2, "<i2").header()
    sink = io.BytesIO()
    assert stream_enhance(nsnet2, io.BytesIO(header), sink) == 0
    assert sink.getvalue() == b"RIFF" + struct.pack("<I", 36) + header[8:40] + b"\0\0\0\0"  # no samples
    assert sf.info(io.BytesIO(sink.getvalue())).frames == 0


def test_raw_wav_and_a_partial_last_sample_are_told_in_one_line_each(nsnet2):
    told: list[str] = []
    pcm = PcmFormat(16000, 1, "<i2").encode(0.1 * torch.randn(1, 1000))
    wav = PcmFormat(16000, 1, "<i2").header() + pcm
    sink = io.BytesIO()
    stream_enhance(nsnet2, io.BytesIO(wav + b"\x01"), sink, raw_rate=16000, on_warning=told.append)
    assert told == [
        "<stdin>: raw PCM that starts like a WAV file ('RIFF'): its header will play as a click (leave out --raw to read WAV)",
        "<stdin>: the stream ended inside a sample frame (2 bytes); its last 1 byte(s) were dropped",
    ]
    assert len(sink.getvalue()) == len(wav)  # the header's 44 bytes went through as 22 samples
    told.clear()
    stream_enhance(nsnet2, io.BytesIO(PcmFormat(16000, 2, "<f4").header() + b"\0" * 35), io.BytesIO(), on_warning=told.append)
    assert told == ["<stdin>: the stream ended inside a sample frame (8 bytes); its last 3 byte(s) were dropped"]
    with warnings.catch_warnings(record=True) as caught:  # a library caller without a handler gets Python warnings
        warnings.simplefilter("always")
        stream_enhance(nsnet2, io.BytesIO(pcm + b"\x01"), io.BytesIO(), raw_rate=16000)
    assert [str(w.message) for w in caught] == ["<stdin>: the stream ended inside a sample frame (2 bytes); its last "
                                                "1 byte(s) were dropped"]  # fmt: skip


class Trickle(io.RawIOBase):
    """A raw sink that takes at most 1000 bytes per write, as an unbuffered pipe may."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        taken = bytes(b[:1000])
        self.data += taken
        return len(taken)


def test_short_writes_are_completed(nsnet2):
    x = 0.1 * torch.randn(2, 9000)
    wav = PcmFormat(16000, 2, "<f4").header() + PcmFormat(16000, 2, "<f4").encode(x)
    sink = Trickle()
    assert stream_enhance(nsnet2, io.BytesIO(wav), sink) == 9000
    assert len(sink.data) == len(wav)


def test_a_rewritable_output_gets_its_sizes_and_an_appended_one_is_left_alone(nsnet2, tmp_path):
    x = 0.1 * torch.randn(1, 7000)
    fmt = PcmFormat(48000, 1, "<i2")
    wav = fmt.header() + fmt.encode(x)
    with open(tmp_path / "out.wav", "wb") as sink:
        stream_enhance(nsnet2, io.BytesIO(wav), sink)
    info = sf.info(tmp_path / "out.wav")
    assert (info.frames, info.samplerate) == (7000, 48000)
    data = (tmp_path / "out.wav").read_bytes()
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8 and struct.unpack("<I", data[40:44])[0] == 14000
    (tmp_path / "log.bin").write_bytes(b"earlier")
    with open(tmp_path / "log.bin", "ab") as sink:  # `>>`: a patch would land at the end
        stream_enhance(nsnet2, io.BytesIO(wav), sink)
    appended = (tmp_path / "log.bin").read_bytes()
    assert appended[:7] == b"earlier" and appended[7:][4:8] == b"\xff" * 4 and len(appended) == 7 + len(wav)
