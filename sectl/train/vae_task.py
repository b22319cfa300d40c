"""Training a speech VAE against discriminators, optionally distilling an SSL teacher (JMAS-VAE).

One step: the discriminators learn to tell real from reconstructed audio (least squares); then the
VAE minimises ``vae.loss`` weights x (MR-STFT, adversarial, feature matching, KL) plus the
distillation of ``distill.method``:

* ``none``: the vanilla VAE;
* ``tas``: Semantic-VAE's time-axis cosine, teacher projected down to the latent size;
* ``jmas``: marginal cosine + marginal distance matrix (joint over the batch unless
  ``distill.joint: false``) on the *sampled* latent projected up to the teacher's size.

With ``distill.adaptive`` each term is weighted by ``||grad L_mrstft|| / (||grad L_k|| + 1e-6)`` with
respect to the encoder's last layer (detached), the sum scaled by ``distill.weight``; otherwise each
term's weight is ``distill.weight``. An EMA of the VAE's weights is what validation, ``best.pt`` and
``sectl encode`` use.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from sectl.audio import resample
from sectl.data.loader import to_device
from sectl.data.speech import SpeechSampler
from sectl.errors import ConfigError
from sectl.losses.distill import (
    MarginalCosineLoss,
    MarginalDistanceMatrixLoss,
    SemanticRegulator,
    TimeAxisCosineLoss,
    to_latent_rate,
)
from sectl.losses.gan import discriminator_loss, feature_matching_loss, gaussian_kl, generator_adversarial_loss
from sectl.models import build_codec
from sectl.models.codec.discriminators import Discriminators
from sectl.models.teachers.ssl import SSL_RATE
from sectl.models.teachers import build_teacher
from sectl.models.codec.vae import SpeechVAE
from sectl.train.distributed import Workers
from sectl.train.optim import GradientStep, Precision, adamw
from sectl.train.tasks import StepResult, TrainingTask, compiled, seeded

MRSTFT_SIZES = (2048, 1024, 512, 256, 128, 64, 32)  # hop = FFT / 4, window = FFT


class PerceptualMRSTFT(nn.Module):
    """The release's reconstruction term: auraloss's multi-resolution STFT loss (spectral convergence +
    log-magnitude L1) at FFT sizes 2048..32, hop FFT/4, window = FFT, after auraloss's A-weighting FIR
    pre-filter; no time-domain term. auraloss itself, not a re-implementation: it is the library the
    release's numbers come from."""

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        import auraloss

        self.loss = auraloss.freq.MultiResolutionSTFTLoss(
            fft_sizes=list(MRSTFT_SIZES), hop_sizes=[n // 4 for n in MRSTFT_SIZES], win_lengths=list(MRSTFT_SIZES),
            perceptual_weighting=True, sample_rate=sample_rate,
        )  # fmt: skip

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.loss(estimate.float()[:, None], reference.float()[:, None])  # auraloss takes (B, C, T)


class Distillation(nn.Module):
    """The teacher (frozen), the trainable projection, and the distillation terms of one method."""

    def __init__(self, config: dict, latent_dim: int) -> None:
        super().__init__()
        d, s = config["distill"], config["ssl"]
        self.method = d["method"]
        self.teacher = build_teacher(s["model"], s["layer"], s["checkpoint"])
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            teacher_dim = self.teacher(torch.zeros(1, SSL_RATE)).shape[-1]
        if self.method == "jmas":
            self.project = nn.Linear(latent_dim, teacher_dim)  # applied to the sampled latent
            self.terms = nn.ModuleDict({
                "mcos": MarginalCosineLoss(d["margin_cos"]),
                "mdms": MarginalDistanceMatrixLoss(d["margin_dist"], joint=d["joint"]),
            })  # fmt: skip
        elif self.method == "tas":
            self.project = SemanticRegulator(teacher_dim, latent_dim)  # applied to the teacher, as Semantic-VAE does
            self.terms = nn.ModuleDict({"tas": TimeAxisCosineLoss()})
        else:
            raise ConfigError(f"distill.method: unknown {self.method!r}; use none, tas or jmas")

    def forward(self, wave: torch.Tensor, sample_rate: int, latents: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted terms for a batch ``wave (B, T)`` and its sampled latents ``(B, C, frames)``."""
        with torch.no_grad():
            teacher = to_latent_rate(self.teacher(resample(wave, sample_rate, SSL_RATE)), latents.shape[-1])
        z = latents.transpose(1, 2)
        if self.method == "jmas":
            student, target = self.project(z), teacher
        else:
            student, target = z, self.project(teacher)
        return {name: term(student, teacher=target) for name, term in self.terms.items()}


def ema_decay(step: int, beta: float) -> float:
    """The release's EMA decay at ``step``: ``min(beta, 1 - (1 + step)^(-3/4))``, a power-3/4 warm-up, so the
    average follows the first steps instead of staying near the random initialisation for ~1/(1 - beta)
    steps (at beta 0.9999: 10 000)."""
    return min(beta, 1.0 - (1.0 + step) ** -0.75)


def gradient_norm(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.sqrt(sum(g.pow(2).sum() for g in grads if g is not None))


class VAETask(TrainingTask):
    def __init__(self, config: dict, device: torch.device, workers: Workers = Workers()) -> None:
        self.config, self.device, self.workers = config, device, workers
        m, v, t = config["model"], config["vae"], config["train"]
        if config["init_from"] is not None:
            raise ConfigError("init_from: not supported for task vae yet (train from scratch)")
        self.model: SpeechVAE = seeded(config, lambda: build_codec(m["name"], m["size"], **(m["args"] or {})))
        self.sample_rate = self.model.sample_rate
        self.discriminators = seeded(config, lambda: Discriminators(
            sample_rate=self.sample_rate, width=v["discriminator_width"], spectral=v["spectral_discriminator"]))
        self.ema = copy.deepcopy(self.model).requires_grad_(False).eval()
        latent_dim = self.model.config.latent_dim
        # Seeded: a random (tiny) teacher and the projection must be the same in a resumed process.
        self.distill = seeded(config, lambda: Distillation(config, latent_dim)) if config["distill"]["method"] != "none" else None
        self.mrstft = PerceptualMRSTFT(self.sample_rate)
        self.to(device)
        for module in self.modules().values():
            workers.broadcast(module)
        self.precision = Precision.resolve(t["precision"], device)
        self.encode, self.decode = compiled(self.model.encode, t["compile"], device), compiled(self.model.decode, t["compile"], device)
        self.optimizers = {
            "generator": adamw(self.generator_parameters(), t, device),
            "discriminators": adamw(self.discriminators.parameters(), t, device),
        }
        self.updates = {name: GradientStep(opt, t["grad_clip"], self.precision, workers) for name, opt in self.optimizers.items()}
        self._last: dict[str, torch.Tensor] = {}  # the latest value of every logged term (alternating steps)
        if config["data"]["clean"] is None:
            raise ConfigError("data.clean: a speech VAE trains on clean speech; set data.clean")
        self.sampler = SpeechSampler(config["data"]["clean"], config["data"]["segment_s"], self.sample_rate,
                                     config["seed"], tuple(config["data"]["gain_db"]))  # fmt: skip

    def generator_parameters(self) -> list[nn.Parameter]:
        extra = list(self.distill.project.parameters()) if self.distill is not None else []
        return [*self.model.parameters(), *extra]

    def modules(self) -> dict[str, nn.Module]:
        modules = {"model": self.model, "ema": self.ema, "discriminators": self.discriminators}
        if self.distill is not None:
            modules["distill_projection"] = self.distill.project
        return modules

    def to(self, device: torch.device) -> "VAETask":
        super().to(device)
        self.mrstft.to(device)
        if self.distill is not None:
            self.distill.to(device)
        return self

    def inference_model(self) -> nn.Module:
        return self.ema

    # ------------------------------------------------------------------------------ one step
    def step(self, step: int, batch: Any) -> StepResult:
        """With ``vae.alternate`` (the release's schedule) even steps update the VAE and odd steps the
        discriminators; otherwise every step updates the discriminators, then the VAE. The record always
        carries the latest value of every term, whichever half the step was."""
        v = self.config["vae"]
        x = to_device(batch, self.device)
        if v["alternate"] and step % 2 == 1:
            with torch.no_grad(), self.precision.autocast():
                mean, std = self.encode(x)
                y = self.decode(mean + std * torch.randn_like(std), x.shape[-1]).float()
            d_loss, d_finite = self._update_discriminators(x, y)
            self._last["disc"] = d_loss
            return StepResult(dict(self._last), d_finite, stepped=("discriminators",))
        with self.precision.autocast():
            mean, std = self.encode(x)
            z = mean + std * torch.randn_like(std)
            y = self.decode(z, x.shape[-1]).float()
        if v["alternate"]:
            d_loss, d_finite = self._last.get("disc", torch.zeros((), device=self.device)), torch.ones((), dtype=torch.bool, device=self.device)
        else:
            d_loss, d_finite = self._update_discriminators(x, y.detach())

        # The generator's loss goes through the discriminators, but must not give them gradients.
        self.discriminators.requires_grad_(False)
        try:
            with self.precision.autocast():
                on_fake = self.discriminators(y)
                with torch.no_grad():
                    on_real = self.discriminators(x)
            with self.precision.full():
                losses = {
                    "mrstft": self.mrstft(y, x),
                    "adv": generator_adversarial_loss(on_fake),
                    "fm": feature_matching_loss(on_fake, on_real=on_real),
                    "kl": gaussian_kl(mean, std),  # float32 inside
                }
                total = sum(v["loss"][name] * value for name, value in losses.items())
                record = {name: value.detach() for name, value in losses.items()}
                if self.distill is not None:
                    distill_total, weights, terms = self._distillation(x, z.float(), losses["mrstft"])
                    total = total + distill_total
                    record |= {name: value.detach() for name, value in terms.items()}
                    record |= {f"w_{name}": w for name, w in weights.items()}
            grad_norm, g_finite = self.updates["generator"](total)
        finally:
            self.discriminators.requires_grad_(True)
        self._update_ema(ema_decay(step // 2 if v["alternate"] else step, v["ema_decay"]))  # counts VAE updates
        record = {"loss": total.detach(), **record, "disc": d_loss.detach(), "grad_norm": grad_norm}
        self._last = record
        return StepResult(dict(record), d_finite & g_finite, stepped=("generator",) if v["alternate"] else None)

    def _update_discriminators(self, x: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One least-squares step of the discriminators on real ``x`` and detached ``fake``."""
        with self.precision.autocast():
            on_real, on_fake = self.discriminators(x), self.discriminators(fake.detach())
        with self.precision.full():
            d_loss = discriminator_loss(on_real, on_fake)
        _, finite = self.updates["discriminators"](d_loss)
        return d_loss.detach(), finite

    def _distillation(self, x: torch.Tensor, z: torch.Tensor, reconstruction: torch.Tensor):
        d = self.config["distill"]
        terms = self.distill(x, self.sample_rate, z)
        if d["adaptive"]:
            last_layer = list(self.model.to_moments.parameters())
            reference = gradient_norm(reconstruction, last_layer)
            weights = {k: (reference / (gradient_norm(term, last_layer) + 1e-6)).detach() for k, term in terms.items()}
        else:
            weights = {k: torch.ones((), device=self.device) for k in terms}
        return d["weight"] * sum(weights[k] * term for k, term in terms.items()), weights, terms

    @torch.no_grad()
    def _update_ema(self, decay: float) -> None:
        for ema, live in zip(self.ema.parameters(), self.model.parameters()):
            ema.lerp_(live, 1 - decay)
        for ema, live in zip(self.ema.buffers(), self.model.buffers()):
            ema.copy_(live)
