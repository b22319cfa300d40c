"""DNSMOS throughput: files per second on the vctk noisy set and windows per second on a long file.

Run: SECTL_DNSMOS_DIR=../shared/models/dnsmos python benchmarks/dnsmos.py [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from sectl.metrics import dnsmos


def kib(field: str) -> int:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/vctk/noisy"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    files = sorted(args.data.glob("*.wav"))
    audio = [sf.read(f)[0] for f in files]
    dnsmos.score_signal(audio[0])  # load the sessions
    start = time.perf_counter()
    for a in audio:
        dnsmos.score_signal(a)
    seconds = time.perf_counter() - start
    print(f"{len(files)} files ({sum(len(a) for a in audio) / 16000:.1f} s of audio): {len(files) / seconds:.2f} files/s, {args.threads} thread(s)")
    speech = np.concatenate(audio)
    for minutes in (1, 10):
        signal = np.tile(speech, int(np.ceil(minutes * 60 * 16000 / len(speech))))[: minutes * 60 * 16000]
        open("/proc/self/clear_refs", "w").write("5")  # reset the peak-RSS counter (Linux)
        before = kib("VmRSS")
        start = time.perf_counter()
        dnsmos.score_signal(signal)
        seconds = time.perf_counter() - start
        count = len(dnsmos.windows(signal))
        print(f"{minutes:2d}-minute file: {count} windows in {seconds:.1f} s ({count / seconds:.1f} windows/s), "
              f"peak memory above the input {(kib('VmHWM') - before) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
