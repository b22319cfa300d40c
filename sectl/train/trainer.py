"""The training loop: one function per stage, state that fits in a checkpoint, exact resumption.

A run folder holds ``config.yaml`` (the resolved configuration), ``run.json`` (preset, overrides,
versions), ``checkpoints/last.pt`` and ``checkpoints/best.pt`` (written atomically), and
``metrics.jsonl`` (one JSON object per logged step or validation). Batches are a pure function of
``(seed, step)``, and the optimizer, schedule and RNG states are checkpointed, so ``--resume``
continues exactly where the killed run stopped.

The loop never waits on the device between log intervals: batches come from loader processes
(``data.workers``), steps return tensors, and the loop reads them back (loss terms, gradient norm,
whether every step was finite) once per ``train.log_every`` and before every checkpoint or
validation. A non-finite step is not applied (see :mod:`sectl.train.optim`); the read after it stops
the run with the step named, so no checkpoint ever holds weights from after it.

Nothing done is lost to a stop or a late error: SIGINT and SIGTERM stop the run between steps, after
saving the step it reached (every rank the same one, :mod:`sectl.train.stopping`); an error between
steps (a validation, a log write, a batch that cannot be read) saves that step before it propagates.
An error inside a step, or a non-finite step since the last save, saves nothing: the state may be torn.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml

from sectl import __version__
from sectl.audio import read_audio
from sectl.data.paired import paired_files
from sectl.enhance import enhance_tensor
from sectl.errors import ConfigError, SectlError, UsageError, first_line
from sectl.fileutil import atomic_write_text, make_folder
from sectl.metrics import METRICS, parse_metric_names, prepare_metrics
from sectl.metrics.evaluation import read_transcript, score_waveforms
from sectl.metrics.intrusive import METRIC_RATE
from sectl.models.io.checkpoint import load_checkpoint, save_checkpoint
from sectl.provenance import git_commit
from sectl.data.loader import batch_loader, resolve_workers
from sectl.train.distributed import Workers, start_workers
from sectl.train.reporting import TensorBoard
from sectl.train.config import read_yaml
from sectl.train.schema import validate as validate_config
from sectl.train.stopping import StopRequested, StopSignals
from sectl.train.tasks import EnhancerTask, StepResult, TrainingTask
from sectl.train.vae_task import VAETask

Callback = Callable[[str, dict], None]
EXECUTION_KEYS = {"train.threads", "train.device", "train.deterministic", "data.workers", "data.cache_gb", "train.dist_timeout_s",
                  "train.tensorboard"}
"""Settings that change how fast a run goes or what it reports, not what it computes: a resumed run may
change them."""


@dataclass
class TrainState:
    step: int = 0
    best_score: float | None = None
    best_step: int | None = None
    best_metric: str = ""  # the metric that ranks checkpoints (validation.metric)
    history: list[dict] = field(default_factory=list)


TASKS = {"enhancer": EnhancerTask, "vae": VAETask}


def build_task(config: dict, device: torch.device, workers: Workers = Workers()) -> TrainingTask:
    if config["task"] not in TASKS:
        raise ConfigError(f"task: unknown {config['task']!r}; known: {', '.join(TASKS)}")
    return TASKS[config["task"]](config, device, workers)


def schedule(train: dict) -> Callable[[int], float]:
    """The learning-rate factor per step: ``cosine`` (warm-up, cosine decay) or ``exponential``."""
    if train["schedule"] == "exponential":
        return lambda s: train["lr_decay"] ** s
    if train["schedule"] == "cosine":
        return lambda s: lr_factor(s, train["warmup_steps"], train["steps"], train["min_lr_ratio"])
    raise ConfigError(f"train.schedule: unknown {train['schedule']!r}; use cosine or exponential")


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def validate(model: torch.nn.Module, pairs: list[tuple[str, Path, Path]], metrics: list[str]) -> dict[str, float | None]:
    """Mean of ``metrics`` over whole validation files run through ``model`` as ``sectl enhance`` would.

    ``pairs`` are ``(name, input, reference)``; a codec's input is its reference (a round trip).
    """
    return mean_scores(score_files(model, pairs, metrics), metrics)


def score_files(model: torch.nn.Module, pairs: list[tuple[str, Path, Path]], metrics: list[str]) -> list[dict]:
    """Each file's scores (the model computes on its own device; metrics on the CPU)."""
    was_training = model.training
    model.eval()
    scored = []
    for _, input_path, clean_path in pairs:
        noisy = read_audio(input_path, sample_rate=METRIC_RATE).samples
        clean = read_audio(clean_path, sample_rate=METRIC_RATE).samples[0]
        estimate = enhance_tensor(model, noisy, METRIC_RATE)[0]
        scores, _, _ = score_waveforms(estimate, metrics, ref=clean, transcript=read_transcript(clean_path))
        scored.append(scores)
    model.train(was_training)
    return scored


def mean_scores(scored: list[dict], metrics: list[str]) -> dict[str, float | None]:
    values = {m: [s[m] for s in scored if s.get(m) is not None] for m in metrics}
    return {m: (float(np.mean(v)) if v else None) for m, v in values.items()}


def _is_better(metric: str, score: float, best: float | None) -> bool:
    if best is None:
        return True
    return score > best if METRICS[metric].higher_is_better else score < best


class Trainer:
    """Owns a run folder and trains ``config`` into it; ``callback(event, data)`` reports progress.

    Under ``torchrun`` every rank runs this loop on its share of each batch (see
    :mod:`sectl.train.distributed`); rank 0 alone writes the run folder and logs. Validation is
    sharded: each rank scores every ``world_size``-th file and rank 0 averages them all, so no rank
    waits in a collective while another validates alone (``train.dist_timeout_s`` bounds any wait).
    """

    def __init__(self, config: dict, out: str | Path, callback: Callback | None = None) -> None:
        self.config, self.out = config, Path(out)
        self.callback = callback or (lambda event, data: None)
        t = config["train"]
        if t["threads"]:
            torch.set_num_threads(int(t["threads"]))
        self.workers, self.device = start_workers(t["device"], t["dist_timeout_s"])
        if self.device.type == "cuda":  # TF32 matmuls and convolutions: float32 range, 10-bit mantissa
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(t["tf32"])
        if t["deterministic"]:
            deterministic_kernels()
        self.task = build_task(config, self.device, self.workers)
        self.config = self.task.config  # init_from may have filled in the model section
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(t))
            for name, optimizer in self.task.optimizers.items()
        }
        self.validation_pairs = self._validation_pairs()
        self.state = TrainState(best_metric=self.config["validation"]["metric"])
        self._between_steps = True  # the state is whole: parameters, optimizers, schedules and step agree
        self._saved_step: int | None = None  # the step last.pt holds (None: not written by this process)
        self._pending: StepResult | None = None  # the last step's record, still on the device
        self._first_bad = torch.tensor(0, device=self.device)  # first non-finite step (1-based), 0: none
        self._diverged = False  # a read back found a non-finite step
        self.tensorboard: TensorBoard | None = None

    # ----------------------------------------------------------------------------------- set-up
    def _validation_pairs(self) -> list[tuple[str, Path, Path]]:
        v = self.config["validation"]
        if v["noisy"] is None and v["clean"] is None:
            return []
        metrics = parse_metric_names([v["metric"], *v["metrics"]])
        if v["noisy"] is None and self.config["task"] == "vae":  # a codec's input is its reference
            pairs = [(name, path, path) for name, path, _ in paired_files(v["clean"], v["clean"], "validation.clean")]
        elif v["noisy"] is None or v["clean"] is None:
            raise ConfigError("validation.noisy and validation.clean must be set together")
        else:
            pairs = paired_files(v["noisy"], v["clean"], "validation.noisy/validation.clean")
        try:  # before step 1: a metric's missing model must not end the run at its first validation
            prepare_metrics(metrics)
        except SectlError as exc:
            raise ConfigError(f"validation.metrics ({', '.join(metrics)}): {exc}") from None
        return pairs

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    def prepare_run_folder(self, resume: bool, preset: str, overrides: list[str]) -> None:
        """Create the run folder, or check that ``--resume`` matches the run's saved configuration."""
        config_path = self.out / "config.yaml"
        if resume:
            if not (self.checkpoint_dir / "last.pt").is_file():
                raise SectlError(f"{self.out}: nothing to resume (no checkpoints/last.pt)")
            saved = validate_config(read_yaml(config_path))  # keys added since: their defaults
            diff = sorted(_diff_keys(saved, self.config) - EXECUTION_KEYS)
            if diff:
                raise SectlError(f"{self.out}: configuration differs from the run's config.yaml ({', '.join(diff)})")
            self._restore(load_checkpoint(self.checkpoint_dir / "last.pt"))
            if self.workers.is_main:
                self._truncate_log(self.state.step)
            self.workers.barrier()
            return
        if (self.checkpoint_dir / "last.pt").exists():
            raise SectlError(f"{self.out}: run folder already has checkpoints; use --resume or another --out")
        # The training RNG (latent samples); checkpointed from here on. Ranks draw different noise.
        torch.manual_seed(self.config["seed"] + self.workers.rank)
        if self.workers.is_main:
            self._write_run_folder(config_path, preset, overrides)
        self.workers.barrier()

    def _write_run_folder(self, config_path: Path, preset: str, overrides: list[str]) -> None:
        make_folder(self.out)
        atomic_write_text(config_path, yaml.safe_dump(self.config, sort_keys=False))
        run_info = {
            "preset": preset, "overrides": overrides, "sectl_version": __version__,
            "torch_version": str(torch.__version__), "device": str(self.device), "processes": self.workers.world_size,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "commit": git_commit(),
        }
        atomic_write_text(self.out / "run.json", json.dumps(run_info, indent=2))

    # ----------------------------------------------------------------------------------- checkpoints
    def _save(self, name: str, rng_states: list[dict] | None = None) -> None:
        """The inference weights as the checkpoint's model (loadable by name like any model), and the
        task's full state (every module and optimizer, every rank's RNG) for ``--resume``. Rank 0 writes."""
        if not self.workers.is_main:
            return
        save_checkpoint(
            self.checkpoint_dir / name,
            self.task.inference_model(),
            step=self.state.step,
            best_score=self.state.best_score,
            best_step=self.state.best_step,
            task=self.task.state_dict(),
            schedulers={k: s.state_dict() for k, s in self.schedulers.items()},
            rng=rng_states or [self._rng_state()],
            config=self.config,
        )

    def _save_last(self) -> None:
        """``last.pt``; a collective call in a data-parallel run (every rank sends its RNG state)."""
        self._save("last.pt", self.workers.gather(self._rng_state()))
        self._saved_step = self.state.step
        self.callback("saved", {"step": self.state.step, "path": str(self.checkpoint_dir / "last.pt")})

    def _rng_state(self) -> dict[str, torch.Tensor]:
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _restore(self, payload: dict[str, Any]) -> None:
        last = self.checkpoint_dir / "last.pt"
        if "task" not in payload or "step" not in payload:
            raise UsageError(f"{last}: holds no training state (a model file, not a run's checkpoint); cannot resume from it")
        rng_states = payload.get("rng") or [{"cpu": payload["torch_rng"]}]  # before 0.2: one process, CPU state
        saved = len(rng_states)
        if saved != self.workers.world_size:
            raise UsageError(
                f"{last}: the run was trained with {saved} process(es); resume it with "
                f"{saved} (this is {self.workers.world_size}), so every random draw continues exactly"
            )
        try:
            self.task.load_state_dict(payload["task"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise UsageError(f"{last}: its training state does not fit this run's configuration ({first_line(exc, 160)})") from None
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(payload["schedulers"][name])
        rng = rng_states[self.workers.rank]
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.state.step = self._saved_step = int(payload["step"])
        self.state.best_score, self.state.best_step = payload["best_score"], payload["best_step"]

    def _truncate_log(self, step: int) -> None:
        """Drop log records written after the checkpoint we resume from (those steps run again), and a
        last line torn by a hard kill mid-write."""
        log = self.out / "metrics.jsonl"
        if log.is_file():
            kept = [record for record in map(_parse_record, log.read_text().splitlines()) if record and record["step"] <= step]
            atomic_write_text(log, "".join(f"{json.dumps(record)}\n" for record in kept))

    def _log(self, record: dict) -> None:
        if not self.workers.is_main:
            return
        with open(self.out / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            self.tensorboard.scalars(record)

    # ----------------------------------------------------------------------------------- loop
    def train_step(self, step: int, batch: Any) -> StepResult:
        try:
            result = self.task.step(step, batch)
        except SectlError as exc:
            raise SectlError(f"{exc}; {self.checkpoint_dir / 'last.pt'} is intact") from None
        except Exception as exc:
            if self.config["train"]["compile"] and type(exc).__module__.startswith("torch._"):
                raise ConfigError(f"train.compile: torch.compile failed for this model ({first_line(exc)}); set train.compile=false") from None
            raise
        for name, scheduler in self.schedulers.items():
            if result.stepped is None or name in result.stepped:
                scheduler.step()
        self._first_bad = torch.where((self._first_bad == 0) & ~result.finite, step + 1, self._first_bad)
        return result

    def read_back(self) -> dict[str, float]:
        """The last step's record as floats: the one host synchronisation of a log interval. Raises if any
        step since the start was non-finite (its update, and any later non-finite one, was skipped)."""
        result = self._pending
        record = self.workers.mean(result.record) if result is not None else {}
        values = torch.stack([self._first_bad.float(), *(v.float().reshape(()) for v in record.values())]).tolist()
        first_bad = int(values[0])
        if first_bad:
            self._diverged = True  # no save from here on: the checkpoint before it is the last whole state
            raise SectlError(
                f"step {first_bad}: non-finite loss or gradient (on any rank); that update was skipped and the run stopped at step "
                f"{self.state.step}; {self.checkpoint_dir / 'last.pt'} is intact"
            )
        floats = dict(zip(record, values[1:]))
        self.task.check(floats)
        return floats

    def run_validation(self) -> dict[str, float | None]:
        """Score the validation files, sharded over the ranks (a collective call in a data-parallel run)."""
        v = self.config["validation"]
        metrics = list(dict.fromkeys([v["metric"], *v["metrics"]]))
        model = self.task.inference_model()
        scores = mean_scores([s for part in self._scored_on_every_rank(model, metrics) for s in part], metrics)
        self.task.model.train()
        score = scores[v["metric"]]
        improved = score is not None and _is_better(v["metric"], score, self.state.best_score)
        if improved:
            self.state.best_score, self.state.best_step = score, self.state.step
        self._log({"step": self.state.step, "validation": scores, "best": improved})
        if self.tensorboard is not None:
            self.tensorboard.audio_examples(model, self.validation_pairs, self.state.step)
        self.callback("validation", {"step": self.state.step, "scores": scores, "improved": improved})
        return {"improved": improved, **scores}

    def _scored_on_every_rank(self, model: torch.nn.Module, metrics: list[str]) -> list[list[dict]]:
        """Each rank's scores of its shard. A rank whose scoring fails still joins the gather, so every rank
        raises :class:`AgreedError` at the same point and they can save the step together."""
        try:
            mine: list[dict] | str = score_files(model, self.workers.shard(self.validation_pairs), metrics)
        except Exception as exc:
            if not self.workers.distributed:
                raise
            mine = f"{type(exc).__name__}: {first_line(exc)}" if not isinstance(exc, SectlError) else first_line(exc)
        parts = self.workers.gather(mine)
        failed = [(rank, part) for rank, part in enumerate(parts) if isinstance(part, str)]
        if failed:
            rank, message = failed[0]
            raise AgreedError(f"validation at step {self.state.step} failed on rank {rank}: {message}")
        return parts

    def fit(self) -> TrainState:
        t = self.config["train"]
        start = self._saved_step = self.state.step  # nothing new to save yet
        if t["tensorboard"] and self.workers.is_main:
            self.tensorboard = TensorBoard(self.out / "tensorboard", self.task.sample_rate)
        self.callback("start", {"step": start, "total": t["steps"]})
        processes_per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        workers = resolve_workers(self.config["data"]["workers"], processes_per_node)
        cache_bytes = int(self.config["data"]["cache_gb"] * 2**30) // processes_per_node  # this rank's share of the machine's
        loader = batch_loader(self.task.sampler, self.workers.examples(t["batch_size"]), start, t["steps"],
                              workers, self.device, cache_bytes)  # fmt: skip
        with StopSignals() as signals:
            try:
                self._loop(loader, signals, start, time.perf_counter())
            except Exception as exc:
                if not self.workers.distributed or isinstance(exc, AgreedError):
                    self._keep_steps(quietly=True)
                raise
        if not self.validation_pairs:
            self._save("best.pt")  # nothing to rank by: the final weights are the best we know
        self._close()
        self.callback("end", {"step": self.state.step, "best_score": self.state.best_score, "best_step": self.state.best_step})
        return self.state

    def _loop(self, loader: Any, signals: StopSignals, start: int, clock: float) -> None:
        batches = iter(loader)
        try:
            self._steps(batches, signals, start, clock)
        finally:
            # The traceback of an error or a stop keeps the iterator alive, and with it the loader's worker
            # processes, which then block the interpreter's exit; end them now (what its __del__ calls).
            shutdown = getattr(batches, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()

    def _steps(self, batches: Any, signals: StopSignals, start: int, clock: float) -> None:
        for batch in batches:
            signum = self._stop_signal(signals)
            if signum is not None:
                self._keep_steps()
                self._close()
                raise StopRequested(signum, self.state.step, str(self.checkpoint_dir / "last.pt"))
            self._between_steps = False
            self._pending = self.train_step(self.state.step, batch)
            self.state.step += 1
            self._between_steps = True
            if self.workers.vote is not None:
                self.workers.vote.after_step()
            self._after_step(start, clock)

    def _after_step(self, start: int, clock: float) -> None:
        """Log, validate and save as the schedule asks, after step ``self.state.step``."""
        t, step = self.config["train"], self.state.step
        log_now = step % t["log_every"] == 0 or step == t["steps"]
        validate_now = bool(self.validation_pairs) and (step % self.config["validation"]["every"] == 0 or step == t["steps"])
        save_now = step % t["checkpoint_every"] == 0 or step == t["steps"]
        if log_now or validate_now or save_now:
            record = self.read_back()
            if log_now:
                rate = (step - start) / (time.perf_counter() - clock)
                lr = next(iter(self.schedulers.values())).get_last_lr()[0]
                self._log({"step": step, "lr": lr, "it_s": rate, **record})
                self.callback("log", {"step": step, **record})
        self.callback("step", {"step": step})
        if validate_now and self.run_validation()["improved"]:
            self._save("best.pt")
        if save_now:
            self._save_last()

    def _stop_signal(self, signals: StopSignals) -> int | None:
        """The signal to stop on before this step: this process's, or under torchrun the one every rank
        agreed on (:class:`sectl.train.stopping.StopVote`)."""
        vote = self.workers.vote
        if vote is None:
            return signals.signum
        if signals.signum is not None:
            vote.ask(signals.signum)
        return vote.stop_now()

    def _keep_steps(self, quietly: bool = False) -> None:
        """Save ``last`` at the step reached, if the state is whole and holds steps ``last`` lacks (a
        collective call in a data-parallel run). A non-finite step since the last read keeps the previous
        save (its error is raised, or with ``quietly``, left to the error being handled)."""
        if not self._between_steps or self._diverged or self.state.step == self._saved_step:
            return
        try:
            self.read_back()
            self._save_last()
        except Exception:
            if not quietly:
                raise

    def _close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None
        self.workers.close()

    def interrupted(self) -> None:
        """Save ``last`` after a KeyboardInterrupt raised between steps (not by SIGINT, which stops the loop
        itself: a callback's, say), so ``--resume`` loses nothing.

        An interrupt inside a step may leave parameters half-updated: then the previous ``last`` stays.
        A data-parallel run keeps its last save: its ranks were not stopped at an agreed step.
        """
        if not self.workers.distributed:
            self._keep_steps(quietly=True)


class AgreedError(SectlError):
    """An error every rank of a data-parallel run raises at the same point, so they can still save together."""


def deterministic_kernels() -> None:
    """Deterministic algorithms where PyTorch has them (cuDNN without autotuning, cuBLAS with a fixed
    workspace: set before the first cuBLAS call of the process); a warning names any op that has none."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def _parse_record(line: str) -> dict | None:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


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
    except StopRequested:
        raise
    except KeyboardInterrupt:
        trainer.interrupted()
        raise


def resume(
    out: str | Path, overrides: list[str] | tuple[str, ...] = (), callback: Callback | None = None
) -> TrainState:
    """Continue the run in folder ``out`` with its own saved configuration (the library behind
    ``sectl train --out RUN --resume``); ``overrides`` may change execution settings only."""
    from sectl.train.config import apply_overrides

    config_path = Path(out) / "config.yaml"
    if not config_path.is_file():
        raise UsageError(f"{out}: not a run folder (no config.yaml); --resume continues a run that `sectl train -o {out}` started")
    config = apply_overrides(read_yaml(config_path), list(overrides))
    return train(config, out, resume=True, preset="(resumed)", overrides=list(overrides), callback=callback)
