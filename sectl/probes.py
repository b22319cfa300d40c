"""Linear probes on frozen speech-VAE latents: what the latents make linearly available.

* :func:`teacher_r2`: ridge regression from each latent frame ``(64,)`` to the teacher's frame at the
  same time (teacher frames interpolated to the latent rate), fitted on some files and scored on the
  others: the fraction of the teacher features' variance the latents explain linearly (R^2, pooled
  over every teacher dimension). It measures how much of the *teacher's* representation survives in
  the latents, not phonetic content as such.
* :func:`speaker_accuracy`: a ridge-regression linear classifier (one-hot targets) on each
  utterance's mean latent, labels = the folder the file sits in, fitted on some utterances of every
  folder and scored on the others. With ``../shared/data/speech_ivr`` the folders are voice *and*
  language (en_US and es_MX are the same speaker), so it measures voice/language identity.

Both are closed-form (no optimiser, no randomness beyond the documented split: every ``holdout``-th
file, in sorted order, is held out).
"""

from __future__ import annotations

from pathlib import Path

import torch

from sectl.audio import find_audio_files, read_audio, resample
from sectl.codec import encode_tensor
from sectl.device import module_device
from sectl.errors import SectlError
from sectl.losses.distill import to_latent_rate
from sectl.models.teachers.ssl import SSL_RATE

RIDGE = 1e-3  # relative to the mean diagonal of X^T X


def ridge_fit(x: torch.Tensor, y: torch.Tensor, ridge: float = RIDGE) -> torch.Tensor:
    """Weights ``(D + 1, K)`` (bias last) minimising ``|[x 1] W - y|^2 + lambda |W|^2``, in float64."""
    x = torch.cat([x.double(), torch.ones(x.shape[0], 1, dtype=torch.float64)], dim=1)
    gram = x.T @ x
    penalty = ridge * gram.diagonal().mean() * torch.eye(gram.shape[0], dtype=torch.float64)
    return torch.linalg.solve(gram + penalty, x.T @ y.double())


def ridge_predict(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x.double(), torch.ones(x.shape[0], 1, dtype=torch.float64)], dim=1) @ weights


def split(items: list, holdout: int) -> tuple[list, list]:
    """Every ``holdout``-th item (from the first) is held out for scoring."""
    return [x for i, x in enumerate(items) if i % holdout], [x for i, x in enumerate(items) if i % holdout == 0]


def teacher_r2(vae, teacher, files: list[Path], holdout: int = 4, ridge: float = RIDGE) -> float:
    """Held-out R^2 of a ridge regression from latent frames to teacher frames (see module docstring)."""
    if len(files) < 2:
        raise SectlError("teacher probe: needs at least 2 files")
    pairs = []
    with torch.no_grad():
        for path in sorted(files):
            wave = read_audio(path, sample_rate=vae.sample_rate).samples[0]
            latents = encode_tensor(vae, wave).T  # (frames, C)
            on = module_device(teacher)  # teachers take 16 kHz, whatever the VAE's rate
            target = to_latent_rate(teacher(resample(wave, vae.sample_rate, SSL_RATE)[None].to(on)), latents.shape[0])[0].cpu()
            pairs.append((latents, target))
    fit, test = split(pairs, holdout)
    weights = ridge_fit(torch.cat([x for x, _ in fit]), torch.cat([y for _, y in fit]), ridge)
    x_test, y_test = torch.cat([x for x, _ in test]), torch.cat([y for _, y in test]).double()
    residual = (ridge_predict(weights, x_test) - y_test).pow(2).sum()
    return float(1 - residual / (y_test - y_test.mean(0)).pow(2).sum())


def speaker_accuracy(vae, folders: list[Path], holdout: int = 4, per_folder: int | None = 60) -> float:
    """Held-out accuracy of a linear classifier on mean latents, one class per folder."""
    if len(folders) < 2:
        raise SectlError("speaker probe: needs at least 2 folders (classes)")
    fit_x, fit_y, test_x, test_y = [], [], [], []
    with torch.no_grad():
        for label, folder in enumerate(folders):
            files = find_audio_files(folder)[:per_folder]
            if len(files) < 2:
                raise SectlError(f"speaker probe: {folder} needs at least 2 audio files")
            means = [encode_tensor(vae, read_audio(p, sample_rate=vae.sample_rate).samples[0]).mean(-1) for p in files]
            train, test = split(means, holdout)
            fit_x += train
            test_x += test
            fit_y += [label] * len(train)
            test_y += [label] * len(test)
    onehot = torch.nn.functional.one_hot(torch.tensor(fit_y), len(folders)).double()
    weights = ridge_fit(torch.stack(fit_x), onehot)
    predicted = ridge_predict(weights, torch.stack(test_x)).argmax(1)
    return float((predicted == torch.tensor(test_y)).double().mean())
