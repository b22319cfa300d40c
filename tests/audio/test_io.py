from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from sectl.audio import limit_peak, read_audio, write_audio
from sectl.fileutil import InputTargetError
from sectl.errors import AudioError, OutputExistsError
from tests.conftest import tone, write_wav


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_reads_every_wav_sample_format_as_float32(tmp_path, subtype):
    signal = tone(0.2)
    path = write_wav(tmp_path / "a.wav", signal, subtype=subtype)
    audio = read_audio(path)
    assert audio.samples.dtype == torch.float32
    assert audio.samples.shape == (1, len(signal))
    assert audio.sample_rate == 16000
    assert np.allclose(audio.samples[0].numpy(), signal, atol=1e-4)


@pytest.mark.parametrize("ext,fmt", [(".flac", "FLAC"), (".ogg", "OGG")])
def test_reads_flac_and_ogg(tmp_path, ext, fmt):
    path = tmp_path / f"a{ext}"
    sf.write(path, tone(0.5), 16000, format=fmt)
    audio = read_audio(path)
    assert audio.samples.shape[0] == 1 and audio.samples.shape[1] > 7000


def test_mixes_down_or_keeps_channels(tmp_path):
    stereo = np.stack([tone(0.1), np.zeros(1600, dtype=np.float32)], axis=1)
    path = write_wav(tmp_path / "s.wav", stereo, subtype="FLOAT")
    assert read_audio(path, mono=False).samples.shape == (2, 1600)
    mono = read_audio(path).samples
    assert mono.shape == (1, 1600)
    assert np.allclose(mono[0].numpy(), stereo.mean(axis=1), atol=1e-6)


def test_resamples_to_requested_rate(tmp_path):
    path = write_wav(tmp_path / "a.wav", tone(1.0, rate=44100), rate=44100)
    audio = read_audio(path, sample_rate=16000)
    assert audio.sample_rate == 16000
    assert abs(audio.samples.shape[1] - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(audio.samples[0].numpy()))
    assert abs(np.argmax(spectrum) - 440) <= 1  # the tone survives resampling


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="missing.wav: file not found"):
        read_audio(tmp_path / "missing.wav")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav: file is empty"):
        read_audio(path)


def test_non_audio_file(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    with pytest.raises(AudioError, match="notes.wav: not a readable audio file"):
        read_audio(path)


def test_truncated_file(tmp_path):
    full = write_wav(tmp_path / "full.wav", tone(0.5))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:30])  # header cut in the middle
    with pytest.raises(AudioError, match="cut.wav"):
        read_audio(cut)


def test_zero_length_after_decoding(tmp_path):
    path = write_wav(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioError, match="zero.wav: no samples"):
        read_audio(path)


def test_nan_and_inf_samples(tmp_path):
    signal = tone(0.1)
    signal[10] = np.nan
    signal[20] = np.inf
    path = write_wav(tmp_path / "nan.wav", signal, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: contains NaN or Inf"):
        read_audio(path)


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(AudioError, match="is a folder"):
        read_audio(tmp_path)


def test_write_round_trip_and_no_temp_files(tmp_path):
    target = tmp_path / "out" / "a.wav"
    gain = write_audio(target, torch.from_numpy(tone(0.2)), 16000)
    assert gain == 1.0
    assert read_audio(target).samples.shape == (1, 3200)
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.wav"]


def test_write_refuses_existing_output_unless_overwrite(tmp_path):
    target = write_wav(tmp_path / "a.wav", tone(0.1))
    before = target.read_bytes()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_audio(target, tone(0.2), 16000)
    assert target.read_bytes() == before
    write_audio(target, tone(0.2), 16000, overwrite=True)
    assert read_audio(target).samples.shape[1] == 3200


def test_write_never_overwrites_an_input(tmp_path):
    source = write_wav(tmp_path / "in.wav", tone(0.1))
    before = source.read_bytes()
    with pytest.raises(InputTargetError, match="is an input"):
        write_audio(source, tone(0.1), 16000, overwrite=True, inputs=[source])
    assert source.read_bytes() == before


def test_peak_limiting_scales_and_reports_gain(tmp_path):
    loud = torch.from_numpy(tone(0.1, amp=2.0))
    gain = write_audio(tmp_path / "loud.wav", loud, 16000)
    assert gain == pytest.approx(0.999 / 2.0, rel=1e-3)
    written = read_audio(tmp_path / "loud.wav").samples
    assert float(written.abs().max()) <= 1.0
    limited, g = limit_peak(torch.tensor([0.1, -0.5]))
    assert g == 1.0 and torch.equal(limited, torch.tensor([0.1, -0.5]))


def test_multichannel_write_keeps_channels(tmp_path):
    stereo = torch.stack([torch.from_numpy(tone(0.1)), torch.zeros(1600)])
    write_audio(tmp_path / "st.flac", stereo, 16000)
    assert read_audio(tmp_path / "st.flac", mono=False).samples.shape == (2, 1600)


def test_an_interrupted_copy_is_reported_as_truncated_by_name(tmp_path, vctk):
    from sectl.audio.stream import read_blocks

    whole = (vctk / "noisy" / "p287_001.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[:100])  # the first 100 bytes of a 2 s file
    with pytest.raises(AudioError, match=r"cut.wav: truncated: the header declares \d+ bytes of audio, the file holds 56"):
        read_audio(cut)
    with pytest.raises(AudioError, match="truncated"):
        read_blocks(cut, 1000)
    read_audio(vctk / "noisy" / "p287_001.wav")  # complete files still read


def test_a_resampling_kernel_first_built_under_inference_mode_still_trains():
    """The kernel cache is shared by enhance (inference mode) and training (autograd)."""
    import torch

    from sectl.audio.io import resample

    with torch.inference_mode():
        resample(torch.randn(1, 4410), 44100, 22050)
    x = torch.randn(1, 4410, requires_grad=True)
    resample(x, 44100, 22050).sum().backward()
    assert x.grad is not None


@pytest.mark.parametrize("subtype,lsb", [("PCM_16", 2**-15), ("PCM_24", 2**-23)])
def test_integer_outputs_round_to_nearest_not_down(tmp_path, subtype, lsb):
    """libsndfile floors floats into integers (-0.25 LSB -> -1); outputs round, as the --stream pipe does."""
    from sectl.audio import write_audio
    from sectl.audio.stream import write_blocks

    x = torch.tensor([[-0.25, 0.75, 1.25, -0.75, 100.4, -100.4]]) * lsb
    expected = np.array([0, 1, 1, -1, 100, -100])
    write_audio(tmp_path / "a.wav", x, 16000, subtype=subtype)
    write_blocks(tmp_path / "b.wav", [x[:, :2], x[:, 2:]], 16000, 1, subtype=subtype)
    for name in ("a.wav", "b.wav"):
        y, _ = sf.read(tmp_path / name, dtype="float64")
        assert np.array_equal(np.round(y / lsb).astype(int), expected), name
