"""Soft-DTW speed and memory: sectl (numba and torch backends) vs tslearn and pysdtw where installed.

Run: python benchmarks/softdtw.py [--threads 2]
Peers are benchmark-only extras (pip install -e ".[bench]"), never runtime dependencies.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from sectl.losses.softdtw import SoftDTW


def timed(fn, repeats: int = 5) -> tuple[float, torch.Tensor]:
    fn()  # warm-up (JIT compilation, caches)
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def make_step(loss, x, y):
    def step():
        xx = x.detach().requires_grad_()
        value = loss(xx, y)
        value.sum().backward()
        return value.detach()

    return step


def peers(gamma: float):
    found = {}
    try:
        from tslearn.metrics import SoftDTWLossPyTorch

        found["tslearn"] = SoftDTWLossPyTorch(gamma=gamma)
    except ImportError:
        print("tslearn: not installed (pip install tslearn)")
    try:
        import pysdtw

        found["pysdtw"] = pysdtw.SoftDTW(gamma=gamma, use_cuda=False)
    except ImportError:
        print("pysdtw: not installed (pip install pysdtw)")
    except Exception as exc:  # noqa: BLE001
        print(f"pysdtw: unusable here ({exc})")
    return found


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


CHILD = """
import json, sys, torch
from sectl.losses.softdtw import SoftDTW
def kib(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field))
backend, B, N, M, D, gamma = sys.argv[1], *map(int, sys.argv[2:6]), float(sys.argv[6])
torch.set_num_threads(2)
x, y = torch.randn(B, N, D, requires_grad=True), torch.randn(B, M, D)
SoftDTW(gamma=gamma, backend=backend)(x[:, :8], y[:, :8]).sum().backward()  # compile, warm up
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
before = kib("VmRSS")
SoftDTW(gamma=gamma, backend=backend)(x, y).sum().backward()
print(json.dumps((kib("VmHWM") - before) / 1024))
"""


def peak_rss_increase(backend: str, B: int, N: int, M: int, D: int, gamma: float) -> float:
    """Peak resident memory added by one forward+backward, measured in a fresh process (MiB)."""
    args = [sys.executable, "-c", CHILD, backend, str(B), str(N), str(M), str(D), str(gamma)]
    return float(json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout))


def compare(B: int, N: int, M: int, D: int, gamma: float, with_peers: bool) -> dict[str, dict]:
    """Per implementation: ``seconds`` (best forward+backward), and ``peak_mib`` (sectl's, fresh process)
    or ``rel_diff`` (a peer's largest relative difference from sectl[numba])."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(B, N, D, generator=g), torch.randn(B, M, D, generator=g)
    results: dict[str, dict] = {}
    values = {}
    for backend in ("numba", "torch"):
        loss = SoftDTW(gamma=gamma, backend=backend)
        seconds, values[backend] = timed(make_step(loss, x, y), repeats=5 if N <= 300 else 2)
        results[f"sectl[{backend}]"] = {"seconds": seconds, "peak_mib": peak_rss_increase(backend, B, N, M, D, gamma)}
    if with_peers:
        for name, loss in peers(gamma).items():
            seconds, value = timed(make_step(loss, x, y), repeats=3)
            rel = ((value - values["numba"]).abs() / values["numba"].abs()).max().item()
            results[name] = {"seconds": seconds, "rel_diff": rel}
    return results


def run(B: int, N: int, M: int, D: int, gamma: float, with_peers: bool) -> None:
    print(f"\nB={B} N={N} M={M} D={D} gamma={gamma} float32, forward+backward, best of 5")
    results = compare(B, N, M, D, gamma, with_peers)
    ours = results["sectl[numba]"]["seconds"]
    for name, r in results.items():
        if "peak_mib" in r:
            print(f"  {name:13s} {r['seconds'] * 1000:9.1f} ms   peak memory above the inputs {r['peak_mib']:7.1f} MiB")
        else:
            print(f"  {name:13s} {r['seconds'] * 1000:9.1f} ms   sectl[numba] is {r['seconds'] / ours:5.1f}x faster;"
                  f" max relative value difference {r['rel_diff']:.2e}")  # fmt: skip
    print(f"  process peak RSS so far: {peak_rss_mb():.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    print(f"threads: torch {torch.get_num_threads()}, numba {numba.get_num_threads()}")
    run(8, 200, 180, 256, 0.1, with_peers=True)
    run(8, 200, 200, 256, 0.1, with_peers=True)
    run(8, 1000, 1000, 256, 0.1, with_peers=False)


if __name__ == "__main__":
    main()
