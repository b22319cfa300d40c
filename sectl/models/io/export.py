"""``sectl export``: a model as ONNX (:mod:`sectl.onnx`) or a run as a small inference-only checkpoint.

    sectl export RUN_DIR -o OUT.pt        (python -m sectl.models.io.export RUN_DIR OUT.pt)

The output keeps the plain-data checkpoint format (architecture name, constructor arguments, weights)
plus provenance: the run's config, preset, step, validation score and git commit. Weights are stored
as float16 (half the size; loading copies them into the float32 model, and the scores do not move
beyond the third decimal — see the test of the bundled model).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sectl.errors import UsageError
from sectl.models.io.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from sectl.models.io.loading import resolve_model_path
from sectl.models.io.pretrained import PRETRAINED
from sectl.provenance import git_commit


def export(run: str | Path, out: str | Path) -> dict:
    """Write the inference-only checkpoint and return its provenance record."""
    if str(run) in PRETRAINED and not Path(run).exists():
        raise UsageError(f"{run}: a pretrained model loads from its published files and has no sectl run to export as "
                         f"NAME.pt; export it as ONNX (-o NAME.onnx), or name a run folder or checkpoint")  # fmt: skip
    path = resolve_model_path(run)
    payload = load_checkpoint(path)
    model = model_from_checkpoint(payload)  # an enhancer or a speech VAE: both load from the same format
    run_dir = Path(run) if Path(run).is_dir() else path.parent.parent
    run_info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    provenance = {
        "source": str(path),
        "step": payload.get("step"),
        "validation_score": payload.get("best_score"),
        "preset": run_info.get("preset"),
        "training_commit": run_info.get("commit"),
        "overrides": run_info.get("overrides"),
        "export_commit": git_commit(),
    }
    save_checkpoint(out, model.half(), config=payload.get("config"), provenance=provenance)
    return provenance


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m sectl.models.io.export RUN_DIR|CHECKPOINT OUT.pt")
    print(json.dumps(export(sys.argv[1], sys.argv[2]), indent=2))
