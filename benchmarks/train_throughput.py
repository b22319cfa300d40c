"""Training throughput through the real trainer, and what the data pipeline delivers.

Two tables:

* **train** - steps/s of ``sectl.train.Trainer`` (loader, autocast, fused AdamW, logging: everything
  ``sectl train`` does) per preset and precision, after warm-up steps. Pretrained teachers stand in
  where a download would be needed (``ssl.model=deepfilternet3``: offline, real cost); fine-tuning
  presets start from random weights (the cost is the same).
* **data** - training examples/s the loader delivers per worker count, against what a step consumes
  (batch x steps/s of the baseline row): the pipeline must stay ahead of the GPU.

Run:  python benchmarks/train_throughput.py [--device auto] [--presets baseline mal ...]
      [--precisions fp32 bf16] [--size small] [--batch 8] [--seconds 2] [--steps 20] [--workers 0 1 2 4 8]
The before/after CPU comparison in the commit messages uses ``--presets baseline --precisions fp32``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SECTL_TEST_DATA", REPO.parent / "shared" / "data"))
os.environ.setdefault("SECTL_MODELS_DIR", str(Path(os.environ.get("SECTL_TEST_MODELS", REPO.parent / "shared" / "models"))))

PRESET_SETTINGS = {
    "baseline": [],
    "mal": ["init_from=null", "init_required=false"],
    "mal_dynamic": ["init_from=null", "init_required=false"],
    "ssl_softdtw": ["init_from=null", "init_required=false", "ssl.model=deepfilternet3", "ssl.layer=7"],
    "ssl_mse_pad": ["init_from=null", "init_required=false", "ssl.model=deepfilternet3", "ssl.layer=7"],
    "vae_jmas": ["ssl.model=deepfilternet3", "ssl.layer=7", "data.noise=null", "data.rir=null"],
}


CLEAN = os.environ.get("SECTL_BENCH_CLEAN", "speech_ivr")
"""Clean-speech folder of the data set (``speech`` on a device machine, where only a small copy travels)."""


def overrides(preset: str, size: str, batch: int, seconds: float, steps: int, extra: list[str]) -> list[str]:
    data = [f"data.clean={DATA / CLEAN}", f"data.noise={DATA / 'noise'}", f"data.rir={DATA / 'rir'}"]
    return [
        *data, f"model.size={size}", f"train.batch_size={batch}", f"data.segment_s={seconds}", f"train.steps={steps}",
        f"train.log_every={steps}", f"train.checkpoint_every={10 * steps}", "train.warmup_steps=1",
        *PRESET_SETTINGS.get(preset, []), *extra,
    ]  # fmt: skip


def steps_per_second(preset: str, settings: list[str], warmup: int) -> float:
    """Steps/s after ``warmup`` steps, timed from the trainer's own step events (the last one follows the
    log interval's read-back, so queued GPU work is included)."""
    from sectl.train import Trainer, resolve_config

    config = resolve_config(preset, settings)
    marks: dict[int, float] = {}

    def callback(event: str, data: dict) -> None:
        if event == "step":
            marks[data["step"]] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, Path(tmp) / "run", callback)
        trainer.prepare_run_folder(False, preset, settings)
        trainer.fit()
    last = max(marks)
    return (last - warmup) / (marks[last] - marks[warmup])


def loader_examples_per_second(workers: int, batch: int, seconds: float, steps: int, sample_rate: int = 16000) -> float:
    from sectl.data.loader import batch_loader
    from sectl.data.mixing import MixingConfig, MixingSampler

    sampler = MixingSampler(MixingConfig(clean=str(DATA / CLEAN), noise=str(DATA / "noise"), rir=str(DATA / "rir"),
                                         segment_s=seconds), sample_rate, seed=0)  # fmt: skip
    loader = iter(batch_loader(sampler, range(batch), 0, steps + 2, workers, torch.device("cpu")))
    next(loader), next(loader)  # workers started, caches warm
    start = time.perf_counter()
    for _ in range(steps):
        next(loader)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--presets", nargs="+", default=["baseline", "mal", "ssl_softdtw", "vae_jmas"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--size", default="small")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--data-workers", default="auto", help="data.workers for the train table")
    parser.add_argument("--workers", nargs="*", type=int, default=[0, 1, 2, 4, 8], help="loader table; empty: skip it")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    print(f"device {device}, model {args.size}, batch {args.batch} x {args.seconds} s, {args.steps} steps "
          f"({args.warmup} warm-up), data.workers={args.data_workers}, torch {torch.__version__}, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'preset':14s} {'precision':9s} {'steps/s':>9s} {'examples/s':>11s}")
    consumed = None
    for preset in args.presets:
        for precision in args.precisions:
            extra = [f"train.device={device}"]  # "default": leave the key alone (runs on versions without it)
            extra += [f"train.precision={precision}"] if precision != "default" else []
            extra += [f"data.workers={args.data_workers}"] if args.data_workers != "default" else []
            batch = args.batch if preset != "vae_jmas" else max(2, args.batch // 2)
            try:
                rate = steps_per_second(preset, overrides(preset, args.size, batch, args.seconds, args.steps, extra), args.warmup)
            except Exception as exc:  # noqa: BLE001 - a benchmark table reports a failing row and goes on
                print(f"{preset:14s} {precision:9s} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
                continue
            consumed = consumed or rate * batch
            print(f"{preset:14s} {precision:9s} {rate:9.2f} {rate * batch:11.1f}", flush=True)
    if args.workers:
        print(f"\ndata pipeline: examples/s delivered (batch {args.batch} x {args.seconds} s, mixing + room response)"
              + (f"; the first train row consumes {consumed:.1f}" if consumed else ""))  # fmt: skip
        for workers in args.workers:
            print(f"  workers {workers:2d}: {loader_examples_per_second(workers, args.batch, args.seconds, 20):8.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
