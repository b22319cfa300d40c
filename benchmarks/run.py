"""Run every speed/memory benchmark and write one JSON file and one Markdown table.

Sections (each also runnable alone through its own script):

* ``enhance``  - the default model, disk to disk in a fresh process per file: seconds, real-time
  factor and peak resident memory for 10 s, 10 min and 60 min inputs (``enhance.py``);
* ``eval``     - files per second for ``sectl eval``'s default metrics on the vctk pairs, 1 and 2 jobs;
* ``train``    - milliseconds per training step for each enhancer preset (``train_step.py``) and
  each speech-VAE preset (``vae_step.py``);
* ``softdtw``  - sectl's soft-DTW (numba, torch) vs tslearn and pysdtw (``softdtw.py``);
* ``startup``  - command-line start-up (``startup.py``).

The quality experiments (``finetune_pretrained.py``, ``vae_compare.py``) train models for tens of
minutes and print their own tables; they are not part of this run.

Run:   python benchmarks/run.py [--quick] [--only enhance eval ...] [--out benchmarks/results]
Writes <out>/results.json (machine, settings, every row with the command and date that measured it) and
<out>/results.md (the table the README links); with ``--only``, the other sections' rows already in
results.json are kept, with their own commands and dates. ``--quick`` uses
short files and small models to check the pipeline in minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
REPO = HERE.parent
DATA = Path(os.environ.get("SECTL_TEST_DATA", REPO.parent / "shared" / "data"))
MODELS = Path(os.environ.get("SECTL_TEST_MODELS", REPO.parent / "shared" / "models"))

Row = dict  # {"section", "case", "metric", "value", "unit"}


def row(section: str, case: str, metric: str, value: float, unit: str) -> Row:
    return {"section": section, "case": case, "metric": metric, "value": float(value), "unit": unit}


def bench_enhance(quick: bool) -> list[Row]:
    import enhance as enhance_bench

    durations = [10, 60, 120] if quick else [10, 600, 3600]
    rows = [row("enhance", "default model, 10 s in memory, 1 thread", "RTF", enhance_bench.rtf_10s("default"), "")]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in durations:
            src = Path(tmp) / f"{seconds}s.wav"
            with sf.SoundFile(src, "w", 16000, 1, subtype="PCM_16") as f:
                for start in range(0, seconds, 60):
                    f.write((0.1 * rng.standard_normal(16000 * min(60, seconds - start))).astype(np.float32))
            out = subprocess.run([sys.executable, "-c", enhance_bench.CHILD, "default", str(src), str(Path(tmp) / "out.wav")],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            result = json.loads(out.stdout.strip().splitlines()[-1])
            case = f"default model, {_duration(seconds)} file, disk to disk, 1 thread"
            rows += [
                row("enhance", case, "RTF", result["seconds"] / seconds, ""),
                row("enhance", case, "peak RSS", result["peak_rss_mb"], "MiB"),
            ]
            src.unlink()
    return rows


def bench_eval(quick: bool) -> list[Row]:
    from sectl.metrics import DEFAULT_METRICS
    from sectl.metrics.evaluation import evaluate

    vctk = DATA / "vctk"
    copies = 1 if quick else 16  # enough files that worker start-up (~3 s each) does not dominate
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("noisy", "clean"):
            (Path(tmp) / kind).mkdir()
            for k in range(copies):
                for f in sorted((vctk / kind).glob("*.wav")):
                    (Path(tmp) / kind / f"{k}_{f.name}").symlink_to(f)
        files = len(list((Path(tmp) / "noisy").iterdir()))
        for jobs in (1, 2):
            start = time.perf_counter()
            evaluate(Path(tmp) / "noisy", ref=Path(tmp) / "clean", metrics=list(DEFAULT_METRICS), jobs=jobs,
                     dnsmos_dir=MODELS / "dnsmos")  # fmt: skip
            seconds = time.perf_counter() - start
            rows.append(row("eval", f"{files} vctk pairs, {', '.join(DEFAULT_METRICS)}, {jobs} job(s)", "throughput",
                            files / seconds, "files/s"))  # fmt: skip
    return rows


def bench_train(quick: bool) -> list[Row]:
    import train_step
    import vae_step

    size, vae_size = ("tiny", "tiny") if quick else ("small", "small")
    rows = []
    for preset, (ms, _) in train_step.measure(size=size, batch=8, seconds=2.0, repeats=2 if quick else 5).items():
        rows.append(row("train", f"{preset} (enhancer {size}, batch 8 x 2 s)", "step time", ms, "ms"))
    teacher = "tiny" if quick else "wavlm_large"
    layer = 2 if quick else 23
    for preset, ms in vae_step.measure(vae_size, teacher, layer, batch=4, seconds=1.0, repeats=1 if quick else 3).items():
        rows.append(row("train", f"{preset} (VAE {vae_size}, teacher {teacher}, batch 4 x 1 s)", "step time", ms, "ms"))
    return rows


def bench_softdtw(quick: bool) -> list[Row]:
    import softdtw

    rows = []
    shapes = [(8, 200, 180, 256, True)] if quick else [(8, 200, 180, 256, True), (8, 1000, 1000, 256, False)]
    for B, N, M, D, peers in shapes:
        for name, r in softdtw.compare(B, N, M, D, 0.1, peers).items():
            case = f"{name}, B={B} N={N} M={M} D={D}, forward+backward"
            rows.append(row("softdtw", case, "time", 1000 * r["seconds"], "ms"))
            if "peak_mib" in r:
                rows.append(row("softdtw", case, "peak memory above inputs", r["peak_mib"], "MiB"))
            else:
                rows.append(row("softdtw", case, "max relative difference from sectl", r["rel_diff"], ""))
    return rows


def bench_startup(quick: bool) -> list[Row]:
    import startup

    return [row("startup", name, "wall time", 1000 * s, "ms") for name, s in startup.measure(2 if quick else 5).items()]


SECTIONS: dict[str, Callable[[bool], list[Row]]] = {
    "enhance": bench_enhance,
    "eval": bench_eval,
    "train": bench_train,
    "softdtw": bench_softdtw,
    "startup": bench_startup,
}


def _duration(seconds: int) -> str:
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"


def machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
    }  # fmt: skip


def markdown(results: dict) -> str:
    m = results["machine"]
    commands = {}  # each section's command and date, as its rows record them
    for r in results["rows"]:
        commands.setdefault(r["section"], (r["command"], r["date"]))
    lines = [
        "# sectl benchmarks", "",
        f"On {m['cores']} CPU core(s), Python {m['python']}, torch {m['torch']}. Each row was measured by its "
        "section's command, on the date in its row:", "",
        *[f"- {section}: `{command}` ({date})" for section, (command, date) in commands.items()], "",
        "| section | case | metric | value | unit | measured |", "|---|---|---|---:|---|---|",
    ]  # fmt: skip
    for r in results["rows"]:
        value = f"{r['value']:.3g}" if abs(r["value"]) < 1 or r["value"] == 0 else f"{r['value']:,.1f}"
        lines.append(f"| {r['section']} | {r['case']} | {r['metric']} | {value} | {r['unit']} | {r['date']} |")
    for name, error in results["failed"].items():
        lines.append(f"\n**{name} failed:** {error}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short files, small models (minutes)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the in-process sections")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("SECTL_MODELS_DIR", str(MODELS))
    command = " ".join(["python benchmarks/run.py", *sys.argv[1:]])
    results = {"command": command, "machine": machine(), "rows": [], "failed": {}}
    for name in args.only:
        print(f"== {name}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            rows = SECTIONS[name](args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken section must not lose the others
            results["failed"][name] = f"{type(exc).__name__}: {exc}"
            print(f"   failed: {exc}", file=sys.stderr)
            continue
        results["rows"] += [{**r, "command": command, "date": time.strftime("%Y-%m-%d")} for r in rows]
        for r in rows:
            print(f"   {r['case']}: {r['metric']} {r['value']:.4g} {r['unit']}", file=sys.stderr)
        print(f"   ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    previous = args.out / "results.json"
    if previous.is_file() and set(args.only) != set(SECTIONS):  # keep the sections not run this time
        kept = [r for r in json.loads(previous.read_text())["rows"] if r["section"] not in args.only]
        results["rows"] = sorted(kept + results["rows"], key=lambda r: list(SECTIONS).index(r["section"]))
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(results))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
