"""Training tasks: what one optimisation step means for a kind of model.

A task owns its model(s), optimizer(s), data sampler and ``step(step) -> named loss terms``; the
trainer loop owns only what every task shares (schedules, checkpoints, resume, logging, validation).
:class:`EnhancerTask` trains a waveform-to-waveform enhancer with the weighted loss set of a preset;
:class:`sectl.train.vae_task.VAETask` trains a speech VAE against discriminators.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import nn

from sectl.data.mixing import MixingConfig, MixingSampler
from sectl.data.paired import PairedSampler
from sectl.errors import ConfigError, SectlError
from sectl.losses.mal import CollapseMonitor
from sectl.models import Enhancer, build_enhancer
from sectl.models.loading import load_enhancer
from sectl.train.config import base_config
from sectl.train.distributed import Workers
from sectl.train.losses import LossSet, build_losses


class TrainingTask:
    """The interface the trainer drives. Subclasses set ``model``, ``optimizers`` and ``sample_rate``.

    Constructed as ``Task(config, device, workers)``; in a data-parallel run each rank draws its
    ``workers.examples(batch_size)`` of every global batch and averages gradients in
    :func:`apply_gradients`.
    """

    model: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    config: dict
    workers: Workers

    def step(self, step: int) -> dict[str, float]:
        """One optimisation step on the batch of ``step``; returns named loss terms (floats)."""
        raise NotImplementedError

    def inference_model(self) -> nn.Module:
        """The weights that validation, export and ``best.pt`` use."""
        return self.model

    def modules(self) -> dict[str, nn.Module]:
        """Every module with trained state (checkpointed and restored by name)."""
        return {"model": self.model}

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {name: m.state_dict() for name, m in self.modules().items()},
            "optimizers": {name: o.state_dict() for name, o in self.optimizers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(state["modules"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])

    def to(self, device: torch.device) -> "TrainingTask":
        for module in self.modules().values():
            module.to(device)
        return self


def adamw(params, train: dict) -> torch.optim.AdamW:
    """AdamW over the trainable ``params`` with the ``train`` section's rate, betas and weight decay."""
    trainable = [p for p in params if p.requires_grad]
    return torch.optim.AdamW(trainable, lr=train["lr"], betas=tuple(train["betas"]), weight_decay=train["weight_decay"])


def apply_gradients(
    total: torch.Tensor, terms: dict[str, float], optimizer: torch.optim.Optimizer, params, clip: float, where: str,
    workers: Workers = Workers(),
) -> float:
    """Backward, average over data-parallel ranks, clip, and step unless the loss or gradient is
    non-finite (then raise; weights untouched). Ranks see the same averaged gradient, so they agree."""
    params = [p for p in params if p.requires_grad]
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    workers.average_gradients(params)
    grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
    if not (torch.isfinite(total) and torch.isfinite(grad_norm)):
        detail = ", ".join(f"{k} {v:.3g}" for k, v in terms.items())
        raise SectlError(f"{where}: non-finite loss or gradient ({detail}); the weights were not updated")
    optimizer.step()
    return float(grad_norm)


def seeded(config: dict, build: Callable[[], nn.Module]) -> nn.Module:
    """Build a module with its own RNG stream (``seed``), leaving the global one untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config["seed"])
        return build()


def build_model(config: dict) -> Enhancer:
    m = config["model"]
    shortcuts = {k: m[k] for k in ("hidden", "depth", "bottleneck", "causal") if m[k] is not None}
    return seeded(config, lambda: build_enhancer(m["name"], m["size"], **{**(m["args"] or {}), **shortcuts}))


def build_sampler(config: dict, sample_rate: int):
    d = config["data"]
    if d["noise"] is not None:
        if d["clean"] is None:
            raise SectlError("data.clean: needed with data.noise (clean speech to mix)")
        mixing = MixingConfig(
            clean=d["clean"], noise=d["noise"], rir=d["rir"], segment_s=d["segment_s"], snr_db=tuple(d["snr_db"]),
            gain_db=tuple(d["gain_db"]), rir_prob=d["rir_prob"], noise_filter_prob=d["noise_filter_prob"],
        )
        return MixingSampler(mixing, sample_rate, config["seed"])
    if d["noisy"] is not None and d["clean"] is not None:
        return PairedSampler(d["noisy"], d["clean"], d["segment_s"], sample_rate, config["seed"])
    raise SectlError("no training data: set data.clean and data.noise (mixing) or data.noisy and data.clean (paired)")


class EnhancerTask(TrainingTask):
    """A waveform-to-waveform enhancer trained on (noisy, clean) batches with the preset's loss terms."""

    def __init__(self, config: dict, device: torch.device, workers: Workers = Workers()) -> None:
        self.config, self.device, self.workers = config, device, workers
        self.model, snapshot = self._initial_model()
        self.model.to(device).train()
        workers.broadcast(self.model)
        self.sample_rate = self.model.sample_rate
        # Seeded: a randomly initialised (tiny) SSL teacher must be the same in a resumed process.
        self.losses: LossSet = seeded(self.config, lambda: build_losses(self.config, self.model, snapshot)).to(device)
        self.optimizers = {"model": adamw(self.model.parameters(), self.config["train"])}
        self.sampler = build_sampler(self.config, self.model.sample_rate)
        m = self.config["mal"]
        self.monitor = CollapseMonitor(m["collapse_threshold"], m["growth_threshold"]) if self.losses.dynamic_mal() else None

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, **({"collapse_monitor": self.monitor} if self.monitor is not None else {})}

    def _initial_model(self) -> tuple[Enhancer, Enhancer | None]:
        """The model to train and, with ``init_from``, the trained model it starts from (MAL's snapshot).

        ``init_from`` (a run, a checkpoint, ``deepfilternet3``, ``nsnet2``) brings its architecture: with
        ``model.*`` left at the base defaults it is taken as is and recorded in the run's config;
        ``model.*`` settings that were changed must describe that same architecture.
        """
        source = self.config["init_from"]
        if source is None and self.config["init_required"]:
            raise ConfigError(
                "init_from: this preset fine-tunes a trained model (stage 2); set init_from to a run, a checkpoint, "
                "deepfilternet3 or nsnet2, or init_required=false to start from random weights (experiments only)"
            )
        if source is None:
            return build_model(self.config), None
        trained = load_enhancer(source)
        if self.config["model"] != base_config()["model"]:
            chosen = build_model(self.config)
            if (chosen.name, chosen.constructor_args) != (trained.name, trained.constructor_args):
                raise SectlError(
                    f"init_from {source}: architecture differs from model.* ({trained.name} {trained.constructor_args}); "
                    f"leave model.* at its defaults to take the architecture from init_from"
                )
        else:
            # Recorded in full, so the saved config rebuilds exactly this architecture (e.g. on --resume).
            model = {**{k: None for k in self.config["model"]}, "name": trained.name, "args": dict(trained.constructor_args)}
            self.config = {**self.config, "model": model}
        return copy.deepcopy(trained), trained.to(self.device)

    def step(self, step: int) -> dict[str, float]:
        t = self.config["train"]
        noisy, clean = self.sampler.batch(step, self.workers.examples(t["batch_size"]))
        noisy, clean = noisy.to(self.device), clean.to(self.device)
        total, terms = self.losses(self.model(noisy), clean)
        grad_norm = apply_gradients(total, terms, self.optimizers["model"], self.model.parameters(), t["grad_clip"],
                                    f"step {step + 1}", self.workers)  # fmt: skip
        record = {"loss": float(total.detach()), **terms, "grad_norm": grad_norm}
        if self.monitor is not None:  # spread averaged over ranks, so every rank takes the same decision
            spread = self.workers.mean({"spread": self.losses.dynamic_mal().last_spread})["spread"]
            record["mal_spread_ratio"] = self.monitor.check(spread)
        return record
