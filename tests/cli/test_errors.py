"""Bad arguments, configurations and model files: one line naming the problem, exit 2, no traceback,
and nothing half-made (no run folder)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sectl.cli.app import app

runner = CliRunner()
TRAIN = ["train", "--set", "model.size=tiny"]


@pytest.fixture
def files(tmp_path, data_dir, tiny_checkpoint):
    sf.write(tmp_path / "one.wav", np.array([0.1], np.float32), 16000)
    sf.write(tmp_path / "ten_ms.wav", 0.1 * np.ones(160, np.float32), 16000)
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "csv_folder").mkdir()
    (tmp_path / "dup.yaml").write_text("extends: base\ntrain:\n  steps: 5\n  steps: 6\n")
    (tmp_path / "broken.yaml").write_text("train: [1, 2\n")
    return {"tmp": tmp_path, "data": data_dir, "model": tiny_checkpoint, "clean": data_dir / "vctk" / "clean"}


CASES = {
    "chunk inf": (lambda f: ["enhance", str(f["clean"]), "-o", str(f["tmp"] / "o"), "--chunk", "inf", "-m", str(f["model"])], "--chunk"),
    "align 1 sample": (lambda f: ["align", str(f["tmp"] / "one.wav"), str(f["tmp"] / "ten_ms.wav")], "too short to align"),
    "enhance empty .pt": (lambda f: ["enhance", str(f["clean"]), "-o", str(f["tmp"] / "o"), "-m", str(f["tmp"] / "empty.pt")], "empty file"),
    "encode empty .pt": (lambda f: ["encode", str(f["clean"]), "-o", str(f["tmp"] / "o"), "-m", str(f["tmp"] / "empty.pt")], "empty file"),
    "encode an enhancer": (lambda f: ["encode", str(f["clean"]), "-o", str(f["tmp"] / "o"), "-m", "deepfilternet3"], "a pretrained enhancer, not a speech VAE"),
    "unknown model": (lambda f: ["enhance", str(f["clean"]), "-o", str(f["tmp"] / "o"), "-m", "nsnet3"], "no such model"),
    "unknown metric": (lambda f: ["eval", "--ref", str(f["clean"]), "--est", str(f["clean"]), "-m", "bogus"], "unknown metric(s) bogus"),
    "empty metric": (lambda f: ["eval", "--ref", str(f["clean"]), "--est", str(f["clean"]), "-m", ""], "no metric given"),
    "unknown features": (lambda f: ["align", str(f["clean"] / "p287_001.wav"), str(f["clean"] / "p287_002.wav"), "--features", "bogus"], "unknown feature kind"),
    "shard 3/2": (lambda f: ["enhance", str(f["clean"]), "-o", str(f["tmp"] / "o"), "--shard", "3/2", "-m", str(f["model"])], "need 1 <= K <= N"),
    "csv is a folder": (lambda f: ["eval", "--ref", str(f["clean"]), "--est", str(f["clean"]), "-m", "si_sdr", "--csv", str(f["tmp"] / "csv_folder")], "is a folder"),
    "resume a typo": (lambda f: ["train", "-o", str(f["tmp"] / "typo"), "--resume"], "not a run folder"),
    "duplicate yaml key": (lambda f: [*TRAIN, "-o", str(f["tmp"] / "run"), "-p", str(f["tmp"] / "dup.yaml")], "line 4: duplicate key 'steps'"),
    "broken preset yaml": (lambda f: [*TRAIN, "-o", str(f["tmp"] / "run"), "-p", str(f["tmp"] / "broken.yaml")], "broken.yaml: line"),
    "missing data.clean": (lambda f: [*TRAIN, "-o", str(f["tmp"] / "run"), "--set", f"data.noise={f['data'] / 'noise'}"], "data.clean: needed"),
    "unknown validation metric": (lambda f: [*TRAIN, "-o", str(f["tmp"] / "run"), "--set", "validation.metric=bogus"], "validation.metric: unknown metric 'bogus'"),
    "align --model with mfcc": (lambda f: ["align", str(f["clean"] / "p287_001.wav"), str(f["clean"] / "p287_002.wav"), "-m", "nsnet2"], "MFCC features use no model"),
    "encode --metrics without --roundtrip": (lambda f: ["encode", str(f["clean"]), "-o", str(f["tmp"] / "o"), "-m", str(f["model"]), "--metrics", "si_sdr"], "--roundtrip only"),
    "eval --merge -m": (lambda f: ["eval", "--merge", str(f["tmp"] / "x.json"), "-m", "si_sdr"], "keeps the metrics"),
    "checkpoint not found": (lambda f: ["enhance", str(f["clean"]), "-o", str(f["tmp"] / "o"), "-m", str(f["tmp"] / "gone.pt")], "checkpoint not found"),
    "a model that cannot stream": (lambda f: ["enhance", "--stream", "-m", "sectl-demucs", "-", "-o", "-"], "demucs cannot stream"),
    "export a model that cannot stream": (lambda f: ["export", "sectl-demucs", "-o", str(f["tmp"] / "o" / "d.onnx")], "demucs cannot stream"),
    "export a pretrained model as .pt": (lambda f: ["export", "nsnet2", "-o", str(f["tmp"] / "o" / "n.pt")], "no sectl run to export as NAME.pt"),
    "unknown mal variant": (lambda f: [*TRAIN, "-o", str(f["tmp"] / "run"), "-p", "mal", "--set", "mal.variant=bogus"], "mal.variant: expected"),
    "skip-existing with overwrite": (lambda f: ["enhance", str(f["clean"]), "-o", str(f["tmp"] / "o"), "--skip-existing", "--overwrite"], "exclude each other"),
    **{f"train {o}": (lambda f, o=o: [*TRAIN, "-o", str(f["tmp"] / "run"), "--set", o], o.split("=")[0])
       for o in ("train.batch_size=0", "data.segment_s=0", "train.lr=nan", "train.steps=-1", "data.snr_db=[20,-5]")},
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_one_line_exit_2_and_nothing_half_made(files, case):
    args, message = CASES[case]
    result = runner.invoke(app, args(files))
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    if "Usage:" not in result.stderr:  # typer's own usage errors come as a small framed block
        assert len(result.stderr.strip().splitlines()) == 1 or case in ("enhance empty .pt", "a model that cannot stream")  # "using ..." may precede
    assert not (files["tmp"] / "run").exists() and not (files["tmp"] / "o").exists()


@pytest.fixture(scope="module")
def trained_run(data_dir, tmp_path_factory):
    from sectl.train import train
    from tests.train.test_trainer import tiny_config

    run = tmp_path_factory.mktemp("trained") / "run"
    train(tiny_config(data_dir, "baseline", "train.steps=1"), run)
    return run


@pytest.mark.parametrize("damage,message", [
    (lambda run, model: (run / "config.yaml").write_text("train: [1, 2\n"), "config.yaml: line 2"),
    (lambda run, model: (run / "checkpoints" / "last.pt").write_bytes(b""), "empty file"),
    (lambda run, model: (run / "checkpoints" / "last.pt").write_bytes(model.read_bytes()), "holds no training state"),
])  # fmt: skip
def test_resume_names_what_is_wrong_with_the_run_folder(trained_run, tmp_path, tiny_checkpoint, damage, message):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    damage(run, tiny_checkpoint)
    result = runner.invoke(app, ["train", "-o", str(run), "--resume"])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_missing_official_model_files_are_exit_2_naming_where_to_put_them(tmp_path, monkeypatch, data_dir):
    """As the README says: model files that are not where sectl looks are a setup error (2), not a failure (1)."""
    monkeypatch.setenv("SECTL_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = runner.invoke(app, ["enhance", str(data_dir / "vctk" / "noisy"), "-o", str(tmp_path / "o"), "-m", "nsnet2"])
    assert result.exit_code == 2
    assert "nsnet2 model files not found" in result.stderr and "SECTL_MODELS_DIR" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()
