"""Command-line start-up time: `sectl --help`, a subcommand's help, and argument errors (best of 5).
Argument errors answer before torch is imported (tests/cli/test_argument_errors_answer_at_once.py).

Run: python benchmarks/startup.py
"""

from __future__ import annotations

import shutil
import subprocess
import time

CASES = {
    "sectl --help": ["--help"],
    "sectl eval --help": ["eval", "--help"],
    "sectl enhance (missing -o)": ["enhance", "x.wav"],
    "sectl eval --bogus": ["eval", "--bogus"],
    "sectl enhance --engine foo": ["enhance", "x.wav", "-o", "y.wav", "--engine", "foo"],
    "sectl eval --shard 0/4": ["eval", "--est", "x.wav", "--shard", "0/4"],
    "sectl enhance --device tpu": ["enhance", "x.wav", "-o", "y.wav", "--device", "tpu"],
    "sectl eval -m bogus": ["eval", "--est", "x.wav", "-m", "bogus"],
    "sectl train --device tpu": ["train", "-o", "run", "--device", "tpu"],
}


def measure(repeats: int = 5) -> dict[str, float]:
    """Best wall-clock seconds per case."""
    exe = shutil.which("sectl") or "sectl"
    results = {}
    for name, args in CASES.items():
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([exe, *args], capture_output=True)
            best = min(best, time.perf_counter() - start)
        results[name] = best
    return results


def main() -> None:
    for name, seconds in measure().items():
        print(f"  {name:30s} {seconds * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
