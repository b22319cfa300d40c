"""Adversarial losses (least squares, as LSGAN/HiFi-GAN) and feature matching, over discriminator outputs.

Each takes the list of ``(score, features)`` pairs that :class:`sectl.models.discriminators.Discriminators`
returns, one per member, and averages over members, in float32 whatever precision the discriminators
ran in (mixed-precision training).
"""

from __future__ import annotations

import torch

Outputs = list[tuple[torch.Tensor, list[torch.Tensor]]]


def discriminator_loss(on_real: Outputs, on_fake: Outputs) -> torch.Tensor:
    """``mean (D(real) - 1)^2 + mean D(fake)^2`` per member, averaged."""
    terms = [(real.float() - 1).pow(2).mean() + fake.float().pow(2).mean() for (real, _), (fake, _) in zip(on_real, on_fake)]
    return torch.stack(terms).mean()


def generator_adversarial_loss(on_fake: Outputs) -> torch.Tensor:
    """``mean (D(fake) - 1)^2`` per member, averaged."""
    return torch.stack([(fake.float() - 1).pow(2).mean() for fake, _ in on_fake]).mean()


def feature_matching_loss(on_fake: Outputs, *, on_real: Outputs) -> torch.Tensor:
    """Mean L1 between the members' feature maps of generated and real audio (real side detached)."""
    terms = [
        (f.float() - r.detach().float()).abs().mean()
        for (_, fake_maps), (_, real_maps) in zip(on_fake, on_real)
        for f, r in zip(fake_maps, real_maps)
    ]
    return torch.stack(terms).mean()


def gaussian_kl(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """The JMAS-VAE release's KL term for latents ``(B, C, T)``: ``mean^2 + std^2 - log std^2 - 1`` summed
    over the ``C`` latent channels, averaged over batch and frames, without the 1/2 of the textbook
    ``KL(N(mean, std^2) || N(0, 1))``; so ``vae.loss.kl: 1e-3`` weighs it as the release does (2C times
    the per-element mean of the textbook KL)."""
    terms = mean.float().pow(2) + std.float().pow(2) - 2 * std.float().log() - 1
    return terms.sum(dim=1).mean()
