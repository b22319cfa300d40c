"""Enhancement speed and memory.

* real-time factor (processing time / audio duration) on one CPU thread for a 10 s input;
* a 10-minute file enhanced from disk to disk in a fresh process, with its peak resident memory,
  next to a 1-minute file: chunked streaming keeps memory flat as duration grows.

Run: python benchmarks/enhance.py [--model RUN|CHECKPOINT|default] [--size small]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

CHILD = """
import json, resource, sys, time, torch
torch.set_num_threads(1)
from sectl.enhance import enhance_file
from sectl.engines import load_enhancer
model = load_enhancer(sys.argv[1])
start = time.perf_counter()
enhance_file(model, sys.argv[2], sys.argv[3], overwrite=True)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def model_path(args, tmp: Path) -> str:
    if args.model:
        return args.model
    from sectl.models import build_enhancer
    from sectl.models.io.checkpoint import save_checkpoint

    path = tmp / f"{args.size}.pt"
    save_checkpoint(path, build_enhancer(size=args.size))
    return str(path)


def rtf_10s(path: str, device: str = "cpu") -> float:
    """Best-of-5 real-time factor on 10 s in memory (1 CPU thread; on a GPU the result's copy back to
    the CPU ends each timing, so queued work is included)."""
    from sectl.enhance import enhance_tensor
    from sectl.engines import load_enhancer

    torch.set_num_threads(1)
    model = load_enhancer(path, device)
    x = 0.1 * torch.randn(1, 160_000)
    enhance_tensor(model, x, 16000)
    best = min(_timed(lambda: enhance_tensor(model, x, 16000)) for _ in range(5))
    return best / 10.0


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="run folder, checkpoint or 'default' (else a random --size model)")
    parser.add_argument("--size", default="small")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = model_path(args, tmp)
        print(f"model: {args.model or 'random ' + args.size}")
        print(f"real-time factor, 10 s input, 1 thread: {rtf_10s(path):.4f}")
        rng = np.random.default_rng(0)
        for minutes in (1, 10):
            src = tmp / f"in_{minutes}.wav"
            sf.write(src, (0.1 * rng.standard_normal(minutes * 60 * 16000)).astype(np.float32), 16000, subtype="PCM_16")
            out = subprocess.run([sys.executable, "-c", CHILD, path, str(src), str(tmp / "out.wav")], capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{minutes:2d}-minute file: {result['seconds']:.1f} s (RTF {result['seconds'] / (60 * minutes):.4f}), "
                  f"peak RSS {result['peak_rss_mb']:.0f} MiB")


if __name__ == "__main__":
    main()
