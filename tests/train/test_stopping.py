"""Nothing done is lost: SIGINT and SIGTERM save the step reached, a late error saves before it propagates,
and the resumed run equals an uninterrupted one bit for bit (under torchrun: tests/train/test_distributed.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from sectl.errors import SectlError
from sectl.models.io.checkpoint import load_checkpoint
from sectl.train import train
from tests.train.test_distributed import json_lines, worker_env
from tests.train.test_trainer import params, tiny_config

STEPS = 30


def stop_config(data_dir):
    """No periodic checkpoint before the end: whatever ``last.pt`` holds mid-run, the stop saved."""
    return tiny_config(data_dir, "baseline", f"train.steps={STEPS}", "train.log_every=1", "train.checkpoint_every=1000",
                       "loss.mrstft=0", "data.workers=1")  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("full") / "run"
    train(stop_config(data_dir), run)
    return params(run)


def signal_after_log_lines(command: list[str], log, lines: int, signum: int, group: bool) -> subprocess.CompletedProcess:
    """Run ``command``; once ``log`` has ``lines`` lines send ``signum`` to it (``group``: to its whole process
    group, loader workers too, as a terminal's Ctrl-C does), and let it finish."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=worker_env(),
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= lines:
            break
        time.sleep(0.02)
    assert process.poll() is None, f"the run ended before the signal: {process.stderr.read()[-2000:]}"
    if group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_ctrl_c_saves_the_step_reached_and_the_resume_equals_an_uninterrupted_run(data_dir, tmp_path, uninterrupted):
    """SIGINT to the process group, as a terminal's Ctrl-C (loader workers too), mostly lands inside a step:
    that step is finished and saved (before, the run kept only its last periodic checkpoint)."""
    config = stop_config(data_dir)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    command = [sys.executable, "-m", "sectl", "train", "-p", str(tmp_path / "config.yaml"), "-o", str(run), "-q"]
    result = signal_after_log_lines(command, run / "metrics.jsonl", 3, signal.SIGINT, group=True)
    assert result.returncode == 130, result.stderr[-2000:]
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    assert 3 <= saved < STEPS
    assert result.stderr.strip() == f"stopped by SIGINT; step {saved} is saved in {run / 'checkpoints' / 'last.pt'}; " \
                                    f"continue with: sectl train -o {run} --resume"  # fmt: skip
    assert json_lines(run / "metrics.jsonl") == list(range(1, saved + 1))

    train(config, run, resume=True)
    resumed = params(run)
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted)


def test_sigterm_inside_a_step_finishes_it_saves_it_and_exits_143(data_dir, tmp_path, uninterrupted, monkeypatch):
    from typer.testing import CliRunner

    from sectl.cli.app import app
    from sectl.train.trainer import Trainer

    config = stop_config(data_dir)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    original = Trainer.train_step

    def terminated_in_step_5(self, step, batch):
        if step == 4:
            os.kill(os.getpid(), signal.SIGTERM)  # what Slurm, Kubernetes and `timeout` send
        return original(self, step, batch)

    monkeypatch.setattr(Trainer, "train_step", terminated_in_step_5)
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "-p", str(tmp_path / "config.yaml"), "-o", str(run), "-q"])
    assert result.exit_code == 143, result.output
    assert f"stopped by SIGTERM; step 5 is saved in {run / 'checkpoints' / 'last.pt'}" in result.stderr
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 5
    monkeypatch.setattr(Trainer, "train_step", original)
    train(config, run, resume=True)
    resumed = params(run)
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted)


def test_a_validation_that_fails_late_saves_the_steps_before_it(data_dir, tmp_path, uninterrupted, monkeypatch):
    import sectl.train.trainer as trainer

    config = stop_config(data_dir)
    validating = {**config, "validation": {**config["validation"], "noisy": str(data_dir / "vctk" / "noisy"),
                                          "clean": str(data_dir / "vctk" / "clean"), "every": 7, "metric": "si_sdr",
                                          "metrics": ["si_sdr"]}}  # fmt: skip
    original, calls = trainer.score_files, []

    def fails_the_second_time(*args):
        calls.append(1)
        if len(calls) == 2:
            raise SectlError("validation/p287_001.wav: cannot read")
        return original(*args)

    monkeypatch.setattr(trainer, "score_files", fails_the_second_time)
    with pytest.raises(SectlError, match="cannot read"):
        train(validating, tmp_path / "run")
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 14
    monkeypatch.setattr(trainer, "score_files", original)
    train(validating, tmp_path / "run", resume=True)
    resumed = params(tmp_path / "run")
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted)
