"""Training tasks: what one optimisation step means for a kind of model.

A task owns its model(s), optimizer(s), data sampler and ``step(step, batch) -> StepResult``; the
trainer loop owns only what every task shares (schedules, checkpoints, resume, logging, validation).
:class:`EnhancerTask` trains a waveform-to-waveform enhancer with the weighted loss set of a preset;
:class:`sectl.train.vae_task.VAETask` trains a speech VAE against discriminators.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from sectl.data.loader import ExampleSampler, to_device
from sectl.data.mixing import MixingConfig, MixingSampler
from sectl.data.paired import PairedSampler
from sectl.errors import ConfigError, SectlError
from sectl.losses.mal import CollapseMonitor
from sectl.models import Enhancer, build_enhancer
from sectl.models.io.loading import load_torch_enhancer
from sectl.train.config import base_config
from sectl.train.distributed import Workers
from sectl.train.optim import GradientStep, Precision, adamw
from sectl.train.losses import LossSet, build_losses


@dataclass
class StepResult:
    """What one step leaves on the device: named scalar tensors to log, and whether it was finite."""

    record: dict[str, torch.Tensor]
    finite: torch.Tensor
    stepped: tuple[str, ...] | None = None  # the optimizers this step updated (their schedules advance); None: all


class TrainingTask:
    """The interface the trainer drives. Subclasses set ``model``, ``optimizers``, ``updates``,
    ``sampler`` and ``sample_rate``.

    Constructed as ``Task(config, device, workers)``; in a data-parallel run each rank draws its
    ``workers.examples(batch_size)`` of every global batch, and each :class:`GradientStep` in
    ``updates`` averages its gradients over the ranks while backward runs.
    """

    model: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    updates: dict[str, GradientStep]
    sampler: ExampleSampler
    config: dict
    workers: Workers

    def step(self, step: int, batch: Any) -> StepResult:
        """One optimisation step on ``batch`` (the loader's batch of ``step``); never reads the device."""
        raise NotImplementedError

    def check(self, record: dict[str, float]) -> None:
        """Stop the run (raise) when a logged record shows it failing; called once per log interval."""

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
            "scalers": {name: u.state_dict() for name, u in self.updates.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(state["modules"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, update in self.updates.items():
            update.load_state_dict(state.get("scalers", {}).get(name, {}))

    def to(self, device: torch.device) -> "TrainingTask":
        for module in self.modules().values():
            module.to(device)
        return self


def compiled(module: Callable, enabled: bool, device: torch.device | None = None) -> Callable:
    """``torch.compile(module)`` (a module or a method) when ``train.compile`` asks for it; refused where torch cannot compile."""
    if not enabled:
        return module
    if not torch._dynamo.is_dynamo_supported():
        raise ConfigError("train.compile: torch.compile is not supported with this Python or platform; set train.compile=false")
    quiet_compiler(device or torch.device("cpu"))
    return torch.compile(module)


def quiet_compiler(device: torch.device) -> None:
    """Keep what ``torch.compile`` prints to what a user can act on. Dynamo's notes on code it traces
    around (graph breaks: "does not know how to trace the builtin ...") are for PyTorch developers; off a
    GPU, the missing CUDA toolkit and Triton that torch's extension loader and Inductor log are no news.
    A compile that fails still raises (``Trainer.train_step`` names ``train.compile``)."""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\._dynamo")
    if device.type != "cuda":
        for name in ("torch.utils.cpp_extension", "torch._inductor.utils", "torch._inductor.codecache"):
            logging.getLogger(name).setLevel(logging.ERROR)


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
            raise ConfigError("data.clean: needed with data.noise (clean speech to mix)")
        mixing = MixingConfig(
            clean=d["clean"], noise=d["noise"], rir=d["rir"], segment_s=d["segment_s"], snr_db=tuple(d["snr_db"]),
            gain_db=tuple(d["gain_db"]), rir_prob=d["rir_prob"], noise_filter_prob=d["noise_filter_prob"],
        )
        return MixingSampler(mixing, sample_rate, config["seed"])
    if d["noisy"] is not None and d["clean"] is not None:
        return PairedSampler(d["noisy"], d["clean"], d["segment_s"], sample_rate, config["seed"])
    raise ConfigError("no training data: set data.clean and data.noise (mixing) or data.noisy and data.clean (paired)")


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
        t = self.config["train"]
        self.precision = Precision.resolve(t["precision"], device)
        self.forward = compiled(self.model, t["compile"], device)
        self.optimizers = {"model": adamw(self.model.parameters(), t, device)}
        self.updates = {"model": GradientStep(self.optimizers["model"], t["grad_clip"], self.precision, workers)}
        self.sampler = build_sampler(self.config, self.model.sample_rate)
        m = self.config["mal"]
        self.monitor = CollapseMonitor(m["collapse_threshold"], m["growth_threshold"]).to(device) if self.losses.dynamic_mal() else None

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, **({"collapse_monitor": self.monitor} if self.monitor is not None else {})}

    def _initial_model(self) -> tuple[Enhancer, Enhancer | None]:
        """The model to train and, with ``init_from``, the trained model it starts from (MAL's snapshot).

        ``init_from`` (a run, a checkpoint, a pretrained name such as ``deepfilternet3`` or ``gtcrn-dns3``) brings its architecture: with
        ``model.*`` left at the base defaults it is taken as is and recorded in the run's config;
        ``model.*`` settings that were changed must describe that same architecture.
        """
        source = self.config["init_from"]
        if source is None and self.config["init_required"]:
            raise ConfigError(
                "init_from: this preset fine-tunes a trained model (stage 2); set init_from to a run, a checkpoint, "
                "a pretrained name (deepfilternet3, nsnet2, gtcrn, gtcrn-dns3), or init_required=false to start from random weights (experiments only)"
            )
        if source is None:
            return build_model(self.config), None
        trained = load_torch_enhancer(source, need="weights to train (init_from)")
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

    def step(self, step: int, batch: Any) -> StepResult:
        noisy, clean = to_device(batch, self.device)
        with self.precision.autocast():
            estimate = self.forward(noisy)
        with self.precision.full():
            total, terms = self.losses(estimate.float(), clean)
        grad_norm, finite = self.updates["model"](total)
        record = {"loss": total.detach(), **terms, "grad_norm": grad_norm}
        if self.monitor is not None:  # spread averaged over ranks, so every rank takes the same decision
            spread = self.workers.mean({"spread": self.losses.dynamic_mal().last_spread})["spread"]
            record["mal_spread_ratio"] = self.monitor.observe(spread, step)
        return StepResult(record, finite)

    def check(self, record: dict[str, float]) -> None:
        if self.monitor is not None:
            self.monitor.raise_if_outside()
