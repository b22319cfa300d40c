"""The README's speech-VAE table: vanilla vs TAS vs JMAS trained alike, scored on the paper's axes.

Trains ``vae_vanilla``, ``vae_tas`` and ``vae_jmas`` (``--size``, ``--steps``) on the shared real speech
(``speech_ivr/`` + ``speech/``) with the same seed, data and schedule, then scores each run's EMA weights:

* reconstruction: round trip of the 6 ``vctk/clean`` files (never trained on): PESQ-WB, ESTOI, mel distance;
* understanding: linear probes on the frozen latents (``sectl/probes.py`` says what each measures):
  teacher-feature R^2 on ``vctk/clean`` + ``speech/`` (every 4th file held out) and voice/language
  accuracy on the ``speech_ivr`` folders (40 prompts each, every 4th held out);
* generation (a TTS model on the latents) is out of scope.

The teacher is ``--teacher`` (default ``deepfilternet3`` layer 7, its 512-d encoder embedding: the
pretrained speech model available offline here); the paper's is ``wavlm_large`` layer 23, which needs
``--set ssl.checkpoint=PATH`` offline. Runs are resumable; rerunning reuses finished ones.

Run: SECTL_MODELS_DIR=../shared/models python benchmarks/vae_compare.py --shared ../shared/data --steps 150
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sectl.codec import roundtrip_paths
from sectl.models import build_codec
from sectl.models.io.checkpoint import load_checkpoint
from sectl.models.io.loading import load_codec
from sectl.models.teachers import build_teacher
from sectl.probes import speaker_accuracy, teacher_r2
from sectl.train import resolve_config, train
from sectl.train.tasks import seeded

PRESETS = ["vae_vanilla", "vae_tas", "vae_jmas"]


def scores(vae, shared: Path, decoded: Path, teacher, probe_files: list[Path], voices: list[Path]) -> dict[str, float]:
    report = roundtrip_paths(vae, [shared / "vctk" / "clean"], decoded, ["pesq_wb", "estoi", "mel_distance"], overwrite=True)
    return {**report.scores, "teacher_r2": teacher_r2(vae, teacher, probe_files),
            "voice_accuracy": speaker_accuracy(vae, voices, per_folder=40)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/vae_compare"))
    parser.add_argument("--size", default="small")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--teacher", default="deepfilternet3")
    parser.add_argument("--layer", type=int, default=7)
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--set", nargs="*", default=[], help="extra key=value overrides for every run")
    args = parser.parse_args()
    s = args.shared
    overrides = [
        f"model.size={args.size}", f"ssl.model={args.teacher}", f"ssl.layer={args.layer}",
        f"data.clean=[{s / 'speech_ivr'}, {s / 'speech'}]", f"train.steps={args.steps}", f"train.batch_size={args.batch}",
        f"train.threads={args.threads}", "train.checkpoint_every=25", "validation.every=100000", *args.set,
    ]  # fmt: skip
    teacher = build_teacher(args.teacher, args.layer).eval()
    probe_files = sorted((s / "vctk" / "clean").glob("*.wav")) + sorted((s / "speech").glob("*.wav"))
    voices = sorted(p for p in (s / "speech_ivr").iterdir() if p.is_dir())
    rows = [{"preset": "untrained (the shared seed-0 initialisation)", "steps": 0, "wall_s": 0.0,
             **scores(seeded(resolve_config(PRESETS[0], overrides), lambda: build_codec("speech_vae", args.size)).eval(),
                      s, args.out / "decoded" / "untrained", teacher, probe_files, voices)}]  # fmt: skip
    for preset in args.presets:
        run = args.out / preset
        last = run / "checkpoints" / "last.pt"
        timing = run / "wall_time.json"
        spent = json.loads(timing.read_text())["seconds"] if timing.is_file() else 0.0
        if not last.is_file() or load_checkpoint(last)["step"] < args.steps:
            start = time.perf_counter()
            train(resolve_config(preset, overrides), run, resume=last.is_file(), preset=preset, overrides=overrides)
            spent += time.perf_counter() - start
            timing.write_text(json.dumps({"seconds": spent}))
        rows.append({"preset": preset, "steps": args.steps, "wall_s": spent,
                     **scores(load_codec(last), s, args.out / "decoded" / preset, teacher, probe_files, voices)})  # fmt: skip
        (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    crop = resolve_config(PRESETS[0], overrides)["data"]["segment_s"]
    print(f"VAE {args.size}, {args.steps} steps (VAE and discriminator updates alternate) x batch {args.batch} x "
          f"{crop} s crops; teacher {args.teacher} layer {args.layer}")  # fmt: skip
    print("| preset | steps | wall time | PESQ-WB | ESTOI | mel distance | teacher R^2 | voice accuracy |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['steps']} | {r['wall_s'] / 60:.1f} min | {r['pesq_wb']:.3f} | {r['estoi']:.3f} | "
              f"{r['mel_distance']:.3f} | {r['teacher_r2']:.3f} | {r['voice_accuracy']:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
