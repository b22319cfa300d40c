"""Positional-exploitation diagnostic (arXiv 2601.21084, the library behind ``sectl align --diagnose-position``).

The claim under test: a frame-by-frame loss on SSL features (SSL-MSE) can be lowered through absolute
position rather than content, because both branches share the model's positional embedding. For one
recording we build copies whose *content* is unchanged but whose frames move (shifted by ``k`` frames,
zero-padded at the start, speed-perturbed) and one recording with *other* content at the *same*
positions, then score each against the original in the teacher's feature space with

* frame-wise MSE: ``mean_i ||f_i - f'_i||^2`` over the common frames (SSL-MSE), and
* the soft-DTW divergence on L2-normalised frames per frame (SSL-softDTW's loss), which aligns by content.

A position-exploiting comparison shows MSE growing with the shift (content the same, positions
apart) up to the level of a different recording, while the divergence of every same-content copy
stays below the different recording's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from sectl.align import ALIGN_RATE, FeatureFn, feature_extractor
from sectl.audio import read_audio
from sectl.data.augment import speed_perturb
from sectl.errors import SectlError
from sectl.losses.softdtw import soft_dtw_value
from sectl.plotting import pyplot, save_png

SHIFTS = (1, 2, 4, 8)  # frames
PADS = (0.02, 0.05)  # fraction of the length, zeros at the start (SSL-MSE-PAD's range)
SPEEDS = (0.9, 1.1)


@dataclass(frozen=True)
class PositionRow:
    case: str
    same_content: bool
    mse: float
    divergence: float


@dataclass
class PositionDiagnosis:
    """Rows for each copy of the recording; ``to_json`` is the ``--json`` schema."""

    recording: str
    other: str
    features: str
    hop_s: float
    rows: list[PositionRow]

    def to_json(self) -> dict:
        return {"recording": self.recording, "other": self.other, "features": self.features, "hop_s": self.hop_s,
                "rows": [asdict(r) for r in self.rows]}  # fmt: skip


def perturbed_copies(wave: torch.Tensor, hop: int) -> dict[str, torch.Tensor]:
    """Same content, moved: ``shift k`` (k frames later, same length), ``pad p%`` (zeros before), ``speed s``."""
    copies = {"identical": wave}
    for k in SHIFTS:
        copies[f"shift {k} frame{'s' * (k > 1)}"] = torch.nn.functional.pad(wave, (k * hop, 0))[: wave.shape[-1]]
    for fraction in PADS:
        frames = max(1, round(fraction * wave.shape[-1] / hop))
        copies[f"zero-pad {fraction:.0%} ({frames} frames)"] = torch.nn.functional.pad(wave, (frames * hop, 0))
    for speed in SPEEDS:
        copies[f"speed {speed:g}"] = speed_perturb(wave, speed, ALIGN_RATE)
    return copies


def compare(reference: torch.Tensor, copy: torch.Tensor, gamma: float = 0.1) -> tuple[float, float]:
    """Frame-wise MSE and per-frame soft-DTW divergence (L2-normalised frames) of two ``(frames, D)``."""
    n = min(len(reference), len(copy))
    mse = float((reference[:n] - copy[:n]).pow(2).sum(-1).mean())
    a, b = (torch.nn.functional.normalize(f.double(), dim=-1) for f in (reference, copy))
    divergence = soft_dtw_value(a, b, gamma, divergence=True) / len(reference)  # two rows of R, not N x M
    return mse, divergence


def diagnose_waves(wave: torch.Tensor, other: torch.Tensor, features: FeatureFn, hop_s: float) -> list[PositionRow]:
    """Rows for 16 kHz mono ``wave`` and a different recording ``other`` (cut or zero-padded to its length)."""
    hop = round(hop_s * ALIGN_RATE)
    other = torch.nn.functional.pad(other, (0, max(0, wave.shape[-1] - other.shape[-1])))[: wave.shape[-1]]
    with torch.no_grad():
        reference = features(wave)
        rows = [
            PositionRow(case, True, *compare(reference, features(copy)))
            for case, copy in perturbed_copies(wave, hop).items()
        ]
        rows.append(PositionRow("different recording, same positions", False, *compare(reference, features(other))))
    return rows


def diagnose_file(
    recording: str | Path, other: str | Path | None = None, features: str = "ssl", model: str | Path | None = None,
    device: str = "cpu",
) -> PositionDiagnosis:
    """Diagnose ``recording`` in a feature space (``ssl``, ``model`` or ``mfcc``, as ``sectl align``).

    Without ``other``, the different recording is the same file rotated by half its length: other
    content at every position, the same voice and level.
    """
    wave = read_audio(recording, sample_rate=ALIGN_RATE).samples[0]
    fn, hop_s = feature_extractor(features, model, device)
    if wave.shape[-1] < 20 * round(hop_s * ALIGN_RATE):
        raise SectlError(f"{recording}: too short for the diagnostic (needs at least 20 feature frames)")
    if other is None:
        different, other_name = torch.roll(wave, wave.shape[-1] // 2), f"{recording} rotated by half its length"
    else:
        different, other_name = read_audio(other, sample_rate=ALIGN_RATE).samples[0], str(other)
    label = features if model is None else f"{features} ({model})"
    return PositionDiagnosis(str(recording), other_name, label, hop_s, diagnose_waves(wave, different, fn, hop_s))


def plot_diagnosis(diagnosis: PositionDiagnosis, path: str | Path, overwrite: bool = False) -> None:
    """Frame-wise MSE and soft-DTW divergence per copy, side by side (the different recording in red)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True)
    cases = [r.case for r in diagnosis.rows]
    colours = ["tab:blue" if r.same_content else "tab:red" for r in diagnosis.rows]
    for ax, key, title in ((axes[0], "mse", "frame-wise MSE (SSL-MSE)"), (axes[1], "divergence", "soft-DTW divergence / frame")):
        ax.barh(cases, [getattr(r, key) for r in diagnosis.rows], color=colours)
        ax.set_title(title)
    axes[0].invert_yaxis()  # shared: the first copy on top in both panels
    fig.suptitle(f"{Path(diagnosis.recording).name}: same content moved (blue) vs other content (red), {diagnosis.features}")
    fig.tight_layout()
    save_png(fig, path, overwrite)
