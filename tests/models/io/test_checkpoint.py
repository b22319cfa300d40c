from __future__ import annotations

import pytest
import torch

from sectl.errors import SectlError
from sectl.models import build_enhancer
from sectl.models.io.checkpoint import load_checkpoint, save_checkpoint
from sectl.engines import load_enhancer
from sectl.models.io.loading import resolve_model_path


def test_round_trip_is_plain_data(tmp_path):
    model = build_enhancer(size="tiny", hidden=6).eval()
    save_checkpoint(tmp_path / "m.pt", model, step=7)
    payload = torch.load(tmp_path / "m.pt", weights_only=True)  # no pickled classes
    assert payload["model"]["name"] == "demucs" and payload["step"] == 7
    loaded = load_enhancer(tmp_path / "m.pt")
    x = torch.randn(1, 3000)
    assert torch.equal(model(x), loaded(x))


def test_run_folder_prefers_best(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    save_checkpoint(tmp_path / "checkpoints" / "last.pt", build_enhancer(size="tiny"))
    assert resolve_model_path(tmp_path).name == "last.pt"
    save_checkpoint(tmp_path / "checkpoints" / "best.pt", build_enhancer(size="tiny"))
    assert resolve_model_path(tmp_path).name == "best.pt"


def test_bad_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(SectlError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(SectlError, match="junk.pt: not a readable sectl checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(SectlError, match="not a sectl checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(SectlError, match="no checkpoints"):
        resolve_model_path(tmp_path)
