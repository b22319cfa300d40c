"""A metric whose package (``sectl[metrics]``) is missing is one error, before any scoring, naming the install."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.metrics import distillmos, visqol


@pytest.mark.parametrize(("metric", "module"), [("visqol", "visqol"), ("distillmos", "distillmos"),
                                                 ("nisqa", "torchmetrics.functional.audio.nisqa"), ("utmos", "utmos_pytorch")])  # fmt: skip
def test_a_missing_package_is_one_line_naming_the_install_command(metric, module, vctk, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    visqol._api.cache_clear(), distillmos.model.cache_clear()
    result = CliRunner().invoke(app, ["eval", "--ref", str(vctk / "clean"), "--est", str(vctk / "noisy"), "-m", f"si_sdr,{metric}"])
    visqol._api.cache_clear(), distillmos.model.cache_clear()
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert f"-m {metric} needs the" in result.stderr and "pip install 'sectl[metrics]'" in result.stderr
