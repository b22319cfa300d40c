"""Every shipped preset x precision x (one process, two torchrun ranks): trains, resumes exactly, keeps the
ranks identical, under the step guard and NCCL's rules (see tests/train/matrix.py, which runs the cells).

One subprocess per (precision, processes) runs all presets, so start-up is paid 6 times, not 102.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.train.matrix import PRESETS
from tests.train.test_distributed import TORCHRUN, launch

PRECISIONS = ["fp32", "bf16", "fp16"]
MATRIX = str(__import__("pathlib").Path(__file__).with_name("matrix.py"))


def cells(out, ranks: int) -> list[dict]:
    return [json.loads((out / f"cells-{rank}.json").read_text()) for rank in range(ranks)]


def assert_every_cell_passed(results: list[dict]) -> None:
    for rank, by_preset in enumerate(results):
        assert sorted(by_preset) == PRESETS, f"rank {rank} ran {sorted(by_preset)}"
        failed = {preset: problems for preset, problems in by_preset.items() if problems}
        assert not failed, f"rank {rank}: " + json.dumps(failed, indent=1)[:6000]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_preset_trains_and_resumes_in_one_process(data_dir, tmp_path, precision):
    result = launch([sys.executable, MATRIX, precision, str(tmp_path)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert_every_cell_passed(cells(tmp_path, 1))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_preset_trains_on_two_ranks_as_nccl_would_take_it(data_dir, tmp_path, precision):
    result = launch([*TORCHRUN, MATRIX, precision, str(tmp_path)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert_every_cell_passed(cells(tmp_path, 2))


def test_the_matrix_fails_where_a_gpu_run_would(data_dir, tmp_path, monkeypatch):
    """The matrix can fail: a transposed buffer (item 1's bug) broadcast as it is breaks NCCL's rules, and a
    Python-data tensor inside a step (item 3's) breaks the step guard."""
    script = tmp_path / "broken.py"
    script.write_text(
        "import runpy, sys, torch\n"
        "import sectl.train.distributed as d, torch.distributed as dist\n"
        "def naive(self, module):\n"
        "    for t in [*module.parameters(), *module.buffers()]: dist.broadcast(t.data, src=0)\n"
        "d.Workers.broadcast = naive\n"
        "import sectl.models.enhancers.erb as erb\n"
        "erb.band_expand_matrix = lambda widths: (erb.band_average_matrix(widths) > 0).float().T\n"
        "import sectl.models.enhancers.deepfilternet3 as dfn\n"
        "dfn.band_expand_matrix = erb.band_expand_matrix\n"
        "original = erb.running_mean\n"
        "def listy(x, alpha, initial):\n"
        "    torch.tensor([1.0, -alpha])\n"
        "    return original(x, alpha, initial)\n"
        "dfn.running_mean = listy\n"
        f"sys.argv = [{MATRIX!r}, *sys.argv[1:]]\n"
        f"runpy.run_path({MATRIX!r}, run_name='__main__')\n"
    )
    result = launch([*TORCHRUN, str(script), "fp32", str(tmp_path / "out"), "finetune"])
    assert result.returncode == 0, result.stderr[-3000:]
    problems = " ".join(cells(tmp_path / "out", 2)[0]["finetune"])
    assert "NCCL rules: broadcast" in problems and "not contiguous" in problems
    assert "step guard: tensor from Python data torch.tensor()" in problems
