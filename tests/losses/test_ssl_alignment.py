from __future__ import annotations

import pytest
import torch

from sectl.errors import SectlError
from sectl.losses.ssl_alignment import SSLMSELoss, SSLPadMSELoss, SSLSoftDTWLoss
from sectl.models.teachers.ssl import SSL_HOP


def speechlike(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(16000) / 16000
    return (torch.sin(2 * torch.pi * 180 * t * (1 + t)) * torch.rand(1, generator=g) + 0.05 * torch.randn(2, 16000, generator=g))


@pytest.mark.parametrize("cls", [SSLMSELoss, SSLSoftDTWLoss])
def test_zero_for_identical_signals_without_perturbation(cls):
    kwargs = {"speeds": (1.0,)} if cls is SSLSoftDTWLoss else {}
    loss = cls("tiny", 2, **kwargs)
    x = speechlike()
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)


def test_pad_loss_compares_content_aligned_frames():
    x = speechlike()
    padded = SSLPadMSELoss("tiny", 2, pad_range=(0.04, 0.04))
    plain = SSLMSELoss("tiny", 2)
    torch.manual_seed(0)
    # Padding moves positions, not content: the loss on identical signals stays far below a mismatch.
    same = padded(x, x).item()
    other = padded(speechlike(1), x).item()
    assert same < other
    assert plain(speechlike(1), x).item() > 0
    with pytest.raises(SectlError, match="pad_range"):
        SSLPadMSELoss("tiny", 2, pad_range=(0.05, 0.02))


class FrameLocal(torch.nn.Module):
    """A stand-in teacher whose frame ``i`` depends only on samples ``[320 i, 320 (i + 1))``: content-
    aligned frames of a padded copy are then exactly equal, so any offset error shows as a non-zero loss."""

    hop = SSL_HOP

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        frames = wave[:, : wave.shape[-1] // SSL_HOP * SSL_HOP].reshape(wave.shape[0], -1, SSL_HOP)
        return torch.stack([frames.mean(-1), frames.pow(2).mean(-1), frames[..., ::7].sum(-1)], dim=-1)

    def frames(self, samples: int) -> int:
        return samples // SSL_HOP


def recording_targets(loss) -> list[int]:
    """Record the length of every reference row the loss sends to its teacher, and how many calls it makes."""
    lengths: list[int] = []
    original = loss.targets

    def targets(reference, row_lengths=None):
        recording_targets.calls += 1
        lengths.extend(row_lengths if row_lengths is not None else [reference.shape[-1]] * reference.shape[0])
        return original(reference, row_lengths)

    recording_targets.calls = 0
    loss.targets = targets
    return lengths


def test_padded_frames_are_compared_with_the_unpadded_frames_of_the_same_content():
    loss = SSLPadMSELoss("tiny", 2, pad_range=(0.02, 0.05))
    loss.teacher = FrameLocal()
    x = torch.randn(4, 16000 * 4)
    torch.manual_seed(0)
    assert loss(x, x).item() == 0.0  # exact: frame i of x is frame i + k of the padded x
    shifted = torch.roll(x, SSL_HOP, dims=-1)  # content one frame later: no longer aligned
    assert loss(shifted, x).item() > 0.1


def test_pad_and_speed_are_drawn_per_sample():
    x = torch.randn(16, 16000)
    pad = SSLPadMSELoss("tiny", 2, pad_range=(0.02, 0.05))
    pad.teacher = FrameLocal()
    torch.manual_seed(1)
    frames = pad.pad_frames(16, 16000 * 10)
    assert len(set(frames)) > 1 and all(10 <= f <= 25 for f in frames)  # 2-5 % of 500 frames
    lengths = recording_targets(pad)
    pad(x, x)
    assert len(lengths) == 16 and len(set(lengths)) > 1  # one padded reference per sample, not one per batch
    assert recording_targets.calls == 1  # all of them in one batched teacher call

    sdtw = SSLSoftDTWLoss("tiny", 2, speeds=(0.8, 1.25))
    sdtw.teacher = FrameLocal()
    lengths = recording_targets(sdtw)
    torch.manual_seed(2)
    sdtw(x, x)
    # 0.8 x faster -> 16000 / 0.8 samples; 1.25 x -> 16000 / 1.25: the factors are applied, per sample.
    assert set(lengths) == {20000, 12800} and len(lengths) == 16
    assert recording_targets.calls == 1


def test_the_fine_speed_grid_preset():
    from sectl.train import resolve_config

    speeds = resolve_config("ssl_softdtw_fine", [])["ssl_align"]["speeds"]
    assert speeds == pytest.approx([0.8 + 0.05 * k for k in range(9)])


def test_soft_dtw_loss_tolerates_tempo_and_trains():
    loss = SSLSoftDTWLoss("tiny", 2, speeds=(0.8, 1.2))
    x = speechlike()
    est = (x + 0.2 * torch.randn_like(x)).requires_grad_()
    torch.manual_seed(0)
    value = loss(est, x)
    value.backward()
    assert value.item() > 0 and est.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


@pytest.mark.parametrize("name,layer,hop", [("deepfilternet3", 7, 160), ("nsnet2", 3, 160)])
def test_a_pretrained_encoder_teacher_pads_in_its_own_frames(models_dir, name, layer, hop):
    """The offline teachers (a pretrained enhancer's encoder) have their own hop; padding counts it."""
    loss = SSLPadMSELoss(name, layer, pad_range=(0.05, 0.05))
    assert loss.teacher.hop == hop
    assert loss.pad_frames(1, 16000) == [round(0.05 * 16000 / hop)]
    x = speechlike()
    est = (x + 0.1 * torch.randn_like(x)).requires_grad_()
    value = loss(est, x)
    value.backward()
    assert value.item() > 0 and est.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.parameters())


@pytest.mark.parametrize("cls", [SSLMSELoss, SSLPadMSELoss, SSLSoftDTWLoss])
def test_a_48_khz_enhancer_is_resampled_to_the_teachers_16_khz(cls):
    """The teacher always sees 16 kHz: 1 s at 48 kHz reaches it as 16000 samples, and the loss equals the
    loss of the 16 kHz versions (a 48 kHz signal fed as is would be 3 s of slowed-down speech)."""
    from sectl.audio import resample

    kwargs = {"speeds": (1.0,)} if cls is SSLSoftDTWLoss else {"pad_range": (0.04, 0.04)} if cls is SSLPadMSELoss else {}
    at48, at16 = cls("tiny", 2, sample_rate=48000, **kwargs), cls("tiny", 2, **kwargs)
    x48 = torch.randn(2, 48000)
    y48 = x48 + 0.1 * torch.randn(2, 48000)
    lengths = recording_targets(at48)
    value48 = at48(y48, x48).item()
    assert set(lengths) == {16000 + (640 if cls is SSLPadMSELoss else 0)}
    value16 = at16(resample(y48, 48000, 16000), resample(x48, 48000, 16000)).item()
    assert value48 == pytest.approx(value16, rel=1e-5)


def per_sample_loss(loss, estimate, reference, seed: int) -> torch.Tensor:
    """The loss computed one sample at a time (the draws of a batch are per sample, in order), averaged."""
    torch.manual_seed(seed)
    draw = "pad_frames" if isinstance(loss, SSLPadMSELoss) else "draw_speeds"
    draws = getattr(loss, draw)(estimate.shape[0], reference.shape[-1]) if draw == "pad_frames" else loss.draw_speeds(estimate.shape[0])
    setattr(loss, draw, lambda *args: [draws.pop(0)])  # one sample at a time, the batch's own draws in order
    values = [loss(estimate[b : b + 1], reference[b : b + 1]) for b in range(estimate.shape[0])]
    delattr(loss, draw)
    return torch.stack(values).mean()


@pytest.mark.parametrize("cls,kwargs", [(SSLPadMSELoss, {"pad_range": (0.02, 0.05)}),
                                        (SSLSoftDTWLoss, {"speeds": (0.8, 0.9, 1.1, 1.25)})])  # fmt: skip
def test_one_batched_teacher_call_equals_the_per_sample_losses(cls, kwargs):
    """Per-sample references of different lengths, zero-padded into one batch with their lengths, give
    the per-sample loop's value (a frame-local teacher, which padding cannot change)."""
    loss = cls("tiny", 2, **kwargs)
    loss.teacher = FrameLocal()
    g = torch.Generator().manual_seed(0)
    reference = torch.randn(6, 16000, generator=g)
    estimate = reference + 0.3 * torch.randn(6, 16000, generator=g)
    torch.manual_seed(3)
    batched = loss(estimate, reference)
    looped = per_sample_loss(loss, estimate, reference, seed=3)
    assert batched.item() == pytest.approx(looped.item(), rel=1e-5) and batched.item() > 0


def test_a_padded_batch_with_lengths_gives_each_rows_own_features():
    """WavLM with a layer-norm front end (as WavLM Large): padding is masked out of the attention and the
    input normalisation, so a short row's frames are those it has alone."""
    import torchaudio

    from sectl.losses.ssl_alignment import pad_rows
    from sectl.models.teachers.ssl import SSLFeatures

    teacher = SSLFeatures("tiny", 2)
    torch.manual_seed(0)
    teacher.model = torchaudio.models.wavlm_model(
        extractor_mode="layer_norm", extractor_conv_layer_config=[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2,
        extractor_conv_bias=True, encoder_embed_dim=64, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=16,
        encoder_pos_conv_groups=4, encoder_num_layers=2, encoder_num_heads=4, encoder_num_buckets=32,
        encoder_max_distance=128, encoder_attention_dropout=0.0, encoder_ff_interm_features=128,
        encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_norm_first=True, encoder_layer_drop=0.0,
        aux_num_out=None,
    ).eval()
    teacher.normalise_input = True
    rows = [torch.randn(16000), torch.randn(12800), torch.randn(20000)]
    padded, lengths = pad_rows(rows)
    with torch.no_grad():
        batched = teacher(padded, torch.tensor(lengths))
        for b, row in enumerate(rows):
            alone = teacher(row[None])[0]
            assert alone.shape[0] == teacher.frames(row.shape[-1])
            assert (batched[b, : alone.shape[0]] - alone).abs().max() < 1e-4
