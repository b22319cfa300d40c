"""Ctrl-C of a training run on a device, in one process and under torchrun: the step reached is saved, the
message names the resume command as started, and the resumed run equals an uninterrupted one bit for bit.

On a GPU this runs what CPU tests cannot: the stop vote read two steps late through pinned memory and a CUDA
event (:mod:`sectl.train.stopping`), with NCCL. Prints one line per launcher and the uninterrupted steps/s.

    python benchmarks/stop_check.py cuda OUT      # (cpu works too, slower to show anything)
"""

from __future__ import annotations

import json
import signal
import statistics
import sys
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sectl.models.io.checkpoint import load_checkpoint  # noqa: E402
from sectl.train import resolve_config  # noqa: E402
from tests.conftest import DATA  # noqa: E402
from tests.train.test_distributed import launch  # noqa: E402
from tests.train.test_stopping import signal_after_log_lines  # noqa: E402

LAUNCHERS = {"one process": [sys.executable, "-m", "sectl"],
             "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m", "sectl"]}


def config(device: str) -> dict:
    return resolve_config("baseline", [
        "model.size=tiny", "train.steps=60", "train.batch_size=4", "data.segment_s=1.0", "train.log_every=1",
        "train.checkpoint_every=1000", f"train.device={device}", "train.deterministic=true", "data.workers=2",
        f"train.precision={'bf16' if device == 'cuda' else 'fp32'}", f"data.clean={DATA / 'speech'}",
        f"data.noise={DATA / 'noise'}", f"data.rir={DATA / 'rir'}",
    ])  # fmt: skip


def weights(run: Path) -> dict:
    return load_checkpoint(run / "checkpoints" / "last.pt")["state_dict"]


def check(name: str, launcher: list[str], config_file: Path, out: Path) -> dict:
    train = [*launcher, "train", "-p", str(config_file), "-q", "-o"]
    full = launch([*train, str(out / "full")])
    assert full.returncode == 0, full.stderr[-2000:]
    rates = [json.loads(line)["it_s"] for line in (out / "full" / "metrics.jsonl").read_text().splitlines()]
    stopped = signal_after_log_lines([*train, str(out / "run")], out / "run" / "metrics.jsonl", 10, signal.SIGINT, group=True)
    saved = load_checkpoint(out / "run" / "checkpoints" / "last.pt")["step"]
    message = next((line for line in stopped.stderr.splitlines() if "stopped by" in line), stopped.stderr[-500:])
    resumed = launch([*launcher, "train", "-o", str(out / "run"), "--resume", "-q"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = weights(out / "full"), weights(out / "run")
    return {"launcher": name, "exit": stopped.returncode, "saved_step": saved, "message": message,
            "bit_exact": all(torch.equal(a[k], b[k]) for k in a), "full_it_s_median": statistics.median(rates[5:])}


def main() -> None:
    device, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config(device)))
    for name, launcher in LAUNCHERS.items():
        print(json.dumps(check(name, launcher, out / "config.yaml", out / name.replace(" ", "_"))), flush=True)


if __name__ == "__main__":
    main()
