from __future__ import annotations

import json

from typer.testing import CliRunner

from sectl.cli.app import app
from tests.conftest import tone, write_wav

runner = CliRunner()


def test_train_then_enhance_from_the_command_line(data_dir, tmp_path):
    run = tmp_path / "R1"
    result = runner.invoke(app, [
        "train", "--preset", "baseline", "--out", str(run), "-q", "--set", "model.size=tiny", "--set", "train.steps=2",
        "--set", "train.batch_size=2", "--set", "data.segment_s=0.5", "--set", f"data.clean={data_dir / 'speech'}",
        "--set", f"data.noise={data_dir / 'noise'}",
    ])
    assert result.exit_code == 0, result.output
    assert "trained 2 steps" in result.stdout
    write_wav(tmp_path / "in" / "x.wav", tone(0.5))
    result = runner.invoke(app, ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(run), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == [str(tmp_path / "out" / "x.wav")]


def test_train_bad_override_is_one_line_error(tmp_path):
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--set", "train.stepz=1"])
    assert result.exit_code == 2 and "train.stepz" in result.stderr  # bad configuration: exit 2, as documented


def test_enhance_bad_file_exit_code(tiny_checkpoint, tmp_path):
    write_wav(tmp_path / "in" / "good.wav", tone(0.3))
    (tmp_path / "in" / "bad.wav").write_bytes(b"")
    result = runner.invoke(app, ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint)])
    assert result.exit_code == 1
    assert "bad.wav: file is empty" in result.stderr and "enhanced 1 file(s)" in result.stdout


def test_the_training_bar_keeps_its_count_and_time_left_at_80_columns():
    from rich.console import Console

    from sectl.cli.train import ProgressReporter

    reporter = ProgressReporter(enabled=False)
    reporter("start", {"step": 0, "total": 10000})
    reporter("step", {"step": 1234})
    reporter("log", {"step": 1234, **{f"term_{i}": 0.123456 for i in range(12)}})
    console = Console(width=80, record=True)
    console.print(reporter.progress.make_tasks_table(reporter.progress.tasks))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "1234/10000" in text and "term_0" in text and ":" in text.split("1234/10000")[1]


def test_ctrl_c_of_train_says_which_step_is_saved_and_how_to_resume(data_dir, tmp_path, monkeypatch):
    from sectl.train.trainer import Trainer

    original = Trainer.train_step

    def interrupted_in_step_3(self, step, batch):
        if step == 2:
            raise KeyboardInterrupt  # mid-step: the periodic checkpoint of step 2 is what remains
        return original(self, step, batch)

    monkeypatch.setattr(Trainer, "train_step", interrupted_in_step_3)
    run = tmp_path / "run"
    result = runner.invoke(app, [
        "train", "--out", str(run), "-q", "--set", "model.size=tiny", "--set", "train.steps=6", "--set", "train.checkpoint_every=1",
        "--set", "train.batch_size=2", "--set", "data.segment_s=0.5", "--set", f"data.clean={data_dir / 'speech'}",
        "--set", f"data.noise={data_dir / 'noise'}",
    ])  # fmt: skip
    assert result.exit_code == 130
    assert f"step 2 is saved in {run / 'checkpoints' / 'last.pt'}; continue with: sectl train -o {run} --resume" in result.stderr


def tiny_train(data_dir, run, *sets: str) -> list[str]:
    """``sectl train`` arguments for a tiny 2-step run into ``run`` with ``sets`` as more overrides."""
    overrides = ["model.size=tiny", "train.steps=2", "train.batch_size=2", "data.segment_s=0.5", f"data.clean={data_dir / 'speech'}",
                 f"data.noise={data_dir / 'noise'}", *sets]  # fmt: skip
    return ["train", "--out", str(run), "-q", *[a for o in overrides for a in ("--set", o)]]


def test_what_a_run_needs_is_found_before_step_1_or_one_line_exit_2(data_dir, tmp_path, monkeypatch):
    """DNSMOS for validation.metric was looked for at the first validation, after steps that were then lost,
    and the error said to pass --dnsmos-dir, which train does not have."""
    import torchaudio

    from sectl import modelfiles
    from sectl.metrics import asr, dnsmos

    monkeypatch.setenv("SECTL_DNSMOS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("SECTL_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(modelfiles, "download", lambda *a, **k: (_ for _ in ()).throw(OSError("network is unreachable")))
    dnsmos._sessions.cache_clear()
    vctk = [f"validation.noisy={data_dir / 'vctk' / 'noisy'}", f"validation.clean={data_dir / 'vctk' / 'clean'}"]
    cases = {
        "validation.metric=dnsmos_ovrl": ["SECTL_DNSMOS_DIR", "$SECTL_MODELS_DIR/dnsmos/", str(tmp_path / "models" / "dnsmos")],
        "validation.metrics=[si_sdr, wer]": ["wer", "SECTL_ASR_MODEL", "$SECTL_MODELS_DIR/asr/"],
        "data.rir=no-such-rooms": ["data.rir: no-such-rooms: no such file or folder"],
    }
    monkeypatch.delenv("SECTL_ASR_MODEL", raising=False)
    offline = lambda *a, **k: (_ for _ in ()).throw(OSError("Temporary failure in name resolution"))  # noqa: E731
    monkeypatch.setattr(torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H, "get_model", offline)
    asr.set_recognizer(None)
    for setting, named in cases.items():
        run = tmp_path / setting.split("=")[0]
        result = runner.invoke(app, tiny_train(data_dir, run, *vctk, setting, "validation.every=1"))
        assert result.exit_code == 2, result.output
        assert len(result.stderr.strip().splitlines()) == 1 and all(n in result.stderr for n in named), result.stderr
        assert "pass --dnsmos-dir" not in result.stderr
        assert not (run / "metrics.jsonl").exists()  # refused before step 1
    dnsmos._sessions.cache_clear()
    asr.set_recognizer(None)


def test_an_ssl_layer_the_teacher_lacks_is_a_configuration_error(data_dir, tmp_path):
    result = runner.invoke(app, tiny_train(data_dir, tmp_path / "run", "loss.ssl=1", "ssl.model=tiny", "ssl.layer=5"))
    assert result.exit_code == 2, result.output
    assert "ssl.layer 5 out of range 1..2 for tiny" in result.stderr
