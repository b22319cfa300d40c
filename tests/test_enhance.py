from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from sectl.audio.files import plan_batch
from sectl.enhance import OverlapAdd, enhance_file, enhance_paths, enhance_tensor
from sectl.errors import SectlError
from sectl.fileutil import InputTargetError
from sectl.engines import load_enhancer
from tests.conftest import tone, write_wav


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return load_enhancer(tiny_checkpoint)


def test_overlap_add_of_a_pointwise_function_is_exact():
    x = torch.randn(2, 10_007)
    ola = OverlapAdd(lambda c: 2 * c, chunk=1000, overlap=250)
    assert torch.allclose(ola(x), 2 * x, atol=1e-6)


@pytest.mark.parametrize("block", [1, 333, 5000, 20000])
def test_streaming_in_any_block_size_equals_one_call(block):
    x = torch.randn(1, 12_345)
    ola = OverlapAdd(torch.tanh, chunk=2000, overlap=500)
    streamed = torch.cat(list(ola.stream(x.split(block, dim=-1))), dim=-1)
    assert streamed.shape == x.shape
    assert torch.allclose(streamed, torch.tanh(x), atol=1e-6)


def test_chunked_enhancement_matches_whole_file(model, clean_speech):
    rng = np.random.default_rng(0)
    noisy = torch.from_numpy(np.tile(clean_speech, 3) + 0.02 * rng.standard_normal(3 * len(clean_speech))).float()
    whole = enhance_tensor(model, noisy, 16000, chunk_s=100.0)
    chunked = enhance_tensor(model, noisy, 16000, chunk_s=2.0, overlap_s=0.5)
    error = (whole - chunked).pow(2).sum() / whole.pow(2).sum()
    assert 10 * torch.log10(error) < -20  # chunking costs less than 1% of the signal energy


def test_file_keeps_rate_channels_and_subtype(model, tmp_path):
    stereo = np.stack([tone(1.5, rate=44100), tone(1.5, rate=44100, freq=300)], axis=1)
    src = write_wav(tmp_path / "in.wav", stereo, rate=44100, subtype="PCM_24")
    enhance_file(model, src, tmp_path / "out.wav", chunk_s=1.0, overlap_s=0.25)
    info = sf.info(tmp_path / "out.wav")
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 2, len(stereo), "PCM_24")


def test_stdin_to_stdout(model, tmp_path, monkeypatch):
    buffer = io.BytesIO()
    sf.write(buffer, tone(0.5), 16000, format="WAV", subtype="PCM_16")

    class Stream:
        def __init__(self, data=b""):
            self.buffer = io.BytesIO(data)

    fake_in, fake_out = Stream(buffer.getvalue()), Stream()
    monkeypatch.setattr(sys, "stdin", fake_in)
    monkeypatch.setattr(sys, "stdout", fake_out)
    enhance_file(model, "-", "-")
    audio, rate = sf.read(io.BytesIO(fake_out.buffer.getvalue()))
    assert rate == 16000 and len(audio) == 8000


def test_batch_preserves_tree_reports_bad_files_and_never_touches_inputs(model, tmp_path):
    src = tmp_path / "noisy"
    write_wav(src / "a.wav", tone(0.3))
    write_wav(src / "sub" / "b.flac", tone(0.3))
    (src / "bad.wav").write_text("not audio")
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    report = enhance_paths([src], tmp_path / "out", model=model)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()) == ["a.wav", "sub/b.flac"]
    assert len(report.failed) == 1 and "bad.wav" in report.failed[0]
    again = enhance_paths([src], tmp_path / "out", model=model)
    assert len(again.failed) == 3 and "--overwrite" in again.failed[0]
    with pytest.raises(InputTargetError, match="is an input of this command"):  # refused before any work
        enhance_paths([src], src, model=model, overwrite=True)
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before


def test_output_planning():
    assert plan_batch(["-"], "-") == [("-", "-")]
    with pytest.raises(SectlError, match="stdin"):
        plan_batch(["-", "x.wav"], "-")
    with pytest.raises(SectlError, match="stdout"):
        plan_batch(["x.wav"], "-")


def test_single_file_to_named_output(model, tmp_path):
    src = write_wav(tmp_path / "in.wav", tone(0.3))
    report = enhance_paths([src], tmp_path / "named.wav", model=model)
    assert report.written == [str(tmp_path / "named.wav")]


def test_parallel_jobs_load_the_model_per_worker(tiny_checkpoint, tmp_path):
    for name in "abc":
        write_wav(tmp_path / "in" / f"{name}.wav", tone(0.3))
    report = enhance_paths([tmp_path / "in"], tmp_path / "out", model_source=str(tiny_checkpoint), jobs=2)
    assert len(report.written) == 3 and not report.failed


@pytest.mark.parametrize("name", ["demucs", "masknet", "deepfilternet3", "nsnet2", "gtcrn"])
def test_no_attenuation_or_a_dry_mix_returns_the_input_for_every_model(name, clean_speech):
    from sectl.signal import DryWet
    from sectl.models import build_enhancer

    model = build_enhancer(name, "tiny").eval()
    x = torch.from_numpy(clean_speech[:16000]).float()[None]
    for dry in (DryWet(atten_lim_db=0.0), DryWet(mix=0.0)):
        assert torch.equal(enhance_tensor(model, x, 16000, dry_wet=dry), x)
    wet = enhance_tensor(model, x, 16000)
    half = enhance_tensor(model, x, 16000, dry_wet=DryWet(mix=0.5))
    assert torch.allclose(half, 0.5 * (wet + x), atol=1e-6)
    limited = enhance_tensor(model, x, 16000, dry_wet=DryWet(atten_lim_db=20.0))
    assert torch.allclose(limited, 0.9 * wet + 0.1 * x, atol=1e-6)  # 20 dB: 10 % of the input kept


def test_dry_wet_settings_are_validated():
    from sectl.signal import DryWet

    with pytest.raises(SectlError, match="mix"):
        DryWet(mix=1.5)
    with pytest.raises(SectlError, match="attenuation"):
        DryWet(atten_lim_db=-3)


def test_cli_atten_lim_zero_writes_the_input(vctk, tmp_path):
    from typer.testing import CliRunner

    from sectl.cli.app import app

    src = vctk / "noisy" / "p287_001.wav"
    result = CliRunner().invoke(app, ["enhance", str(src), "-o", str(tmp_path / "out.wav"), "--atten-lim", "0"])
    assert result.exit_code == 0, result.output
    original, _ = sf.read(src, dtype="int16")
    written, _ = sf.read(tmp_path / "out.wav", dtype="int16")
    assert np.abs(written.astype(int) - original).max() <= 1  # the same PCM, up to rounding
    bad = CliRunner().invoke(app, ["enhance", str(src), "-o", str(tmp_path / "x.wav"), "--mix", "2"])
    assert bad.exit_code == 2


def test_a_one_second_chunk_works_and_bad_settings_exit_2(vctk, tmp_path):
    from typer.testing import CliRunner

    from sectl.cli.app import app

    src = vctk / "noisy" / "p287_001.wav"
    result = CliRunner().invoke(app, ["enhance", str(src), "-o", str(tmp_path / "x.wav"), "--chunk", "1", "--model", "nsnet2"])
    assert result.exit_code == 0, result.output
    assert sf.info(tmp_path / "x.wav").frames == sf.info(src).frames
    piped = CliRunner().invoke(app, ["enhance", str(src), "-o", "-"])
    assert piped.exit_code == 2 and "needs '-' (stdin)" in piped.stderr
    config = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "r"), "--set", "model.hidden=wide"])
    assert config.exit_code == 2 and "model.hidden: expected int, got 'wide'" in config.stderr


def test_parallel_jobs_run_the_given_model_not_the_default(model, tmp_path):
    for name in "ab":
        write_wav(tmp_path / "in" / f"{name}.wav", tone(0.3))
    enhance_paths([tmp_path / "in"], tmp_path / "one", model=model, jobs=1)
    enhance_paths([tmp_path / "in"], tmp_path / "two", model=model, jobs=2)
    for name in "ab":
        one, _ = sf.read(tmp_path / "one" / f"{name}.wav")
        two, _ = sf.read(tmp_path / "two" / f"{name}.wav")
        assert np.array_equal(one, two)  # the tiny model in both, not DeepFilterNet3 in the workers


def test_ctrl_c_keeps_finished_files_leaves_no_partial_output_and_exits_130(tmp_path, monkeypatch, tiny_checkpoint):
    from typer.testing import CliRunner

    import sectl.enhance as enhance_module
    from sectl.cli.app import app

    for name in "abc":
        write_wav(tmp_path / "in" / f"{name}.wav", tone(0.3))
    original = enhance_module.enhance_file

    def interrupted_on_b(model, src, dst, *args, **kwargs):
        if src.endswith("b.wav"):
            raise KeyboardInterrupt
        return original(model, src, dst, *args, **kwargs)

    monkeypatch.setattr(enhance_module, "enhance_file", interrupted_on_b)
    result = CliRunner().invoke(app, ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint)])
    assert result.exit_code == 130 and "1 file(s) finished and kept" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.wav"]  # no temp or partial files


def test_ctrl_c_during_eval_reports_what_was_scored(vctk, monkeypatch):
    from typer.testing import CliRunner

    import sectl.metrics.evaluation as evaluation
    from sectl.cli.app import app

    original = evaluation._score_job
    calls = []

    def interrupted_on_third(task):
        calls.append(task)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(task)

    monkeypatch.setattr(evaluation, "_score_job", interrupted_on_third)
    result = CliRunner().invoke(app, ["eval", "--ref", str(vctk / "clean"), "--est", str(vctk / "noisy"), "-m", "si_sdr", "--json"])
    assert result.exit_code == 130
    payload = json.loads(result.stdout)
    assert payload["interrupted"] is True and len(payload["files"]) == 2


def test_progress_moves_chunk_by_chunk_within_one_long_file(model, tmp_path):
    src = write_wav(tmp_path / "long.wav", np.resize(tone(0.3), 16000 * 60))
    calls = []
    enhance_paths([src], tmp_path / "out", model=model, chunk_s=10.0, on_progress=lambda done, total: calls.append((done, total)))
    from sectl.enhance import READ_BLOCK_FRAMES

    assert len(calls) >= -(-16000 * 60 // READ_BLOCK_FRAMES) >= 3 and all(total == pytest.approx(60.0) for _, total in calls)
    assert calls[0][0] < 60 and [d for d, _ in calls] == sorted(d for d, _ in calls) and calls[-1][0] == pytest.approx(60.0)


ONE_PASS = {"deepfilternet3": {}, "nsnet2": {}, "gtcrn": {}, "masknet": {"causal": True, "normalize": False}}
"""Architectures whose offline enhancement is their stream (Demucs streams one hop per call, tested in
tests/streaming)."""


def speechlike(seconds: float, rate: int, seed: int = 0) -> torch.Tensor:
    """Noise bursts and tones with pauses: levels that move, so every state matters."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    envelope = (torch.sin(2 * torch.pi * 0.37 * t) > -0.3).float()
    return (0.1 * torch.sin(2 * torch.pi * 220 * t) + 0.03 * torch.randn(t.shape[0], generator=g)) * envelope + 0.003 * torch.randn(t.shape[0], generator=g)


@pytest.mark.parametrize("name", list(ONE_PASS))
def test_a_file_of_any_length_is_one_pass_of_the_model(name, tmp_path):
    """60 s through ``enhance_file`` (read, enhanced and written in blocks) equals the model over the whole
    signal at once: no chunk boundaries, no state restarted (the old 10 s chunks differed after 9 s)."""
    from sectl.models import build_enhancer

    torch.manual_seed(1)
    model = build_enhancer(name, "tiny", **ONE_PASS[name]).eval()
    x = speechlike(60, model.sample_rate)
    sf.write(tmp_path / "in.wav", x.numpy(), model.sample_rate, subtype="FLOAT")
    enhance_file(model, tmp_path / "in.wav", tmp_path / "out.wav")
    y, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    with torch.inference_mode():
        whole = model(x[None, None])[0, 0]
    assert np.abs(y - whole.numpy()).max() < 1e-4


def test_ten_minutes_through_the_onnxruntime_stream_graph_are_one_pass(tmp_path, monkeypatch):
    from sectl.engines import inference_model
    from sectl.models import build_enhancer

    monkeypatch.setenv("SECTL_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(2)
    model = build_enhancer("nsnet2", "tiny").eval()
    x = speechlike(600, model.sample_rate, seed=3)
    graph = inference_model(model, "onnxruntime")
    assert graph.frames is not None and graph.frames.multi_hop  # the stream graph, many hops per call
    with torch.inference_mode():
        whole = model(x[None, None])[0, 0]
    assert (enhance_tensor(graph, x, model.sample_rate) - whole).abs().max() < 1e-4


def test_the_first_calls_hold_exactly_the_warm_up_hops_and_later_calls_many():
    from sectl.models import build_enhancer
    from sectl.streaming import Streamer, TorchFrames, frame_step
    from sectl.streaming.streamer import MAX_HOPS_PER_CALL

    step = TorchFrames(frame_step(build_enhancer("deepfilternet3", "tiny").eval()))
    sizes = []
    real_call = step.__call__

    class Recording:
        layout, multi_hop = step.layout, step.multi_hop
        initial_state = staticmethod(step.initial_state)

        def __call__(self, samples, length, state):
            sizes.append(samples.shape[-1] // step.layout.hop)
            return real_call(samples, length, state)

    streamer = Streamer(Recording())
    streamer.feed(torch.zeros(1, 1200 * step.layout.hop))
    assert step.layout.warmup == 2 and sizes[0] == 2 and max(sizes) == MAX_HOPS_PER_CALL and sum(sizes) == 1200


def test_enhance_and_stream_give_the_same_file_at_any_length(tmp_path):
    """``sectl enhance FILE`` and ``sectl enhance --stream`` on the same 25 s WAV write the same samples, up to
    float rounding (their blocks differ in size, so a sample on a rounding edge may land one LSB apart)."""
    from sectl.engines import stream_runner
    from sectl.models import build_enhancer
    from sectl.streaming.pipe import stream_enhance

    torch.manual_seed(4)
    model = build_enhancer("nsnet2", "tiny").eval()
    x = speechlike(25, 48000, seed=5)  # resampled to the model's 16 kHz and back, in both
    sf.write(tmp_path / "in.wav", x.numpy(), 48000, subtype="PCM_16")
    enhance_file(model, tmp_path / "in.wav", tmp_path / "offline.wav")
    sink = io.BytesIO()
    stream_enhance(stream_runner(model, "torch"), io.BytesIO((tmp_path / "in.wav").read_bytes()), sink)
    offline, _ = sf.read(tmp_path / "offline.wav", dtype="int16")
    streamed, _ = sf.read(io.BytesIO(sink.getvalue()), dtype="int16")
    assert offline.shape == streamed.shape == (x.shape[-1],)
    differ = offline.astype(int) - streamed
    assert np.abs(differ).max() <= 1 and np.count_nonzero(differ) < 0.001 * differ.size, np.count_nonzero(differ)


def _batch_corpus(root, vctk) -> None:
    """Real speech of several lengths, rates and channel counts, and one file that is not audio."""
    root.mkdir(parents=True)
    for path in sorted((vctk / "noisy").glob("*.wav")):
        (root / path.name).write_bytes(path.read_bytes())
    speech, rate = sf.read(vctk / "noisy" / "p287_001.wav", dtype="float32")
    sf.write(root / "stereo_44k.wav", np.stack([speech, speech[::-1]], axis=1), 44100, subtype="FLOAT")
    sf.write(root / "short.wav", speech[:700], rate, subtype="PCM_16")
    sf.write(root / "long.flac", np.tile(speech, 6), rate)
    (root / "bad.wav").write_text("not audio")


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_files_enhanced_together_equal_each_file_alone(engine, vctk, tmp_path, monkeypatch):
    """``batch > 1`` runs short files of one rate as rows of one stream; every output equals the file
    enhanced alone (float rounding only), long files still go alone, and a bad file is reported."""
    import sectl.enhance as enhance_module
    from sectl.models import build_enhancer

    monkeypatch.setenv("SECTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(enhance_module, "BATCH_MAX_S", 8.0)  # long.flac (11.8 s) streams alone
    torch.manual_seed(4)
    model = build_enhancer("nsnet2", "tiny").eval()
    _batch_corpus(tmp_path / "in", vctk)
    calls = []
    real = enhance_module.enhance_together
    monkeypatch.setattr(enhance_module, "enhance_together", lambda runner, signals, *a: calls.append(len(signals)) or real(runner, signals, *a))
    alone = enhance_paths([tmp_path / "in"], tmp_path / "alone", model=model, engine=engine, batch=1)
    together = enhance_paths([tmp_path / "in"], tmp_path / "together", model=model, engine=engine, batch=5)
    assert together.written == [p.replace("alone", "together") for p in alone.written] and len(alone.written) == 9  # plan order
    assert len(together.failed) == 1 and "bad.wav" in together.failed[0] and together.failed == alone.failed
    assert calls and sum(calls) == 8 and max(calls) > 1  # 7 mono 16 kHz + 1 stereo 44.1 kHz, in groups of <= 5 rows
    for path in sorted((tmp_path / "alone").iterdir()):
        a, rate_a = sf.read(path, dtype="float32")
        b, rate_b = sf.read(tmp_path / "together" / path.name, dtype="float32")
        assert rate_a == rate_b and a.shape == b.shape and sf.info(path).subtype == sf.info(tmp_path / "together" / path.name).subtype
        assert np.abs(a - b).max() <= 1.01 / 32768, path.name  # 16-bit outputs: at most one LSB from rounding


def test_batch_is_refused_where_it_does_not_apply(tmp_path):
    from typer.testing import CliRunner

    from sectl.cli.app import app

    runner = CliRunner()
    streamed = runner.invoke(app, ["enhance", "--stream", "--batch", "4", "-", "-o", "-"], input=b"")
    assert streamed.exit_code == 2 and "--batch: does not apply to --stream" in streamed.output
    jobs = runner.invoke(app, ["enhance", str(tmp_path), "-o", str(tmp_path / "o"), "--batch", "4", "--jobs", "2"])
    assert jobs.exit_code == 2 and "--batch and --jobs exclude each other" in jobs.output


@pytest.mark.cuda
def test_files_enhanced_together_on_a_gpu_equal_each_file_alone(vctk, tmp_path):
    from sectl.models import build_enhancer

    torch.manual_seed(5)
    model = build_enhancer("deepfilternet3", "tiny").eval().cuda()
    _batch_corpus(tmp_path / "in", vctk)
    alone = enhance_paths([tmp_path / "in"], tmp_path / "alone", model=model, batch=1)
    together = enhance_paths([tmp_path / "in"], tmp_path / "together", model=model)  # the GPU default: 32 rows
    assert len(together.written) == len(alone.written) == 9
    for path in sorted((tmp_path / "alone").iterdir()):
        a, _ = sf.read(path, dtype="float32")
        b, _ = sf.read(tmp_path / "together" / path.name, dtype="float32")
        assert np.abs(a - b).max() <= 1e-4 + 1.01 / 32768, path.name


def test_a_file_whose_header_understates_its_length_is_not_read_whole_into_a_group(tmp_path, monkeypatch):
    """Grouping trusts the header's frame count (an estimate for some formats: a VBR MP3 without a Xing
    header); a file that decodes longer than BATCH_MAX_S stops being read there and is enhanced alone,
    so a group's memory stays bounded whatever a header says, and the output is the same."""
    import sectl.enhance as enhance_module
    from sectl.models import build_enhancer

    monkeypatch.setattr(enhance_module, "BATCH_MAX_S", 2.0)
    monkeypatch.setattr(enhance_module, "READ_BLOCK_FRAMES", 4000)
    real_shape = enhance_module._shape
    monkeypatch.setattr(enhance_module, "_shape", lambda path: (16000, 1, 8000) if path.endswith("liar.wav") else real_shape(path))
    signals = []
    real = enhance_module.enhance_together
    monkeypatch.setattr(enhance_module, "enhance_together", lambda runner, xs, *a: signals.extend(xs) or real(runner, xs, *a))
    (tmp_path / "in").mkdir()
    rng = np.random.default_rng(3)
    for name, seconds in (("a.wav", 1.0), ("b.wav", 1.5), ("liar.wav", 10.0)):
        sf.write(tmp_path / "in" / name, (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)
    torch.manual_seed(4)
    model = build_enhancer("nsnet2", "tiny").eval()
    alone = enhance_paths([tmp_path / "in"], tmp_path / "alone", model=model, batch=1)
    together = enhance_paths([tmp_path / "in"], tmp_path / "together", model=model, batch=4)
    assert len(alone.written) == len(together.written) == 3 and not together.failed
    assert signals and max(x.shape[-1] for x in signals) <= 2.0 * 16000
    for name in ("a.wav", "b.wav", "liar.wav"):
        a, _ = sf.read(tmp_path / "alone" / name, dtype="float32")
        b, _ = sf.read(tmp_path / "together" / name, dtype="float32")
        assert a.shape == b.shape and np.abs(a - b).max() <= 1.01 / 32768, name


def test_batch_for_a_model_that_cannot_stream_warns_and_runs_files_alone(tmp_path):
    from sectl.errors import SectlWarning
    from sectl.models import build_enhancer

    write_wav(tmp_path / "in" / "a.wav", tone(0.3))
    with pytest.warns(SectlWarning, match="--batch 4: demucs cannot stream, so files run one at a time"):
        report = enhance_paths([tmp_path / "in"], tmp_path / "out", model=build_enhancer("demucs", "tiny").eval(), batch=4)
    assert len(report.written) == 1
