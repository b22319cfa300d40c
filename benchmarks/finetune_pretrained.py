"""The README's fine-tuning table: pretrained enhancers as published vs fine-tuned with each loss.

For each model (DeepFilterNet3, NSNet2 by default; ``--models gtcrn-dns3`` or any pretrained name) and
each preset (``finetune`` = the baseline losses, ``mal``, ``mal_frozen_fe``, ``mal_dynamic``), trains ``--steps`` steps from the published weights on the shared
real speech (``speech_ivr/`` + ``speech/``) mixed with the shared noises and room responses, then
scores the *last* checkpoint on the vctk pairs (never trained on; the checkpoints are not selected on
them either, so the table has no selection bias). Runs are resumable: rerunning the command continues
unfinished runs and reuses finished ones.

Run (CPU, one thread per run, about 40 minutes for the defaults):

    python benchmarks/finetune_pretrained.py --shared ../shared/data --out runs/finetune --steps 150

``--train-only`` trains (or resumes) and stops, so runs can train in parallel processes; one later
invocation without it scores them all (``examples/finetune_gtcrn.sh`` does this for GTCRN with ``mal``
and ``ssl_softdtw``).

An SSL-feature-loss row needs WavLM/HuBERT weights (``ssl.checkpoint``); with none on the machine it is
left out (``--presets ... wavlm_loss --set ssl.checkpoint=PATH`` adds it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sectl.enhance import enhance_paths
from sectl.metrics import evaluate
from sectl.models.io.checkpoint import load_checkpoint
from sectl.engines import load_enhancer
from sectl.train import resolve_config, train

METRICS = ["pesq_wb", "estoi", "si_sdr", "dnsmos_ovrl"]


def run_overrides(args: argparse.Namespace, model: str) -> list[str]:
    shared = args.shared
    return [
        f"init_from={model}",
        f"data.clean=[{shared / 'speech_ivr'}, {shared / 'speech'}]",
        f"data.noise={shared / 'noise'}",
        f"data.rir={shared / 'rir'}",
        f"validation.noisy={shared / 'vctk' / 'noisy'}",
        f"validation.clean={shared / 'vctk' / 'clean'}",
        f"train.steps={args.steps}",
        f"train.threads={args.threads}",
        *args.set,
    ]


def fine_tune(args: argparse.Namespace, model: str, preset: str) -> tuple[Path, float]:
    """Train (or resume, or reuse) one run; returns its folder and the training wall time in seconds."""
    out = args.out / f"{model}-{preset}"
    overrides = run_overrides(args, model)
    if preset == "mal_frozen_fe" and model == "nsnet2":
        overrides.append("mal.frozen_levels=1")  # NSNet2 has two learned encoder levels (fc_in, gru): freeze fc_in
    config = resolve_config(preset, overrides)
    last = out / "checkpoints" / "last.pt"
    timing = out / "wall_time.json"
    spent = json.loads(timing.read_text())["seconds"] if timing.is_file() else 0.0
    if not last.is_file() or load_checkpoint(last)["step"] < args.steps:
        start = time.perf_counter()
        train(config, out, resume=last.is_file(), preset=preset, overrides=overrides)
        spent += time.perf_counter() - start
        timing.write_text(json.dumps({"seconds": spent}))
    return out, spent


def score(model, vctk: Path, out: Path) -> dict[str, float]:
    enhance_paths([vctk / "noisy"], out, model=model, overwrite=True)
    return evaluate(out, ref=vctk / "clean", metrics=METRICS).mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/finetune"))
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=["deepfilternet3", "nsnet2"])
    parser.add_argument("--presets", nargs="+", default=["finetune", "mal", "mal_frozen_fe", "mal_dynamic"])
    parser.add_argument("--set", nargs="*", default=[], help="extra key=value overrides for every run")
    parser.add_argument("--train-only", action="store_true",
                        help="train (or resume) the runs and stop: no scoring, so several invocations can train in parallel "
                             "and one later invocation without the flag scores them all")  # fmt: skip
    args = parser.parse_args()
    vctk = args.shared / "vctk"
    if args.train_only:
        for model in args.models:
            for preset in args.presets:
                run, seconds = fine_tune(args, model, preset)
                print(f"{run}: {args.steps} steps, {seconds / 60:.1f} min")
        return
    rows = []
    for model in args.models:
        rows.append({"model": model, "training": "as published", "steps": 0, "wall_s": 0.0,
                     **score(load_enhancer(model), vctk, args.out / "enhanced" / model)})  # fmt: skip
        for preset in args.presets:
            run, seconds = fine_tune(args, model, preset)
            tuned = load_enhancer(run / "checkpoints" / "last.pt")
            rows.append({"model": model, "training": preset, "steps": args.steps, "wall_s": seconds,
                         **score(tuned, vctk, args.out / "enhanced" / f"{model}-{preset}")})  # fmt: skip
            (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    noisy = evaluate(vctk / "noisy", ref=vctk / "clean", metrics=METRICS).mean
    print("| model | training | steps | wall time | PESQ-WB | ESTOI | SI-SDR | DNSMOS OVRL |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| noisy input | - | - | - | {noisy['pesq_wb']:.3f} | {noisy['estoi']:.3f} | {noisy['si_sdr']:.2f} dB | {noisy['dnsmos_ovrl']:.3f} |")
    for r in rows:
        wall = f"{r['wall_s'] / 60:.1f} min" if r["steps"] else "-"
        print(f"| {r['model']} | {r['training']} | {r['steps'] or '-'} | {wall} | {r['pesq_wb']:.3f} | {r['estoi']:.3f} "
              f"| {r['si_sdr']:.2f} dB | {r['dnsmos_ovrl']:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
