from __future__ import annotations

import numpy as np
import pytest
import torch

from sectl.data.augment import speed_perturb
from sectl.data.mixing import MixingConfig, MixingSampler
from sectl.data.paired import PairedSampler
from sectl.data.sources import random_crop
from sectl.errors import SectlError


@pytest.fixture
def mixing(data_dir):
    return MixingConfig(clean=str(data_dir / "speech"), noise=str(data_dir / "noise"), rir=str(data_dir / "rir"), segment_s=1.0)


def test_batches_are_a_pure_function_of_seed_and_step(mixing):
    a = MixingSampler(mixing, seed=1).batch(step=5, examples=3)
    b = MixingSampler(mixing, seed=1).batch(step=5, examples=3)
    c = MixingSampler(mixing, seed=1).batch(step=6, examples=3)
    assert a[0].shape == a[1].shape == (3, 16000)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_rank_slices_of_a_batch_together_are_the_whole_batch(mixing, data_dir):
    """Data-parallel ranks draw disjoint slices; concatenated they equal the one-process batch."""
    from sectl.data.paired import PairedSampler
    from sectl.data.speech import SpeechSampler
    from sectl.train.distributed import Workers

    vctk = data_dir / "vctk"
    samplers = [
        MixingSampler(mixing, seed=3),
        PairedSampler(str(vctk / "noisy"), str(vctk / "clean"), segment_s=0.5, seed=3),
        SpeechSampler(str(data_dir / "speech"), 0.5, 16000, seed=3),
    ]
    for sampler in samplers:
        whole = sampler.batch(7, 4)
        parts = [sampler.batch(7, Workers(rank, 2).examples(4)) for rank in range(2)]
        if isinstance(whole, torch.Tensor):
            whole, parts = (whole,), [(p,) for p in parts]
        for k, tensor in enumerate(whole):
            assert torch.equal(torch.cat([p[k] for p in parts]), tensor)
    assert Workers(1, 2).examples(4) == range(2, 4)
    with pytest.raises(SectlError, match="multiple of 2"):
        Workers(0, 2).examples(3)


def test_mixture_hits_the_requested_snr_and_level(data_dir):
    config = MixingConfig(
        clean=str(data_dir / "speech"), noise=str(data_dir / "noise"), segment_s=1.0,
        snr_db=(5.0, 5.0), gain_db=(-6.0, -6.0), rir_prob=0.0, noise_filter_prob=0.0,
    )
    noisy, clean = MixingSampler(config, seed=0).batch(0, 4)
    noise = noisy - clean
    snr = 10 * torch.log10(clean.pow(2).mean(-1) / noise.pow(2).mean(-1))
    assert torch.allclose(snr, torch.full((4,), 5.0), atol=0.01)
    assert torch.allclose(noisy.abs().amax(-1), torch.full((4,), 10 ** (-6 / 20)), atol=1e-4)


def test_missing_folder_is_named(data_dir, tmp_path):
    with pytest.raises(SectlError, match="data.noise"):
        MixingSampler(MixingConfig(clean=str(data_dir / "speech"), noise=str(tmp_path / "none")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SectlError, match="no audio files"):
        MixingSampler(MixingConfig(clean=str(tmp_path / "empty"), noise=str(data_dir / "noise")))


def test_paired_sampler_crops_aligned_pairs(vctk):
    noisy, clean = PairedSampler(str(vctk / "noisy"), str(vctk / "clean"), segment_s=0.5, seed=0).batch(0, 2)
    assert noisy.shape == clean.shape == (2, 8000)
    corr = [np.corrcoef(n.numpy(), c.numpy())[0, 1] for n, c in zip(noisy, clean)]
    assert min(corr) > 0.3  # the same excerpt of both signals


def test_random_crop_pads_short_clips_and_loops_noise():
    rng = np.random.default_rng(0)
    clip = torch.arange(1.0, 11.0)
    padded = random_crop(clip, 15, rng)
    assert padded.shape == (15,) and padded.sum() == clip.sum()
    looped = random_crop(clip, 25, rng, loop=True)
    assert looped.shape == (25,) and (looped > 0).all()
    both = random_crop(torch.stack([clip, -clip]), 4, rng)
    assert torch.equal(both[0], -both[1])


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.2])
def test_speed_perturb_changes_duration(factor):
    wave = torch.randn(16000)
    assert abs(speed_perturb(wave, factor).shape[-1] - 16000 / factor) <= 2
    assert speed_perturb(wave, 1.0) is wave
