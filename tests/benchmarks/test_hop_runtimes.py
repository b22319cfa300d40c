"""benchmarks/hop_runtimes.py: the compiled row's traceable recurrences equal ``nn.GRU``/``nn.RNN`` and live on a
copy, so the eager row beside it still runs the model's own recurrences (it once measured the traceable cells)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from sectl.models import build_enhancer
from sectl.streaming.steps import frame_step

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"


@pytest.fixture(scope="module")
def hop_runtimes():
    """The script as a module; afterwards neither benchmarks/ (which it puts on ``sys.path`` itself) nor the
    scripts it imported (``stream``) are left to shadow other imports for the rest of the session."""
    path, modules = list(sys.path), set(sys.modules)
    try:
        spec = importlib.util.spec_from_file_location("hop_runtimes", BENCHMARKS / "hop_runtimes.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path[:] = path
        for name in set(sys.modules) - modules:
            if Path(getattr(sys.modules[name], "__file__", None) or "/").parent == BENCHMARKS:
                del sys.modules[name]


def recurrences(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.GRU, nn.RNN))]


def test_traceable_step_leaves_the_model_alone_and_matches_it(hop_runtimes):
    torch.manual_seed(0)
    model = build_enhancer("deepfilternet3", "tiny").eval()
    before = recurrences(model)
    traced = hop_runtimes.traceable_step(model)
    assert before and recurrences(model) == before  # the shared model keeps its nn.GRUs
    assert not recurrences(traced) and any(isinstance(m, hop_runtimes.TraceableRecurrence) for m in traced.modules())
    eager = frame_step(model)
    hop, known = eager.layout.hop, torch.tensor([-1])
    x = torch.randn(1, 6 * hop)

    def hop_by_hop(step: nn.Module) -> torch.Tensor:
        state, outs = step.initial_state(1), []
        for i in range(6):
            out, *state = step(x[:, i * hop : (i + 1) * hop], known, *state)
            outs.append(out)
        return torch.cat(outs, -1)

    with torch.inference_mode():
        torch.testing.assert_close(hop_by_hop(traced), hop_by_hop(eager), atol=1e-5, rtol=1e-4)
