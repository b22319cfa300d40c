"""Command-line start-up time: `sectl --help`, a subcommand's help, and an argument error (best of 5).

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
}


def main() -> None:
    exe = shutil.which("sectl") or "sectl"
    for name, args in CASES.items():
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([exe, *args], capture_output=True)
            best = min(best, time.perf_counter() - start)
        print(f"  {name:30s} {best * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
