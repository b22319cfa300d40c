"""Training on the real audio: run-folder contents, exact resumption, MAL stage 2."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from sectl.errors import SectlError
from sectl.models.io.checkpoint import load_checkpoint
from sectl.train import resolve_config, train
from sectl.train.trainer import lr_factor


def tiny_config(data_dir, preset="baseline", *extra):
    return resolve_config(preset, [
        "model.size=tiny", "train.batch_size=2", "train.steps=6", "train.warmup_steps=2", "train.log_every=2",
        "data.segment_s=0.5", f"data.clean={data_dir / 'speech'}", f"data.noise={data_dir / 'noise'}",
        f"data.rir={data_dir / 'rir'}", "train.threads=1", *extra,
    ])


def params(run) -> dict:
    return load_checkpoint(run / "checkpoints" / "last.pt")["state_dict"]


def test_run_folder_holds_config_checkpoints_log_and_validation(data_dir, tmp_path):
    vctk = data_dir / "vctk"
    config = tiny_config(data_dir, "baseline", f"validation.noisy={vctk / 'noisy'}", f"validation.clean={vctk / 'clean'}",
                         "validation.every=3", "validation.metrics=[pesq_wb, si_sdr]")
    state = train(config, tmp_path / "run", preset="baseline")
    run = tmp_path / "run"
    assert yaml.safe_load((run / "config.yaml").read_text()) == config
    assert json.loads((run / "run.json").read_text())["preset"] == "baseline"
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "checkpoints" / "last.pt").is_file()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    validations = [r for r in records if "validation" in r]
    assert [r["step"] for r in validations] == [3, 6]
    assert set(validations[0]["validation"]) == {"pesq_wb", "si_sdr"}
    assert any("mrstft" in r and "l1" in r for r in records)
    assert state.step == 6 and state.best_step in (3, 6)
    checkpoint = load_checkpoint(run / "checkpoints" / "last.pt")
    assert checkpoint["step"] == 6 and checkpoint["config"] == config


def train_interrupted_at(config: dict, run, step: int) -> None:
    """Train into ``run``, stop it with Ctrl-C after ``step`` (``last.pt`` is saved there), then resume to the end."""

    def stop(event, data):
        if event == "step" and data["step"] == step:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, run, callback=stop)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == step
    train(config, run, resume=True)


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(data_dir, tmp_path):
    config = tiny_config(data_dir, "baseline", "train.checkpoint_every=100")
    train(config, tmp_path / "full")
    train_interrupted_at(config, tmp_path / "killed", 3)
    full, resumed = params(tmp_path / "full"), params(tmp_path / "killed")
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_a_hard_kill_resumes_from_the_last_checkpoint_without_stale_log_lines(data_dir, tmp_path, monkeypatch):
    from sectl.train.trainer import Trainer

    config = tiny_config(data_dir, "baseline", "train.checkpoint_every=2", "train.log_every=1")
    train(config, tmp_path / "full")
    original = Trainer.train_step

    def dies_in_step_6(self, step, batch):
        if step == 5:
            raise RuntimeError("power cut")  # mid-step: nothing is saved, last.pt stays at step 4
        return original(self, step, batch)

    monkeypatch.setattr(Trainer, "train_step", dies_in_step_6)
    with pytest.raises(RuntimeError):
        train(config, tmp_path / "killed")
    monkeypatch.setattr(Trainer, "train_step", original)
    with open(tmp_path / "killed" / "metrics.jsonl", "a") as log:
        log.write('{"step": 5, "lo')  # a line torn by the kill
    train(config, tmp_path / "killed", resume=True)
    full, resumed = params(tmp_path / "full"), params(tmp_path / "killed")
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    steps = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_refuses_a_different_configuration_and_fresh_runs_refuse_old_folders(data_dir, tmp_path):
    config = tiny_config(data_dir)
    train(config, tmp_path / "run")
    with pytest.raises(SectlError, match="train.lr"):
        train(tiny_config(data_dir, "baseline", "train.lr=0.1"), tmp_path / "run", resume=True)
    with pytest.raises(SectlError, match="--resume"):
        train(config, tmp_path / "run")
    with pytest.raises(SectlError, match="nothing to resume"):
        train(config, tmp_path / "empty", resume=True)


@pytest.mark.parametrize("preset", ["mal", "mal_dynamic", "mal_frozen_fe"])
def test_mal_stage_two_starts_from_a_baseline_run(data_dir, tmp_path, preset):
    train(tiny_config(data_dir), tmp_path / "stage1")
    config = tiny_config(data_dir, preset, f"init_from={tmp_path / 'stage1'}", "train.steps=3")
    train(config, tmp_path / "stage2")
    records = [json.loads(line) for line in (tmp_path / "stage2" / "metrics.jsonl").read_text().splitlines()]
    assert all("mal" in r for r in records if "loss" in r)
    with pytest.raises(SectlError, match="architecture differs"):
        train(tiny_config(data_dir, preset, f"init_from={tmp_path / 'stage1'}", "model.hidden=4"), tmp_path / "x")


@pytest.mark.parametrize("preset", ["finetune", "mal", "mal_bottleneck", "ssl_mse", "ssl_softdtw"])
def test_fine_tuning_presets_refuse_to_start_without_a_trained_model(data_dir, tmp_path, preset):
    from sectl.errors import ConfigError

    with pytest.raises(ConfigError, match="init_from: this preset fine-tunes a trained model"):
        train(tiny_config(data_dir, preset, "init_from=null", "ssl.model=tiny", "ssl.layer=2"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_collapse_baseline_survives_a_resume(data_dir, tmp_path):
    """The monitor compares with the run's first step, also after --resume (not the resumed step)."""
    train(tiny_config(data_dir), tmp_path / "stage1")
    config = tiny_config(data_dir, "mal_dynamic", f"init_from={tmp_path / 'stage1'}", "train.checkpoint_every=100")
    train(config, tmp_path / "full")
    train_interrupted_at(config, tmp_path / "killed", 3)
    baselines = [load_checkpoint(tmp_path / run / "checkpoints" / "last.pt")["task"]["modules"]["collapse_monitor"]["baseline"]
                 for run in ("full", "killed")]  # fmt: skip
    assert torch.isfinite(baselines[0]) and torch.equal(*baselines)
    records = [json.loads(line) for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    first_resumed = next(r for r in records if r["step"] == 4)
    assert first_resumed["mal_spread_ratio"] != 1.0  # a baseline reset on resume would give exactly 1


@pytest.mark.parametrize("preset,term", [
    ("wavlm_loss", "ssl"), ("ssl_mse", "ssl_mse"), ("ssl_mse_pad", "ssl_pad"), ("ssl_softdtw", "ssl_sdtw"),
])
def test_ssl_presets_train_with_the_tiny_teacher(data_dir, tmp_path, preset, term):
    config = tiny_config(data_dir, preset, "ssl.model=tiny", "ssl.layer=2", "train.steps=2", "init_from=null",
                         "init_required=false")  # fmt: skip
    train(config, tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1][term] > 0


def test_lr_schedule_warms_up_then_decays():
    factors = [lr_factor(s, 10, 100, 0.1) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[-1] == pytest.approx(0.1, abs=0.01)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))


def test_missing_training_data_is_a_clear_error(tmp_path):
    config = resolve_config("baseline", ["model.size=tiny"])
    with pytest.raises(SectlError, match="no training data"):
        train(config, tmp_path / "run")


def test_masknet_trains_and_validates(data_dir, tmp_path):
    vctk = data_dir / "vctk"
    config = tiny_config(data_dir, "baseline", "model.name=masknet", "train.steps=2", "validation.every=2",
                         f"validation.noisy={vctk / 'noisy'}", f"validation.clean={vctk / 'clean'}", "validation.metrics=[si_sdr]")
    state = train(config, tmp_path / "run")
    assert state.best_step == 2
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")["model"]["name"] == "masknet"


def test_a_non_finite_loss_stops_the_run_without_touching_the_weights(data_dir, tmp_path, monkeypatch):
    from sectl.errors import SectlError as Error
    from sectl.train.losses import LossSet

    config = tiny_config(data_dir, "baseline", "train.checkpoint_every=1")
    original = LossSet.forward

    def nan_at_step_3(self, estimate, reference):
        total, terms = original(self, estimate, reference)
        nan_at_step_3.calls += 1
        return (total * float("nan"), terms) if nan_at_step_3.calls == 3 else (total, terms)

    nan_at_step_3.calls = 0
    monkeypatch.setattr(LossSet, "forward", nan_at_step_3)
    with pytest.raises(Error, match="step 3: non-finite"):
        train(config, tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 2 and all(torch.isfinite(v).all() for v in state["state_dict"].values())


def test_resume_may_change_execution_settings_only(data_dir, tmp_path):
    from typer.testing import CliRunner

    from sectl.cli.app import app

    config = tiny_config(data_dir, "baseline", "train.steps=2")
    train(config, tmp_path / "run")
    config["train"]["steps"] = 3
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "run"), "--resume", "-q", "--set", "train.threads=2"])
    assert result.exit_code == 0, result.output
    assert "trained 3 steps" in result.stdout
    refused = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "run"), "--resume", "-q", "--set", "train.lr=0.5"])
    assert refused.exit_code == 1 and "train.lr" in refused.stderr


def pretrained_config(data_dir, preset, name, *extra):
    """A fine-tuning config on the real audio, with model.* left to init_from."""
    return resolve_config(preset, [
        f"init_from={name}", "train.batch_size=2", "train.steps=2", "train.warmup_steps=1", "train.log_every=1",
        "data.segment_s=0.5", f"data.clean={data_dir / 'speech'}", f"data.noise={data_dir / 'noise'}",
        "train.threads=1", "ssl.model=tiny", "ssl.layer=2", *extra,
    ])


@pytest.mark.parametrize("preset", ["finetune", "mal", "mal_frozen_fe", "mal_dynamic", "ssl_mse_pad"])
def test_every_fine_tuning_preset_starts_from_a_pretrained_model(models_dir, data_dir, tmp_path, preset):
    from sectl.engines import load_enhancer

    extra = ["mal.frozen_levels=1"] if preset == "mal_frozen_fe" else []  # NSNet2 has 2 learned levels
    train(pretrained_config(data_dir, preset, "nsnet2", *extra), tmp_path / "run")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["name"] == "nsnet2"  # the architecture came from init_from and is recorded
    tuned, published = load_enhancer(tmp_path / "run"), load_enhancer("nsnet2")
    assert tuned.sample_rate == 16000
    changed = [not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), published.state_dict().values())]
    assert any(changed)  # it trained
    if preset == "mal_frozen_fe":  # the spectrum level has no weights; fc_in (level 1) stays as published
        assert torch.equal(tuned.fc_in[0].weight, published.fc_in[0].weight)
        assert not torch.equal(tuned.gru.weight_hh_l0, published.gru.weight_hh_l0)


def test_deepfilternet3_fine_tunes_at_48_khz_and_keeps_its_run_config(models_dir, data_dir, tmp_path):
    config = pretrained_config(data_dir, "mal", "deepfilternet3")
    train(config, tmp_path / "run")
    payload = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert payload["model"]["name"] == "deepfilternet3" and payload["model"]["sample_rate"] == 48000
    more = pretrained_config(data_dir, "mal", "deepfilternet3", "train.steps=3")
    with pytest.raises(SectlError, match="train.steps"):  # a different schedule is a different run
        train(more, tmp_path / "run", resume=True)


def test_model_settings_that_contradict_init_from_are_refused(models_dir, data_dir, tmp_path):
    with pytest.raises(SectlError, match="architecture differs"):
        train(pretrained_config(data_dir, "finetune", "nsnet2", "model.name=demucs", "model.size=tiny"), tmp_path / "x")


def test_a_run_started_from_a_pretrained_model_resumes_from_its_folder(models_dir, data_dir, tmp_path):
    from sectl.train import resume

    config = pretrained_config(data_dir, "mal", "nsnet2", "train.steps=3", "train.checkpoint_every=100")

    def stop_at_1(event, data):
        if event == "step" and data["step"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "run", callback=stop_at_1)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["name"] == "nsnet2" and saved["model"]["args"]["hidden"] == 400  # recorded in full
    assert resume(tmp_path / "run").step == 3


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_resumes_exactly_on_cpu(data_dir, tmp_path, precision):
    config = tiny_config(data_dir, "baseline", "train.steps=4", f"train.precision={precision}", "train.checkpoint_every=100")
    train(config, tmp_path / "full")
    train_interrupted_at(config, tmp_path / "killed", 2)
    full, resumed = params(tmp_path / "full"), params(tmp_path / "killed")
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    fp32 = tiny_config(data_dir, "baseline", "train.steps=4")
    train(fp32, tmp_path / "fp32")
    reference = params(tmp_path / "fp32")
    assert all(torch.isfinite(v).all() for v in full.values())
    assert any(not torch.equal(full[k], reference[k]) for k in full)  # it really ran in another precision
    records = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert all(isinstance(r["loss"], float) and r["loss"] > 0 for r in records)


def test_tensorboard_gets_the_logged_scalars_and_validation_audio(data_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    vctk = data_dir / "vctk"
    config = tiny_config(data_dir, "baseline", "train.steps=2", "train.tensorboard=true", "validation.every=2",
                         f"validation.noisy={vctk / 'noisy'}", f"validation.clean={vctk / 'clean'}", "validation.metrics=[si_sdr]")
    train(config, tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"audio": 0}).Reload()
    tags = events.Tags()
    assert {"train/loss", "train/l1", "train/mrstft", "train/lr", "validation/si_sdr", "validation/pesq_wb"} <= set(tags["scalars"])
    assert len(tags["audio"]) == 3
    assert [e.step for e in events.Scalars("train/loss")] == [2]


def test_compile_is_refused_where_torch_cannot_compile(data_dir, tmp_path, monkeypatch):
    from sectl.errors import ConfigError

    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: False)
    with pytest.raises(ConfigError, match="train.compile: torch.compile is not supported"):
        train(tiny_config(data_dir, "baseline", "train.compile=true"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_compile_on_a_cpu_keeps_quiet_about_cuda_and_graph_breaks():
    """train.compile on a CPU printed torch's "No CUDA runtime is found, using CUDA_HOME" and Dynamo's
    graph-break notes (5 lines a user can do nothing about); other warnings, and compile errors, stay."""
    import logging
    import warnings

    from sectl.train.tasks import quiet_compiler

    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_compiler(torch.device("cpu"))
            warnings.warn_explicit("Dynamo does not know how to trace the builtin `list.append`", UserWarning,
                                   "functions.py", 1, module="torch._dynamo.variables.functions")  # fmt: skip
            warnings.warn_explicit("a model's own warning", UserWarning, "model.py", 1, module="sectl.models.base")
        assert [str(w.message) for w in caught] == ["a model's own warning"]
        assert not logger.isEnabledFor(logging.WARNING) and logger.isEnabledFor(logging.ERROR)
    finally:
        logger.setLevel(level)
