"""Distillation terms against hand computations on small tensors."""

from __future__ import annotations

import pytest
import torch

from sectl.losses.distill import MarginalCosineLoss, MarginalDistanceMatrixLoss, TimeAxisCosineLoss, to_latent_rate


def test_marginal_cosine_by_hand():
    student = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    teacher = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])  # cosines: 1/sqrt(2), 1
    expected = (max(0.0, 1 - 0.2 - 2**-0.5) + max(0.0, 1 - 0.2 - 1.0)) / 2
    assert MarginalCosineLoss(margin=0.2)(student, teacher=teacher).item() == pytest.approx(expected)
    assert MarginalCosineLoss(margin=0.5)(student, teacher=teacher).item() == 0.0  # both above 1 - m1


def test_distance_matrix_by_hand_and_its_margin():
    student = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # cos matrix [[1, 0], [0, 1]]
    teacher = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])  # cos matrix [[1, .707], [.707, 1]]
    off = 2**-0.5
    assert MarginalDistanceMatrixLoss(margin=0.1)(student, teacher=teacher).item() == pytest.approx(2 * (off - 0.1) / 4)
    assert MarginalDistanceMatrixLoss(margin=0.75)(student, teacher=teacher).item() == 0.0


def test_the_joint_matrix_crosses_utterances():
    # Within each utterance student and teacher agree; across utterances they do not.
    student = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # (B=2, T=1, D=2)
    teacher = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]]])
    assert MarginalDistanceMatrixLoss(0.0, joint=False)(student, teacher=teacher).item() == 0.0
    assert MarginalDistanceMatrixLoss(0.0, joint=True)(student, teacher=teacher).item() == pytest.approx(0.5)  # 2 of 4 pairs differ by 1


def test_time_axis_cosine_and_shapes():
    x = torch.randn(2, 5, 3)
    assert TimeAxisCosineLoss()(x, teacher=2 * x).item() == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="must both be"):
        TimeAxisCosineLoss()(x, teacher=x[:, :4])


def test_teacher_frames_are_interpolated_to_the_latent_rate():
    teacher = torch.arange(50.0).view(1, 50, 1)  # 1 s at 50 Hz
    resampled = to_latent_rate(teacher, 40)
    assert resampled.shape == (1, 40, 1)
    assert resampled[0, 0, 0] == pytest.approx(0.125) and resampled[0, -1, 0] == pytest.approx(48.875)


def test_the_tas_regulator_is_semantic_vaes_conv_groupnorm_mish_stack():
    from sectl.losses.distill import SemanticRegulator

    regulator = SemanticRegulator(teacher_dim=768, latent_dim=64)
    kinds = [type(m).__name__ for m in regulator.layers]
    assert kinds == ["Conv1d", "GroupNorm", "Mish", "Conv1d", "GroupNorm", "Mish", "Conv1d"]
    first, last = regulator.layers[0], regulator.layers[-1]
    assert (first.in_channels, first.out_channels, first.kernel_size) == (768, 128, (3,))
    assert (last.in_channels, last.out_channels, last.kernel_size) == (128, 64, (1,))
    assert regulator.layers[1].num_groups == 1
    assert regulator(torch.randn(2, 50, 768)).shape == (2, 50, 64)
