"""The training matrix: every shipped preset, tiny, 2 steps, in one precision, in this process or in each
rank ``torchrun`` started; run as ``python tests/train/matrix.py PRECISION OUT [PRESET ...]``.

Each cell trains 2 steps, then trains again stopping after the step-1 checkpoint and resumes it; the
resumed weights must equal the uninterrupted ones bit for bit. Every step runs under
:class:`tests.train.guards.StepGuard` (no host synchronisation, no Python-data or device-less tensor);
under torchrun every collective runs under :class:`tests.train.guards.NcclRules`, every rank issues
the same collectives, and every rank ends with the same weights. ``OUT/cells-<rank>.json`` lists each
cell's problems (an empty list: the cell passed). Fine-tuning presets start from a tiny random
DeepFilterNet3 checkpoint (``init_from``, as the MAL and SSL recipes fine-tune DeepFilterNet3); the
SSL terms use the tiny WavLM.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import traceback
from pathlib import Path

import torch
import torch.distributed as dist

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sectl.train import resolve_config  # noqa: E402
from sectl.train.distributed import Workers  # noqa: E402
from sectl.train.trainer import Trainer  # noqa: E402
from tests.train.guards import NcclRules, StepGuard  # noqa: E402

PRESETS = sorted(p.stem for p in (REPO / "presets").glob("*.yaml") if p.stem != "base")
FINE_TUNING = {"finetune", "mal", "mal_bottleneck", "mal_dynamic", "mal_frozen_fe", "ssl_mse", "ssl_mse_pad",
               "ssl_softdtw", "ssl_softdtw_fine"}  # fmt: skip
DATA = Path(os.environ.get("SECTL_TEST_DATA", REPO.parent / "shared" / "data"))


class Stop(Exception):
    """Ends a run right after its step-1 checkpoint, as a kill would (without the interrupt handler)."""


def cell_overrides(preset: str, precision: str, world_size: int, init_from: Path) -> list[str]:
    common = [
        f"train.batch_size={2 * world_size}", "train.steps=2", "train.warmup_steps=1",
        "train.log_every=1", "train.checkpoint_every=1", "data.segment_s=0.5", "data.workers=0", "train.threads=1",
        f"train.precision={precision}", f"data.clean={DATA / 'speech'}", "ssl.model=tiny", "ssl.layer=2",
        f"train.device={os.environ.get('SECTL_MATRIX_DEVICE', 'cpu')}", "train.deterministic=true",
    ]
    if preset.startswith("vae_"):
        return [*common, "model.size=tiny", "vae.discriminator_width=0.1", "data.noise=null"]
    mixing = [f"data.noise={DATA / 'noise'}", f"data.rir={DATA / 'rir'}"]
    model = [f"init_from={init_from}"] if preset in FINE_TUNING else ["model.size=tiny"]  # init_from brings its size
    return [*common, *mixing, *model]


def tiny_deepfilternet3(folder: Path) -> Path:
    from sectl.models import build_enhancer
    from sectl.models.io.checkpoint import save_checkpoint

    path = folder / "tiny-deepfilternet3.pt"
    if not path.exists():
        torch.manual_seed(0)
        save_checkpoint(path, build_enhancer("deepfilternet3", "tiny"))
    return path


def train_cell(config: dict, out: Path, guard: StepGuard, stop_at: int | None = None, resume: bool = False) -> Trainer:
    def stop(event: str, data: dict) -> None:
        if event == "saved" and data["step"] == stop_at:
            raise Stop

    trainer = Trainer(config, out, stop)
    original, first = trainer.train_step, []

    def guarded(step, batch):
        first.append(step)
        with guard.step(cuda_syncs=trainer.device.type == "cuda" and step > first[0]):
            return original(step, batch)

    trainer.train_step = guarded
    trainer.prepare_run_folder(resume, "matrix", [])
    try:
        trainer.fit()
    except Stop:
        pass
    return trainer


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    state = {}
    for name, module in trainer.task.modules().items():
        state.update({f"{name}.{k}": v.detach().cpu() for k, v in module.state_dict().items()})
    return state


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def run_cell(preset: str, precision: str, out: Path, rank: int, world_size: int, init_from: Path,
             guard: StepGuard, rules: NcclRules | None) -> list[str]:  # fmt: skip
    config = resolve_config(preset, cell_overrides(preset, precision, world_size, init_from))
    problems = []
    full = weights(train_cell(config, out / "full", guard))
    train_cell(config, out / "resumed", guard, stop_at=1)
    resumed = weights(train_cell(config, out / "resumed", guard, resume=True))
    differing = [k for k in full if not torch.equal(full[k], resumed[k])]
    if differing:
        problems.append(f"resumed run differs from the uninterrupted one in {len(differing)} tensors, e.g. {differing[0]}")
    if not all(torch.isfinite(v).all() for v in full.values() if v.is_floating_point()):
        problems.append("non-finite weights after 2 steps")
    if rules is not None:
        problems += rules.compare()
        prints: list = [None] * world_size
        dist.all_gather_object(prints, fingerprint(full))
        if len(set(prints)) != 1:
            problems.append(f"ranks hold different weights: {prints}")
    return problems


def main() -> None:
    precision, out = sys.argv[1], Path(sys.argv[2])
    presets = sys.argv[3:] or PRESETS
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS: before its first call
    torchrun = "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ
    if torchrun:  # the group Trainer would join, made here so the rules wrap it from the start
        device = torch.device(os.environ.get("SECTL_MATRIX_DEVICE", "cpu"))
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if torchrun else (0, 1)
    out.mkdir(parents=True, exist_ok=True)
    init_from = tiny_deepfilternet3(out)  # every rank writes the same bytes before any reads
    if torchrun:
        dist.barrier()
    Workers.close = Workers.barrier  # every cell's runs share the process group: leave it at the very end
    guard = StepGuard().install()
    rules = NcclRules(device).install() if torchrun else None
    results = {}
    for preset in presets:
        try:
            problems = run_cell(preset, precision, out / preset, rank, world_size, init_from, guard, rules)
        except Exception as exc:  # noqa: BLE001 - a failing cell is reported, the next one still runs
            problems = [f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=-4)]
            if world_size > 1:  # the ranks may now disagree on where they are: stop all of them
                results[preset] = problems + guard.violations
                break
        results[preset] = problems + [f"step guard: {v}" for v in dict.fromkeys(guard.violations)] + \
            [f"NCCL rules: {v}" for v in dict.fromkeys(rules.violations if rules else [])]  # fmt: skip
        guard.violations.clear()
        if rules:
            rules.violations.clear()
    (out / f"cells-{rank}.json").write_text(json.dumps(results, indent=1))
    if torchrun:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
