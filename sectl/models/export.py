"""Package a run's best checkpoint as a small inference-only file (no optimizer state).

    python -m sectl.models.export RUN_DIR OUT.pt

The output keeps the plain-data checkpoint format (architecture name, constructor arguments, weights)
plus provenance: the run's config, preset, step, validation score and git commit. Weights are stored
as float16 (half the size; loading copies them into the float32 model, and the scores do not move
beyond the third decimal — see the test of the bundled model).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sectl.models.checkpoint import enhancer_from_checkpoint, load_checkpoint, save_checkpoint
from sectl.models.loading import resolve_model_path


def git_commit() -> str | None:
    """The commit of the sectl source tree in use (None outside a git checkout)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def export(run: str | Path, out: str | Path) -> dict:
    """Write the inference-only checkpoint and return its provenance record."""
    path = resolve_model_path(run)
    payload = load_checkpoint(path)
    model = enhancer_from_checkpoint(payload)
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
        sys.exit("usage: python -m sectl.models.export RUN_DIR|CHECKPOINT OUT.pt")
    print(json.dumps(export(sys.argv[1], sys.argv[2]), indent=2))
