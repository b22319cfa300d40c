"""Weights of the metrics whose real weights cannot ship: the real architectures, randomly initialised."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.metrics.extras import extra

NISQA_ARGS = {
    "ms_fmax": 20000, "ms_n_fft": 4096, "ms_hop_length": 0.01, "ms_win_length": 0.02, "ms_n_mels": 48,
    "ms_seg_length": 15, "ms_seg_hop_length": 4, "ms_max_segments": 1300,
    "cnn_model": "adapt", "cnn_c_out_1": 16, "cnn_c_out_2": 32, "cnn_c_out_3": 64, "cnn_kernel_size": (3, 3),
    "cnn_dropout": 0.2, "cnn_fc_out_h": None, "cnn_pool_1": [24, 7], "cnn_pool_2": [12, 5], "cnn_pool_3": [6, 3],
    "td": "self_att", "td_sa_d_model": 64, "td_sa_nhead": 1, "td_sa_pos_enc": False, "td_sa_num_layers": 2,
    "td_sa_h": 64, "td_sa_dropout": 0.1, "td_2": "skip", "pool": "att", "pool_att_h": 128, "pool_att_dropout": 0,
    "model": "NISQA_DIM", "dim": True, "double_ended": False,
}  # fmt: skip
"""The arguments of the official NISQA v2.0 ``nisqa.tar`` (its ``args``, less the training settings)."""


@pytest.fixture(scope="session")
def random_nisqa(tmp_path_factory) -> Path:
    """A ``nisqa.tar`` of NISQA v2.0's architecture (torchmetrics' ``_NISQADIM``) with random weights."""
    functional = extra("torchmetrics.functional.audio.nisqa")
    torch.manual_seed(0)
    model = functional._NISQADIM(NISQA_ARGS)
    path = tmp_path_factory.mktemp("nisqa") / "nisqa.tar"
    torch.save({"args": NISQA_ARGS, "model_state_dict": model.state_dict()}, path)
    return path
