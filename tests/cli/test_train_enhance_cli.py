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
