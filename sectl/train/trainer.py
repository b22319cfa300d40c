"""The training loop: one function per stage, state that fits in a checkpoint, exact resumption.

A run folder holds ``config.yaml`` (the resolved configuration), ``run.json`` (preset, overrides,
versions), ``checkpoints/last.pt`` and ``checkpoints/best.pt`` (written atomically), and
``metrics.jsonl`` (one JSON object per logged step or validation). Batches are a pure function of
``(seed, step)``, and the optimizer, schedule and RNG states are checkpointed, so ``--resume``
continues exactly where the killed run stopped.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml

from sectl import __version__
from sectl.audio import read_audio
from sectl.data.mixing import MixingConfig, MixingSampler
from sectl.data.paired import PairedSampler, paired_files
from sectl.enhance import enhance_tensor
from sectl.errors import SectlError
from sectl.fileutil import atomic_write_text
from sectl.metrics import METRICS, parse_metric_names
from sectl.metrics.evaluate import score_waveforms
from sectl.metrics.intrusive import METRIC_RATE
from sectl.models import Enhancer, build_enhancer
from sectl.models.checkpoint import load_checkpoint, save_checkpoint
from sectl.models.loading import load_enhancer
from sectl.models.export import git_commit
from sectl.train.config import base_config
from sectl.train.losses import LossSet, build_losses

Callback = Callable[[str, dict], None]
EXECUTION_KEYS = {"train.threads", "train.device"}
"""Settings that change how fast a run goes, not what it computes: a resumed run may change them."""


@dataclass
class TrainState:
    step: int = 0
    best_score: float | None = None
    best_step: int | None = None
    history: list[dict] = field(default_factory=list)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SectlError("train.device: cuda requested but no CUDA device is available")
    return torch.device(name)


def build_model(config: dict) -> Enhancer:
    m = config["model"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config["seed"])
        return build_enhancer(
            m["name"], m["size"], hidden=m["hidden"], depth=m["depth"], bottleneck=m["bottleneck"], causal=m["causal"]
        )


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


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def validate(model: Enhancer, pairs: list[tuple[str, Path, Path]], metrics: list[str]) -> dict[str, float | None]:
    """Mean of ``metrics`` over whole validation files, enhanced as ``sectl enhance`` would."""
    model.eval()
    values: dict[str, list[float]] = {m: [] for m in metrics}
    for _, noisy_path, clean_path in pairs:
        noisy = read_audio(noisy_path, sample_rate=METRIC_RATE).samples
        clean = read_audio(clean_path, sample_rate=METRIC_RATE).samples[0]
        scores, _, _ = score_waveforms(clean, enhance_tensor(model, noisy, METRIC_RATE)[0], metrics)
        for name, value in scores.items():
            if value is not None:
                values[name].append(value)
    model.train()
    return {m: (float(np.mean(v)) if v else None) for m, v in values.items()}


def _is_better(metric: str, score: float, best: float | None) -> bool:
    if best is None:
        return True
    return score > best if METRICS[metric].higher_is_better else score < best


class Trainer:
    """Owns a run folder and trains ``config`` into it; ``callback(event, data)`` reports progress."""

    def __init__(self, config: dict, out: str | Path, callback: Callback | None = None) -> None:
        self.config, self.out = config, Path(out)
        self.callback = callback or (lambda event, data: None)
        t = config["train"]
        if t["threads"]:
            torch.set_num_threads(int(t["threads"]))
        self.device = pick_device(t["device"])
        self.model, snapshot = self._initial_model()
        self.model.to(self.device).train()
        self.losses: LossSet = build_losses(config, self.model, snapshot).to(self.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=t["lr"], betas=tuple(t["betas"]), weight_decay=t["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, t["warmup_steps"], t["steps"], t["min_lr_ratio"])
        )
        self.sampler = build_sampler(config, self.model.sample_rate)
        self.validation_pairs = self._validation_pairs()
        self.state = TrainState()
        self._between_steps = True

    # ----------------------------------------------------------------------------------- set-up
    def _initial_model(self) -> tuple[Enhancer, Enhancer | None]:
        """The model to train and, with ``init_from``, the trained model it starts from (MAL's snapshot).

        ``init_from`` (a run, a checkpoint, ``deepfilternet3``, ``nsnet2``) brings its architecture: with
        ``model.*`` left at the base defaults it is taken as is and recorded in the run's config;
        ``model.*`` settings that were changed must describe that same architecture.
        """
        source = self.config["init_from"]
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
            self.config = {**self.config, "model": {**{k: None for k in self.config["model"]}, "name": trained.name}}
        return copy.deepcopy(trained), trained.to(self.device)

    def _validation_pairs(self) -> list[tuple[str, Path, Path]]:
        v = self.config["validation"]
        if v["noisy"] is None and v["clean"] is None:
            return []
        if v["noisy"] is None or v["clean"] is None:
            raise SectlError("validation.noisy and validation.clean must be set together")
        parse_metric_names([v["metric"], *v["metrics"]])
        return paired_files(v["noisy"], v["clean"], "validation")

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    def prepare_run_folder(self, resume: bool, preset: str, overrides: list[str]) -> None:
        """Create the run folder, or check that ``--resume`` matches the run's saved configuration."""
        config_path = self.out / "config.yaml"
        if resume:
            if not (self.checkpoint_dir / "last.pt").is_file():
                raise SectlError(f"{self.out}: nothing to resume (no checkpoints/last.pt)")
            saved = yaml.safe_load(config_path.read_text())
            diff = sorted(_diff_keys(saved, self.config) - EXECUTION_KEYS)
            if diff:
                raise SectlError(f"{self.out}: configuration differs from the run's config.yaml ({', '.join(diff)})")
            self._restore(load_checkpoint(self.checkpoint_dir / "last.pt"))
            self._truncate_log(self.state.step)
            return
        if (self.checkpoint_dir / "last.pt").exists():
            raise SectlError(f"{self.out}: run folder already has checkpoints; use --resume or another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(config_path, yaml.safe_dump(self.config, sort_keys=False))
        run_info = {
            "preset": preset, "overrides": overrides, "sectl_version": __version__,
            "torch_version": str(torch.__version__), "device": str(self.device), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "commit": git_commit(),
        }
        atomic_write_text(self.out / "run.json", json.dumps(run_info, indent=2))

    # ----------------------------------------------------------------------------------- checkpoints
    def _save(self, name: str) -> None:
        save_checkpoint(
            self.checkpoint_dir / name,
            self.model,
            step=self.state.step,
            best_score=self.state.best_score,
            best_step=self.state.best_step,
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            torch_rng=torch.get_rng_state(),
            config=self.config,
        )

    def _restore(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload["state_dict"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        torch.set_rng_state(payload["torch_rng"])
        self.state.step = int(payload["step"])
        self.state.best_score, self.state.best_step = payload["best_score"], payload["best_step"]

    def _truncate_log(self, step: int) -> None:
        """Drop log records written after the checkpoint we resume from: those steps run again."""
        log = self.out / "metrics.jsonl"
        if log.is_file():
            kept = [line for line in log.read_text().splitlines() if line and json.loads(line)["step"] <= step]
            atomic_write_text(log, "".join(f"{line}\n" for line in kept))

    def _log(self, record: dict) -> None:
        with open(self.out / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")

    # ----------------------------------------------------------------------------------- loop
    def train_step(self, step: int) -> dict[str, float]:
        t = self.config["train"]
        noisy, clean = self.sampler.batch(step, t["batch_size"])
        noisy, clean = noisy.to(self.device), clean.to(self.device)
        enhanced = self.model(noisy)
        total, terms = self.losses(enhanced, clean)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t["grad_clip"])
        if not (torch.isfinite(total) and torch.isfinite(grad_norm)):
            raise SectlError(
                f"step {step + 1}: non-finite loss or gradient ({', '.join(f'{k} {v:.3g}' for k, v in terms.items())}); "
                f"the weights were not updated and {self.checkpoint_dir / 'last.pt'} is intact"
            )
        self.optimizer.step()
        self.scheduler.step()
        self.losses.check_collapse(self.config["mal"]["collapse_threshold"])
        return {"loss": float(total.detach()), **terms, "grad_norm": float(grad_norm)}

    def run_validation(self) -> dict[str, float | None]:
        v = self.config["validation"]
        metrics = list(dict.fromkeys([v["metric"], *v["metrics"]]))
        scores = validate(self.model, self.validation_pairs, metrics)
        score = scores[v["metric"]]
        improved = score is not None and _is_better(v["metric"], score, self.state.best_score)
        if improved:
            self.state.best_score, self.state.best_step = score, self.state.step
        self._log({"step": self.state.step, "validation": scores, "best": improved})
        self.callback("validation", {"step": self.state.step, "scores": scores, "improved": improved})
        return {"improved": improved, **scores}

    def fit(self) -> TrainState:
        t = self.config["train"]
        start = self.state.step
        self.callback("start", {"step": start, "total": t["steps"]})
        clock = time.perf_counter()
        while self.state.step < t["steps"]:
            self._between_steps = False
            record = self.train_step(self.state.step)
            self.state.step += 1
            self._between_steps = True
            step = self.state.step
            if step % t["log_every"] == 0 or step == t["steps"]:
                rate = (step - start) / (time.perf_counter() - clock)
                self._log({"step": step, "lr": self.scheduler.get_last_lr()[0], "it_s": rate, **record})
            self.callback("step", {"step": step, **record})
            validate_now = self.validation_pairs and (step % self.config["validation"]["every"] == 0 or step == t["steps"])
            if validate_now and self.run_validation()["improved"]:
                self._save("best.pt")
            if step % t["checkpoint_every"] == 0 or step == t["steps"]:
                self._save("last.pt")
        if not self.validation_pairs:
            self._save("best.pt")  # nothing to rank by: the final weights are the best we know
        self.callback("end", {"step": self.state.step, "best_score": self.state.best_score, "best_step": self.state.best_step})
        return self.state

    def interrupted(self) -> None:
        """Save ``last`` after an interrupt between steps, so ``--resume`` loses nothing.

        An interrupt inside a step may leave parameters half-updated: then the previous ``last`` stays.
        """
        if self._between_steps:
            self._save("last.pt")


def _diff_keys(a: Any, b: Any, prefix: str = "") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys: set[str] = set()
        for k in a.keys() | b.keys():
            keys |= _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return keys
    return set() if a == b else {prefix.rstrip(".")}


def train(
    config: dict,
    out: str | Path,
    resume: bool = False,
    preset: str = "",
    overrides: list[str] | None = None,
    callback: Callback | None = None,
) -> TrainState:
    """Train ``config`` into run folder ``out`` (the library behind ``sectl train``)."""
    trainer = Trainer(config, out, callback)
    trainer.prepare_run_folder(resume, preset, list(overrides or []))
    try:
        return trainer.fit()
    except KeyboardInterrupt:
        trainer.interrupted()
        raise
