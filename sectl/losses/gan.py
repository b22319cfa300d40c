"""Adversarial losses (least squares, as LSGAN/HiFi-GAN) and feature matching, over discriminator outputs.

Each takes the groups of ``(score, features)`` pairs that :class:`sectl.models.codec.discriminators.Discriminators`
returns, averages over a group's members and sums the groups, as the JMAS-VAE release does (so the
weights 0.1 and 2.0 mean what they mean there), in float32 whatever precision the discriminators ran in
(mixed-precision training).
"""

from __future__ import annotations

import torch

Outputs = list[tuple[torch.Tensor, list[torch.Tensor]]]
Groups = dict[str, Outputs]
RELATIVE_FEATURE_MATCHING = frozenset({"spectral"})
"""Groups whose feature-matching L1 is divided by the mean absolute real feature (the release's second group)."""


def _by_group(groups: Groups, member_loss) -> torch.Tensor:
    """Each group's members averaged, the groups summed: the release's weighting (a group of 5 members
    counts as much as a group of 3)."""
    return sum(torch.stack([member_loss(name, i) for i in range(len(outputs))]).mean() for name, outputs in groups.items())


def discriminator_loss(on_real: Groups, on_fake: Groups) -> torch.Tensor:
    """``mean (D(real) - 1)^2 + mean D(fake)^2`` per member; members averaged per group, groups summed."""
    return _by_group(on_real, lambda g, i: (on_real[g][i][0].float() - 1).pow(2).mean() + on_fake[g][i][0].float().pow(2).mean())


def generator_adversarial_loss(on_fake: Groups) -> torch.Tensor:
    """``mean (D(fake) - 1)^2`` per member; members averaged per group, groups summed."""
    return _by_group(on_fake, lambda g, i: (on_fake[g][i][0].float() - 1).pow(2).mean())


def feature_matching_loss(on_fake: Groups, *, on_real: Groups) -> torch.Tensor:
    """L1 between each member's feature maps (without the final scores) of generated and real audio, real
    side detached, averaged over a member's maps; in :data:`RELATIVE_FEATURE_MATCHING` groups each map's
    L1 is divided by the mean absolute real feature. Members averaged per group, groups summed."""

    def member(group: str, i: int) -> torch.Tensor:
        fake_maps, real_maps = on_fake[group][i][1], on_real[group][i][1]
        terms = []
        for f, r in zip(fake_maps, real_maps):
            r = r.detach().float()
            l1 = (f.float() - r).abs().mean()
            terms.append(l1 / (r.abs().mean() + 1e-8) if group in RELATIVE_FEATURE_MATCHING else l1)
        return torch.stack(terms).mean()

    return _by_group(on_fake, member)


def gaussian_kl(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """The JMAS-VAE release's KL term for latents ``(B, C, T)``: ``mean^2 + std^2 - log std^2 - 1`` summed
    over the ``C`` latent channels, averaged over batch and frames, without the 1/2 of the textbook
    ``KL(N(mean, std^2) || N(0, 1))``; so ``vae.loss.kl: 1e-3`` weighs it as the release does (2C times
    the per-element mean of the textbook KL)."""
    terms = mean.float().pow(2) + std.float().pow(2) - 2 * std.float().log() - 1
    return terms.sum(dim=1).mean()
