"""Streaming equals offline: per architecture, any chunk sizes, resampling, dry/wet, reset, refusals."""

from __future__ import annotations

import pytest
import torch

from sectl.audio import resample
from sectl.enhance import enhance_tensor
from sectl.signal import DryWet
from sectl.errors import SectlError
from sectl.models import build_enhancer
from sectl.engines import load_enhancer
from sectl.streaming import Streamer, StreamingResampler, frame_runner, streamer_for


STREAMABLE = {  # constructor settings under which each architecture streams
    "deepfilternet3": {}, "nsnet2": {}, "gtcrn": {}, "masknet": {"causal": True, "normalize": False},
    "demucs": {"causal": True, "normalize": False},
}


def random_chunks(length: int, seed: int, largest: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    sizes, total = [], 0
    while total < length:
        sizes.append(int(torch.randint(1, largest + 1, (1,), generator=g)))
        total += sizes[-1]
    return sizes


def stream(streamer, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Feeds ``x`` in ``sizes`` chunks, checking the latency promise after every feed."""
    outs, fed = [], 0
    for n in sizes:
        outs.append(streamer.feed(x[..., fed : fed + n]))
        fed = min(fed + n, x.shape[-1])
        returned = sum(o.shape[-1] for o in outs)
        assert returned >= fed - streamer.latency, (returned, fed, streamer.latency)
    outs.append(streamer.flush())
    return torch.cat(outs, dim=-1)


def offline(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("name", ["deepfilternet3", "nsnet2", "gtcrn"])
@pytest.mark.parametrize("seed,largest", [(0, 700), (1, 50), (2, 5000)])
def test_stream_equals_offline_for_any_chunking(name: str, seed: int, largest: int) -> None:
    torch.manual_seed(seed)
    model = build_enhancer(name, "tiny").eval()
    x = 0.1 * torch.randn(1, int(0.41 * model.sample_rate))
    y = stream(streamer_for(model), x, random_chunks(x.shape[-1], seed, largest))
    assert y.shape == x.shape
    assert (y - offline(model, x)).abs().max() < 1e-4


@pytest.mark.parametrize("name", ["deepfilternet3", "nsnet2", "gtcrn", "masknet", "demucs"])
def test_one_sample_feeds_and_reset_between_signals(name: str) -> None:
    torch.manual_seed(3)
    model = build_enhancer(name, "tiny", **STREAMABLE[name]).eval()
    first, second = (0.1 * torch.randn(2, int(0.08 * model.sample_rate))).unbind(0)
    streamer = streamer_for(model)
    stream(streamer, first[None], [7] * 9)  # abandoned half-way: reset must forget it
    streamer.reset()
    y = stream(streamer, second[None], [1] * second.shape[-1])
    assert (y - offline(model, second[None])).abs().max() < 1e-4
    y = stream(streamer, first[None], random_chunks(first.shape[-1], 4, 300))  # flush reset it
    assert (y - offline(model, first[None])).abs().max() < 1e-4




@pytest.mark.parametrize("name", list(STREAMABLE))
def test_latency_is_tight(name: str) -> None:
    """Some feed returns exactly ``fed - latency`` samples: the reported latency is not padded."""
    model = build_enhancer(name, "tiny", **STREAMABLE[name]).eval()
    streamer = streamer_for(model)
    gaps, returned = [], 0
    for fed in range(1, 6 * streamer.layout.hop):
        returned += streamer.feed(torch.zeros(1, 1)).shape[-1]
        gaps.append(fed - returned)
    assert max(gaps) == streamer.latency


def test_one_dimensional_feeds_get_one_dimensional_answers() -> None:
    model = build_enhancer("nsnet2", "tiny").eval()
    streamer = streamer_for(model)
    x = 0.1 * torch.randn(1000)
    y = torch.cat([streamer.feed(x[:400]), streamer.feed(x[400:]), streamer.flush()])
    assert y.shape == x.shape and (y - offline(model, x[None])[0]).abs().max() < 1e-4


@pytest.mark.parametrize("dry_wet,sample_rate", [(DryWet(), None), (DryWet(atten_lim_db=6.0), None), (DryWet(), 16000)])
def test_a_feed_buffer_refilled_in_place_does_not_change_what_was_fed(dry_wet, sample_rate) -> None:
    """An audio callback hands over the same array every block, refilled: the streamer keeps what it still
    needs (a partial hop, the dry signal for the mix, the resampler's input history) as its own copy, not as
    a view of that array."""
    torch.manual_seed(7)
    model = build_enhancer("deepfilternet3", "tiny").eval()
    x = 0.1 * torch.randn(1, 48 * 230)
    streamer = streamer_for(model, sample_rate=sample_rate, dry_wet=dry_wet)
    buffer, outs = torch.empty(1, 230), []
    for block in x.split(230, dim=-1):
        buffer.copy_(block)
        outs.append(streamer.feed(buffer))
    y = torch.cat([*outs, streamer.flush()], dim=-1)
    fresh = streamer_for(model, sample_rate=sample_rate, dry_wet=dry_wet)
    expected = torch.cat([*(fresh.feed(block.clone()) for block in x.split(230, dim=-1)), fresh.flush()], dim=-1)
    torch.testing.assert_close(y, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["deepfilternet3", "nsnet2"])
def test_fed_output_is_an_ordinary_tensor_the_caller_may_change_in_place(name) -> None:
    """A live caller scales or clips what ``feed`` returns in place: it is no inference-mode tensor (which
    refuses in-place updates outside inference mode), and changing it changes nothing the stream still reads."""
    torch.manual_seed(3)
    model = build_enhancer(name, "tiny").eval()
    hop = frame_runner(model).layout.hop
    x = 0.1 * torch.randn(1, 30 * hop)
    streamer, fresh, outs, expected = streamer_for(model), streamer_for(model), [], []
    for block in x.split(hop, dim=-1):
        y = streamer.feed(block)
        assert not y.is_inference()
        outs.append(y.clone())
        y.mul_(1e3)
        expected.append(fresh.feed(block))
    torch.testing.assert_close(torch.cat(outs, -1), torch.cat(expected, -1), atol=0, rtol=0)


@pytest.mark.parametrize("name", list(STREAMABLE))
def test_a_frame_step_makes_no_tensor_from_host_data_per_call(name) -> None:
    """``torch.tensor(...)`` in a step's forward is a host-to-device copy every call on a GPU, which
    synchronises the host with the device mid-step; constants belong in buffers, which move with the step."""
    from torch.overrides import TorchFunctionMode

    from sectl.streaming import frame_step

    class HostData(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[str] = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in (torch.tensor, torch.as_tensor, torch.Tensor.item, torch.Tensor.tolist):
                self.seen.append(func.__name__)
            return func(*args, **(kwargs or {}))

    step = frame_step(build_enhancer(name, "tiny", **STREAMABLE[name]).eval())
    state, spy = step.initial_state(2), HostData()
    with torch.no_grad():
        for _ in range(step.layout.warmup + 2):
            with spy:
                _, *state = step(torch.zeros(2, step.layout.hop), torch.full((1,), -1), *state)
    assert spy.seen == []


def test_resampling_and_dry_wet_equal_offline_enhance() -> None:
    """16 kHz stereo into the 48 kHz model and back, with --atten-lim and --mix, equals ``enhance``."""
    torch.manual_seed(5)
    model = build_enhancer("deepfilternet3", "tiny").eval()
    x = 0.1 * torch.randn(2, 5003)
    dry_wet = DryWet(atten_lim_db=10.0, mix=0.8)
    expected = enhance_tensor(model, x, 16000, chunk_s=1000, dry_wet=dry_wet)
    streamer = streamer_for(model, 16000, channels=2, dry_wet=dry_wet)
    y = stream(streamer, x, random_chunks(x.shape[-1], 6, 400))
    assert y.shape == x.shape
    assert (y - expected).abs().max() < 1e-4
    assert streamer.latency > streamer.layout.latency * 16000 // 48000  # the resamplers add delay


@pytest.mark.parametrize("rates", [(16000, 48000), (48000, 16000), (44100, 48000), (22050, 16000), (7999, 16000),
                                   (48000, 7999), (44100, 47999)])  # fmt: skip
def test_streaming_resampler_equals_offline(rates: tuple[int, int]) -> None:
    x = torch.randn(2, 3001)
    resampler = StreamingResampler(*rates)
    outs, fed = [], 0
    for n in random_chunks(x.shape[-1], 7, 333):
        outs.append(resampler.feed(x[:, fed : fed + n]))
        fed = min(fed + n, x.shape[-1])
        returned = sum(o.shape[-1] for o in outs)
        assert returned * rates[0] >= (fed - resampler.latency) * rates[1]  # the latency holds
    y = torch.cat([*outs, resampler.flush()], dim=-1)
    expected = resample(x, *rates)
    assert y.shape == expected.shape
    assert (y - expected).abs().max() < 1e-5


@pytest.mark.parametrize("rates", [(7999, 16000), (48000, 7999), (44100, 47999)])
def test_odd_rates_resample_with_bounded_delay(rates: tuple[int, int]) -> None:
    """Rates without a large common divisor: the delay is the filter's span, not a second of input."""
    width = 6 * max(1, rates[0] / rates[1]) / 0.99  # torchaudio's one-sided span, in input samples
    assert StreamingResampler(*rates).latency <= width + 1


def test_an_odd_rate_streams_like_offline_enhancement_with_a_short_delay() -> None:
    torch.manual_seed(8)
    model = build_enhancer("nsnet2", "tiny").eval()
    x = 0.1 * torch.randn(1, 4001)
    streamer = streamer_for(model, 7999)
    y = stream(streamer, x, random_chunks(x.shape[-1], 9, 500))
    assert y.shape == x.shape and (y - enhance_tensor(model, x, 7999, chunk_s=1000)).abs().max() < 1e-4
    assert streamer.latency_ms < 60  # nsnet2's own 32 ms and two filter spans (it was 2 s)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_an_empty_stream_gives_empty_output(rate: int) -> None:
    streamer = streamer_for(build_enhancer("nsnet2", "tiny").eval(), rate, channels=2)
    assert streamer.flush().shape == (2, 0)
    assert streamer.feed(torch.zeros(2, 0)).shape == (2, 0) and streamer.flush().shape == (2, 0)


def streamable_masknet(**overrides):
    return build_enhancer("masknet", "tiny", causal=True, normalize=False, **overrides).eval()


@pytest.mark.parametrize("seed,largest", [(0, 300), (1, 1), (2, 4000)])
def test_causal_masknet_with_absolute_levels_streams_exactly(seed: int, largest: int) -> None:
    """Centred frames and istft's window-envelope division, edges included, frame by frame."""
    torch.manual_seed(seed)
    model = streamable_masknet()
    x = 0.1 * torch.randn(1, 2345 if largest > 1 else 700)
    y = stream(streamer_for(model), x, random_chunks(x.shape[-1], seed, largest))
    assert y.shape == x.shape
    assert (y - offline(model, x)).abs().max() < 1e-4


@pytest.mark.parametrize("overrides,reason", [
    ({"causal": False}, "masknet cannot stream: its bidirectional LSTM reads the future"),
    ({"normalize": True}, "masknet cannot stream: it scales each input by the whole signal's level"),
])  # fmt: skip
def test_masknet_configurations_that_cannot_stream_say_what_would(overrides, reason) -> None:
    with pytest.raises(SectlError, match=reason):
        streamer_for(build_enhancer("masknet", "tiny", **{"causal": True, "normalize": False, **overrides}))


@pytest.mark.parametrize("size,bottleneck", [("tiny", "lstm"), ("tiny", "conv"), ("small", "lstm")])
def test_causal_demucs_with_absolute_levels_streams_exactly(size: str, bottleneck: str) -> None:
    """Per-level buffers, the lead-in that lines the frame grids up, skip queues, overlap-added
    transposed convolutions: equal to the whole-signal U-Net, from 1 sample to thousands."""
    torch.manual_seed(12)
    model = build_enhancer("demucs", size, causal=True, normalize=False, bottleneck=bottleneck).eval()
    for length, largest in ((1, 1), (777, 1), (5003, 700)):
        x = 0.1 * torch.randn(1, length)
        y = stream(streamer_for(model), x, random_chunks(length, length, largest))
        assert y.shape == x.shape
        assert (y - offline(model, x)).abs().max() < 1e-4


@pytest.mark.parametrize("overrides,reason", [
    ({"causal": False}, "demucs cannot stream: its bottleneck .a bidirectional LSTM or centred convolutions. reads the future"),
    ({"normalize": True}, "demucs cannot stream: it scales each input by the whole signal's level"),
])  # fmt: skip
def test_demucs_configurations_that_cannot_stream_say_what_would(overrides, reason) -> None:
    with pytest.raises(SectlError, match=reason):
        streamer_for(build_enhancer("demucs", "tiny", **{"causal": True, "normalize": False, **overrides}))


@pytest.mark.parametrize("name", ["deepfilternet3", "nsnet2"])
def test_pretrained_models_stream_real_speech_exactly(name: str, models_dir, vctk) -> None:
    from sectl.audio import read_audio

    audio = read_audio(vctk / "noisy" / "p287_001.wav")
    model = load_enhancer(name)
    x = resample(audio.samples, audio.sample_rate, model.sample_rate)
    y = stream(streamer_for(model), x, random_chunks(x.shape[-1], 8, 2000))
    assert (y - offline(model, x)).abs().max() < 1e-4


def test_post_filter_streams_exactly_and_changes_the_output() -> None:
    torch.manual_seed(9)
    model = build_enhancer("deepfilternet3", "tiny").eval()
    x = 0.1 * torch.randn(1, 7000)
    plain = offline(model, x)
    model.with_post_filter(0.02)
    filtered = offline(model, x)
    assert (filtered - plain).abs().max() > 1e-3  # it does something
    y = stream(streamer_for(model), x, random_chunks(x.shape[-1], 10, 800))
    assert (y - filtered).abs().max() < 1e-4


@pytest.mark.parametrize("name", ["masknet", "demucs"])
def test_a_model_trained_for_streaming_streams_from_its_run_folder(name: str, data_dir, tmp_path) -> None:
    from sectl.train import resolve_config, train

    config = resolve_config("baseline", [
        f"model.name={name}", "model.size=tiny", "model.causal=true", "model.args={normalize: false}",
        "train.batch_size=2", "train.steps=2", "train.warmup_steps=1", "data.segment_s=0.5",
        f"data.clean={data_dir / 'speech'}", f"data.noise={data_dir / 'noise'}", "train.threads=1",
    ])  # fmt: skip
    train(config, tmp_path / "run")
    model = load_enhancer(tmp_path / "run")
    x = 0.1 * torch.randn(1, 4000)
    y = stream(streamer_for(model), x, random_chunks(x.shape[-1], 11, 600))
    assert (y - offline(model, x)).abs().max() < 1e-4


# ---------------------------------------------------------------------------------------------- GTCRN
@pytest.mark.parametrize("length", [1, 2, 255, 256, 257, 258, 511, 512, 513, 767, 768, 769, 1000])
def test_gtcrn_streams_the_mirrored_ends_exactly_at_every_length(length: int) -> None:
    """Frame 0 mirrors samples 1 ... hop and the last frames mirror the end (once the length is known), as the
    offline STFT pads: lengths around whole hops, shorter than the mirror, fed in ones and in random chunks."""
    torch.manual_seed(length)
    model = build_enhancer("gtcrn", "tiny").eval()
    x = 0.1 * torch.randn(1, length)
    for sizes in ([1] * length, random_chunks(length, length, 300)):
        y = stream(streamer_for(model), x, sizes)
        assert y.shape == x.shape and (y - offline(model, x)).abs().max() < 1e-4


def test_gtcrn_latency_is_two_hops() -> None:
    streamer = streamer_for(build_enhancer("gtcrn", "tiny").eval())
    assert streamer.latency == 512 and streamer.latency_ms == 32.0


@pytest.fixture(scope="module")
def gtcrn_traces():
    from tests.conftest import MODELS

    if not (MODELS / "gtcrn" / "traces").is_dir():
        pytest.skip(f"GTCRN's official traces not found at {MODELS / 'gtcrn'} (set SECTL_TEST_MODELS)")
    return MODELS / "gtcrn" / "traces"


def test_gtcrn_stream_equals_the_official_offline_and_streaming_traces(gtcrn_traces) -> None:
    """The official stream's checkpoint, streamed in random chunks, against the repository's own traces (16-bit
    WAVs). Measured: at most 1 LSB from its offline enhancement (traces/stream/enh.wav), and at most 21 LSB
    (SI-SDR 64 dB) from its streaming trace (enh_stream.wav), which upstream synthesised with a symmetric
    window (librosa.istft, np.hanning): the same frames resynthesised that way are within 1 LSB of it."""
    import numpy as np
    import soundfile as sf

    from sectl.metrics.intrusive import si_sdr

    model = load_enhancer("gtcrn-dns3-stream")
    samples, _ = sf.read(gtcrn_traces / "stream" / "mix.wav", dtype="float32")
    x = torch.from_numpy(samples)[None]
    y = stream(streamer_for(model), x, random_chunks(x.shape[-1], 12, 3000))[0].numpy()
    offline_trace, _ = sf.read(gtcrn_traces / "stream" / "enh.wav", dtype="float32")
    streaming_trace, _ = sf.read(gtcrn_traces / "stream" / "enh_stream.wav", dtype="float32")
    lsb = 2.0**-15
    assert np.abs(y[: len(offline_trace)] - offline_trace).max() <= 1.01 * lsb
    assert np.abs(y[: len(streaming_trace)] - streaming_trace).max() <= 22 * lsb
    assert si_sdr(ref=streaming_trace.astype(np.float64), est=y[: len(streaming_trace)].astype(np.float64)) > 60.0

    with torch.no_grad():  # the difference is the synthesis window: resynthesise the same frames as upstream did
        stacked, *levels, deepest = model.features(x)
        spec = torch.complex(*stacked.chunk(2, dim=1)).transpose(1, 2)
        re, im = model.apply_mask(model.run_decoder(deepest, levels)[0], spec.real, spec.imag)
    frames = np.fft.irfft((re + 1j * im)[0, : 1 + len(samples) // 256].numpy(), 512)
    window = np.sqrt(np.hanning(512))
    out, envelope = np.zeros(256 * (len(frames) + 1)), np.zeros(256 * (len(frames) + 1))
    for t, frame in enumerate(frames):
        out[t * 256 : t * 256 + 512] += window * frame
        envelope[t * 256 : t * 256 + 512] += window**2
    resynthesised = (out / np.where(envelope > 1e-30, envelope, 1.0))[256:-256]
    assert np.abs(resynthesised - streaming_trace).max() <= 1.01 * lsb


def test_gtcrn_streams_real_speech_exactly(gtcrn_traces, vctk) -> None:
    from sectl.audio import read_audio

    audio = read_audio(vctk / "noisy" / "p287_001.wav")
    model = load_enhancer("gtcrn")
    y = stream(streamer_for(model), audio.samples, random_chunks(audio.samples.shape[-1], 13, 2000))
    assert (y - offline(model, audio.samples)).abs().max() < 1e-4


@pytest.mark.parametrize("preset", ["mal", "ssl_softdtw"])
def test_gtcrn_fine_tuned_from_the_dns3_checkpoint_streams_from_its_run_folder(preset, gtcrn_traces, data_dir, tmp_path) -> None:
    """Every preset applies (MAL reads GTCRN's encoder levels; soft-DTW its output), and the run streams exactly."""
    from sectl.train import resolve_config, train

    config = resolve_config(preset, [
        "init_from=gtcrn-dns3", "train.batch_size=2", "train.steps=2", "train.warmup_steps=1", "data.segment_s=0.5",
        f"data.clean={data_dir / 'speech'}", f"data.noise={data_dir / 'noise'}", "train.threads=1",
        "ssl.model=tiny", "ssl.layer=2",
    ])  # fmt: skip
    train(config, tmp_path / "run")
    tuned, published = load_enhancer(tmp_path / "run"), load_enhancer("gtcrn-dns3")
    assert type(tuned).__name__ == "GTCRN"
    assert any(not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), published.state_dict().values()))
    x = 0.1 * torch.randn(1, 4000)
    y = stream(streamer_for(tuned), x, random_chunks(x.shape[-1], 14, 600))
    assert (y - offline(tuned, x)).abs().max() < 1e-4


@pytest.mark.parametrize("name", ["deepfilternet3", "nsnet2", "gtcrn"])
def test_signals_enhanced_together_each_come_out_as_alone(name: str) -> None:
    """Rows of one stream never interact: several signals of different lengths and channel counts, at a rate
    that needs resampling and with a dry/wet mix, each equal their own stream (float rounding only)."""
    from sectl.streaming import enhance_together

    torch.manual_seed(6)
    model = build_enhancer(name, "tiny").eval()
    runner = frame_runner(model)
    signals = [0.1 * torch.randn(c, n) for c, n in [(1, 30000), (2, 7001), (1, 7001), (1, 123), (3, 45000)]]
    mix = DryWet(atten_lim_db=12.0)
    together = enhance_together(runner, signals, 44100, mix)
    for x, y in zip(signals, together):
        alone = Streamer(runner, 44100, x.shape[0], mix)
        expected = torch.cat([alone.feed(x), alone.flush()], dim=-1)
        assert y.shape == x.shape and (y - expected).abs().max() < 1e-6


def test_signals_enhanced_together_are_fed_in_blocks(monkeypatch):
    """A group of files is read whole but fed to the stream a block at a time: the stream's transient
    copies (resamplers, pending hops, the dry signal, the call outputs) then scale with a block, not with
    the group (fed whole, a group of 32 one-minute files at 44.1 kHz peaked at 7x its own size, 2.6 GB)."""
    from sectl.streaming import enhance_together
    from sectl.streaming.frames import StreamLayout

    class Identity:  # a frame step that returns its input: the output must equal the signal exactly
        layout, multi_hop = StreamLayout(16000, 160, 0, 0, 0), True

        def initial_state(self, batch):
            return [torch.zeros(1, dtype=torch.int64)]

        def select_rows(self, state, rows):
            return state

        def __call__(self, samples, length, state):
            return samples.clone(), state

    fed = []
    real_feed = Streamer.feed
    monkeypatch.setattr(Streamer, "feed", lambda self, x: fed.append(x.shape[-1]) or real_feed(self, x))
    signals = [torch.randn(1, 3 * 2**18 + 5), torch.randn(2, 2**17), torch.randn(1, 2**18 + 1)]
    together = enhance_together(Identity(), signals, 16000)
    assert all(torch.equal(x, y) for x, y in zip(signals, together))
    assert max(fed) <= 2**18, fed


def test_torch_frames_makes_each_length_input_once_and_keeps_few():
    """The ``length`` input is not rebuilt (a host-to-device copy on a GPU) every call, nor kept for every file."""
    from sectl.streaming import TorchFrames
    from sectl.streaming.steps import frame_step

    runner = TorchFrames(frame_step(build_enhancer("nsnet2", "tiny").eval()))
    live = runner.length_tensor(-1)
    assert runner.length_tensor(-1) is live and live.tolist() == [-1]
    first = runner.length_tensor(48000)
    assert runner.length_tensor(48000) is first and first.tolist() == [48000]
    assert runner.length_tensor(96000).tolist() == [96000]
    assert sorted(runner._lengths) == [-1, 96000] and runner.length_tensor(-1) is live
    for length in range(-2, -100, -1):  # a step reads any negative length as unknown: none piles up
        assert runner.length_tensor(length).tolist() == [length]
    assert sorted(runner._lengths) == [-99, -1] and runner.length_tensor(-1) is live
