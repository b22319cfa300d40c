"""Checks that make a CPU run fail where a GPU run would: a step guard and NCCL's rules for collectives.

On a CPU every tensor is "on the device", so a host synchronisation or a CPU-to-GPU copy inside a
training step costs nothing and shows nothing. :class:`StepGuard` refuses, inside a step, what would
make a GPU and its host wait on each other: reading a tensor's value in Python, building a tensor from
Python data, and creating a tensor with a factory that names no device (it lands on the CPU and must
then be copied: what torchaudio's WavLM position bias did). Host work that is there by design runs
inside :func:`sectl.device.host_side` and is let through.

gloo accepts what NCCL refuses. :class:`NcclRules` wraps the collectives ``torch.distributed`` offers
and refuses a tensor that is not contiguous, not on the rank's device, or of a dtype NCCL does not
reduce; it records every call's shape and dtype so :meth:`NcclRules.compare` can check that every
rank issued the same collectives in the same order (NCCL hangs or corrupts memory otherwise).
"""

from __future__ import annotations

import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist

from sectl.device import inside_host_side

READS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__", "cpu", "numpy")
PYTHON_DATA = ("tensor", "as_tensor", "from_numpy")
FACTORIES = ("arange", "zeros", "ones", "full", "empty", "linspace", "logspace", "eye", "rand", "randn", "randint",
             "randperm", "normal")  # fmt: skip
NCCL_DTYPES = {torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int32,
               torch.int64, torch.bool, torch.complex64, torch.complex128}  # fmt: skip
"""What ProcessGroupNCCL maps to an NCCL type (complex travels as its real view); int16 and the unsigned
16/32/64-bit types do not."""


def _caller() -> str:
    """Where the offending call came from: the innermost frames outside this file and torch's own Python."""
    frames = [f for f in traceback.extract_stack()[:-2] if not f.filename.endswith("guards.py")]
    outside_torch = [f for f in frames if "/torch/" not in f.filename] or frames
    return " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in reversed(outside_torch[-3:]))


class StepGuard:
    """Install with :meth:`install`; wrap each step in :meth:`step`. ``violations`` lists what was refused."""

    def __init__(self) -> None:
        self.active = False
        self.violations: list[str] = []
        self._originals: list[tuple[Any, str, Any]] = []

    def _refuse(self, what: str) -> None:
        if self.active and not inside_host_side():
            self.violations.append(f"{what} at {_caller()}")

    def _patch(self, owner: Any, name: str, check: Callable[..., str | None]) -> None:
        original = getattr(owner, name)
        self._originals.append((owner, name, original))

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.active:
                problem = check(*args, **kwargs)
                if problem:
                    self._refuse(problem)
            return original(*args, **kwargs)

        setattr(owner, name, guarded)

    def install(self) -> "StepGuard":
        for name in READS:
            self._patch(torch.Tensor, name, lambda *a, name=name, **k: f"tensor read .{name}()")
        for name in PYTHON_DATA:
            self._patch(torch, name, lambda *a, name=name, **k: f"tensor from Python data torch.{name}()")
        for name in FACTORIES:
            self._patch(torch, name, lambda *a, name=name, **k: None if "device" in k else f"torch.{name}() without a device")
        return self

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._originals):
            setattr(owner, name, original)
        self._originals.clear()

    @contextmanager
    def step(self, cuda_syncs: bool = False) -> Iterator[None]:
        """A guarded step; ``cuda_syncs`` also turns CUDA's own synchronisation detector to errors (on a GPU,
        after a run's first step: cuDNN's autotuning and lazily built optimiser state may wait once)."""
        self.active = True
        if cuda_syncs:
            torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            self.active = False
            if cuda_syncs:
                torch.cuda.set_sync_debug_mode("default")


class NcclRules:
    """``torch.distributed``'s collectives as NCCL would take them, on top of any backend (gloo here)."""

    WRAPPED = ("all_reduce", "broadcast", "all_gather", "all_gather_into_tensor", "reduce_scatter_tensor", "reduce")

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.calls: list[tuple[str, tuple[int, ...], str]] = []
        self.violations: list[str] = []
        self._originals: dict[str, Any] = {}

    def check(self, op: str, tensor: torch.Tensor) -> None:
        problems = []
        if not tensor.is_contiguous():
            problems.append("not contiguous (NCCL: Tensors must be contiguous)")
        if tensor.device != self.device:
            problems.append(f"on {tensor.device}, the rank's device is {self.device}")
        if tensor.dtype not in NCCL_DTYPES:
            problems.append(f"dtype {tensor.dtype} has no NCCL type")
        if problems:
            self.violations.append(f"{op} of {tuple(tensor.shape)} {tensor.dtype}: {'; '.join(problems)} at {_caller()}")
        self.calls.append((op, tuple(tensor.shape), str(tensor.dtype)))

    def install(self) -> "NcclRules":
        for name in self.WRAPPED:
            original = self._originals[name] = getattr(dist, name)

            # The bound names are private: a parameter called ``op`` took all_reduce's own ``op=`` (MIN became SUM).
            def wrapped(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
                for value in [*args, *kwargs.values()]:
                    for tensor in value if isinstance(value, (list, tuple)) else [value]:
                        if isinstance(tensor, torch.Tensor):
                            self.check(_name, tensor)
                return _original(*args, **kwargs)

            setattr(dist, name, wrapped)
        return self

    def uninstall(self) -> None:
        for op, original in self._originals.items():
            setattr(dist, op, original)
        self._originals.clear()

    def compare(self) -> list[str]:
        """Every rank's sequence of collectives, compared with rank 0's (itself a collective call)."""
        sequences: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(sequences, self.calls)
        problems = []
        for rank, calls in enumerate(sequences[1:], start=1):
            if calls != sequences[0]:
                first = next((i for i, (a, b) in enumerate(zip(sequences[0], calls)) if a != b), min(len(calls), len(sequences[0])))
                problems.append(f"rank {rank} issued other collectives than rank 0 from call {first}: "
                                f"{sequences[0][first:first + 1]} vs {calls[first:first + 1]} ({len(sequences[0])} vs {len(calls)} calls)")  # fmt: skip
        self.calls.clear()
        return problems
