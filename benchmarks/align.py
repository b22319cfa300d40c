"""`sectl align` on long recordings: peak memory, time and frames per pair.

Pairs are built from the real prompts in ``speech_ivr`` (files concatenated to the duration); B is A
played 4 % faster with noise added at 20 dB SNR, so the path must follow a stretch. Each alignment
runs in a fresh process, whose peak resident memory (VmHWM) is reported with its increase over the
process before aligning (the features, the path storage and the DP's rows).

Run: python benchmarks/align.py [--minutes 1 5 30] [--band 200] [--features mfcc]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf
import torch

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "speech_ivr"
RATE = 16000

CHILD = """
import json, sys, time, torch
torch.set_num_threads(1)
from sectl.align import align_files
def mib(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field)) / 1024
band = None if sys.argv[3] == "none" else int(sys.argv[3])
align_files(sys.argv[1], sys.argv[1], band=4)  # warm up: imports, compiled kernels
before = mib("VmRSS")
start = time.perf_counter()
result = align_files(sys.argv[1], sys.argv[2], features=sys.argv[4], band=band)
print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss_mb": mib("VmHWM"), "before_mb": before,
                  "frames": result.frames, "band": result.band, "band_chosen": result.band_chosen,
                  "slope": result.slope}))
"""


def concatenated(minutes: float) -> torch.Tensor:
    """Prompts of every voice in a fixed order, concatenated (and repeated if need be) to ``minutes``."""
    files = sorted(DATA.glob("*/*.flac"))
    if not files:
        sys.exit(f"no FLAC prompts under {DATA}")
    parts, total, needed = [], 0, int(minutes * 60 * RATE)
    while total < needed:
        for path in files:
            audio, rate = sf.read(path, dtype="float32")
            assert rate == RATE, path
            parts.append(torch.from_numpy(audio))
            total += len(audio)
            if total >= needed:
                break
    return torch.cat(parts)[:needed]


def write_pair(minutes: float, folder: Path) -> tuple[Path, Path]:
    from sectl.data.augment import speed_perturb

    a = concatenated(minutes)
    b = speed_perturb(a, 1.04, RATE)
    noise = torch.randn(b.shape, generator=torch.Generator().manual_seed(0))
    b = b + noise * b.pow(2).mean().sqrt() * 10 ** (-20 / 20)
    pa, pb = folder / f"a_{minutes:g}min.wav", folder / f"b_{minutes:g}min.wav"
    sf.write(pa, a.numpy(), RATE, subtype="FLOAT")
    sf.write(pb, b.numpy(), RATE, subtype="FLOAT")
    return pa, pb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 30])
    parser.add_argument("--band", default="none", help="--band in frames, or none (sectl chooses one for long pairs)")
    parser.add_argument("--features", default="mfcc")
    args = parser.parse_args()
    print(f"{'minutes':>7} {'frames':>15} {'band':>12} {'seconds':>8} {'peak RSS MiB':>12} {'increase MiB':>12} {'MiB/min':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            a, b = write_pair(minutes, Path(tmp))
            run = subprocess.run([sys.executable, "-c", CHILD, str(a), str(b), args.band, args.features],
                                 capture_output=True, text=True)  # fmt: skip
            if run.returncode != 0:
                print(f"{minutes:7g}  failed (exit {run.returncode}): {run.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(run.stdout)
            increase = r["peak_rss_mb"] - r["before_mb"]
            band = f"{r['band']}{' (auto)' if r['band_chosen'] else ''}" if r["band"] is not None else "none"
            print(f"{minutes:7g} {r['frames'][0]:>7} x {r['frames'][1]:<6} {band:>12} {r['seconds']:8.1f} "
                  f"{r['peak_rss_mb']:12.0f} {increase:12.0f} {increase / minutes:8.1f}   slope {r['slope']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
