"""One optimiser update, fed on a GPU without waiting on it: precision, gradient averaging, clipping.

A step never reads a value back to the host. Whether the loss and gradient norm were finite is
computed on the device and handed to the fused AdamW kernel as ``found_inf`` (the mechanism
``torch.amp.GradScaler`` uses), which leaves weights and moments untouched for a non-finite step;
the trainer reads the flags once per log interval and stops the run there (see
:meth:`sectl.train.trainer.Trainer`). With ``fp16`` the gradient scaler owns that decision instead:
a non-finite step is skipped and the scale lowered, as mixed-precision training expects.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch
from torch import nn

from sectl.errors import ConfigError
from sectl.train.distributed import GradientReducer, Workers

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
"""``train.precision``: the dtype autocast runs the models' matmuls and convolutions in (and ``auto``:
bf16 on a CUDA GPU that has it, fp32 elsewhere, where 16-bit autocast only costs time)."""


@dataclass(frozen=True)
class Precision:
    """Mixed precision for one device: autocast around networks, float32 for everything numeric.

    STFTs, losses, KL and soft-DTW run in :meth:`full` (float32 inputs, autocast off; soft-DTW
    accumulates in float64 itself), since bf16's 8-bit mantissa cannot resolve log-spectra or
    small KL terms.
    """

    name: str = "fp32"
    device_type: str = "cpu"

    def __post_init__(self) -> None:
        if self.name not in AUTOCAST_DTYPES:
            raise ConfigError(f"train.precision: expected one of {', '.join(AUTOCAST_DTYPES)}, auto; got {self.name!r}")

    @classmethod
    def resolve(cls, name: str, device: torch.device) -> "Precision":
        """``train.precision`` for ``device``; ``auto`` is bf16 mixed precision on a CUDA GPU with bf16 (the
        16-bit training of the published recipes), fp32 on a CPU."""
        if name == "auto":
            cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
            name = "bf16" if cuda_bf16 else "fp32"
        return cls(name, device.type)

    @property
    def enabled(self) -> bool:
        return self.name != "fp32"

    def autocast(self) -> contextlib.AbstractContextManager:
        """Where the networks run (model forward, discriminators)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=AUTOCAST_DTYPES[self.name])

    @contextlib.contextmanager
    def full(self) -> Iterator[None]:
        """Where losses run: autocast off (callers pass float32 tensors)."""
        if not self.enabled:
            yield
            return
        with torch.autocast(self.device_type, enabled=False):
            yield

    def scaler(self) -> torch.amp.GradScaler:
        """A loss scaler for fp16 (its 5-bit exponent underflows small gradients); disabled otherwise."""
        return torch.amp.GradScaler(self.device_type, enabled=self.name == "fp16")


def adamw(params: Iterable[nn.Parameter], train: dict, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable ``params``; the fused kernel where it exists (CPU and CUDA), because it
    can skip a non-finite update without a host synchronisation."""
    trainable = [p for p in params if p.requires_grad]
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(trainable, lr=train["lr"], betas=tuple(train["betas"]),
                             weight_decay=train["weight_decay"], fused=fused)  # fmt: skip


class GradientStep:
    """Backward, cross-rank average, clip and update for one optimiser, as device tensors only.

    ``__call__`` returns ``(gradient norm, finite)`` without synchronising; a non-finite step leaves
    the weights and optimiser moments as they were.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, clip: float, precision: Precision, workers: Workers = Workers()) -> None:
        self.optimizer, self.clip, self.workers = optimizer, clip, workers
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.reducer = GradientReducer(self.params, workers)
        self.scaler = precision.scaler()

    def __call__(self, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.reducer.finish()
        loss_ok = self._agreed(torch.isfinite(loss.detach()))
        if self.scaler.is_enabled():  # the scaler skips only on a non-finite gradient: make it see one
            first = next((p.grad for p in self.params if p.grad is not None), None)
            if first is not None:
                first.add_(torch.where(loss_ok, 0.0, float("inf")))
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        if self.scaler.is_enabled():  # an overflowing fp16 gradient is routine: skipped, scale lowered
            self.scaler.step(self.optimizer)
            self.scaler.update()
            return grad_norm.detach(), loss_ok
        finite = loss_ok & torch.isfinite(grad_norm)  # the averaged gradient: the same on every rank
        if not self.optimizer.defaults.get("fused"):
            if finite:  # a device without the fused kernel pays one synchronisation here
                self.optimizer.step()
            return grad_norm.detach(), finite
        self.optimizer.found_inf = (~finite).float()  # read by the fused kernel: skip the update when 1
        try:
            self.optimizer.step()
        finally:
            del self.optimizer.found_inf
        return grad_norm.detach(), finite

    def _agreed(self, loss_finite: torch.Tensor) -> torch.Tensor:
        """This step's loss was finite on every rank, and the ranks agreed on which parameters got a
        gradient: one decision for all replicas (a rank-local one lets them diverge, then hang)."""
        if self.reducer.consistent is not None:
            loss_finite = loss_finite & self.reducer.consistent
        return self.workers.all_true(loss_finite)

    def state_dict(self) -> dict:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.scaler.load_state_dict(state)
