"""The install path as a user takes it: build the wheel, install it into a fresh virtual environment,
and run `sectl train` (tiny, 2 steps), `enhance` and `eval` from there (not from this checkout)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)


def test_a_wheel_in_a_fresh_venv_trains_enhances_and_evaluates(tmp_path, data_dir):
    build = run(sys.executable, "-m", "pip", "wheel", REPO, "--no-deps", "-q", "-w", tmp_path / "dist")
    if build.returncode != 0:
        pytest.skip(f"could not build a wheel here (pip wheel: {build.stderr.strip().splitlines()[-1:]})")
    wheel = next((tmp_path / "dist").glob("sectl-*.whl"))
    with zipfile.ZipFile(wheel) as archive:  # the report page's files are package data, not Python
        assert {f"sectl/report/page.{kind}" for kind in ("html", "js", "css")} <= set(archive.namelist())
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    python, sectl = venv / "bin" / "python", venv / "bin" / "sectl"
    # The venv sees the running interpreter's packages (torch is a large download; this works whether the
    # suite runs in a virtual environment or not) through a .pth file, after its own site-packages, so
    # sectl comes from the wheel (the running environment's editable sectl is not activated by a path line).
    own = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    running = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (Path(own) / "running-environment.pth").write_text("".join(f"{p}\n" for p in sorted(running)))
    installed = run(python, "-m", "pip", "install", "-q", "--no-deps", wheel)
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PYTHONPATH": ""}
    where = run(python, "-c", "import sectl; print(sectl.__file__)", cwd=tmp_path, env=env).stdout
    assert str(venv) in where, where  # the wheel's copy, not the checkout

    train = run(sectl, "train", "--preset", "baseline", "-o", tmp_path / "run", "-q", "--set", "model.size=tiny",
                "--set", "train.steps=2", "--set", "train.batch_size=2", "--set", "data.segment_s=0.5",
                "--set", f"data.clean={data_dir / 'speech'}", "--set", f"data.noise={data_dir / 'noise'}",
                cwd=tmp_path, env=env)  # fmt: skip
    assert train.returncode == 0, train.stderr
    enhance = run(sectl, "enhance", REPO / "examples" / "noisy", "-o", tmp_path / "enhanced", cwd=tmp_path, env=env)
    assert enhance.returncode == 0, enhance.stderr
    score = run(sectl, "eval", "--ref", REPO / "examples" / "clean", "--est", tmp_path / "enhanced", "-m", "si_sdr", "--json",
                cwd=tmp_path, env=env)  # fmt: skip
    assert score.returncode == 0, score.stderr
    assert '"si_sdr"' in score.stdout
