"""TensorBoard logging beside ``metrics.jsonl`` (``train.tensorboard: true``), as DAC does.

``metrics.jsonl`` stays the record (it is what ``--resume`` trims and what scripts read); TensorBoard
is a view of it: every logged scalar (loss terms, learning rate, speed, validation scores) and, at
each validation, a few enhanced examples to listen to. TensorBoard is an optional install
(``pip install tensorboard``); asking for it without it is a configuration error, not a silent no-op.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sectl.audio import read_audio
from sectl.errors import ConfigError

AUDIO_EXAMPLES = 3


class TensorBoard:
    def __init__(self, folder: Path, sample_rate: int) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("train.tensorboard: TensorBoard is not installed (pip install tensorboard)") from None
        self.writer = SummaryWriter(str(folder))
        self.sample_rate = sample_rate

    def scalars(self, record: dict) -> None:
        """One log record: training terms under ``train/``, validation scores under ``validation/``."""
        step = record["step"]
        for name, value in record.get("validation", {}).items():
            if value is not None:
                self.writer.add_scalar(f"validation/{name}", value, step)
        for name, value in record.items():
            if name not in ("step", "validation", "best") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"train/{name}", value, step)
        self.writer.flush()

    @torch.no_grad()
    def audio_examples(self, model: torch.nn.Module, pairs: list, step: int) -> None:
        """The first few validation inputs through ``model``, at the model's rate."""
        from sectl.enhance import enhance_tensor

        was_training = model.training
        model.eval()
        for name, input_path, _ in pairs[:AUDIO_EXAMPLES]:
            wave = read_audio(input_path, sample_rate=self.sample_rate).samples[:1]
            output = enhance_tensor(model, wave, self.sample_rate)[0]
            self.writer.add_audio(f"examples/{name}", output.clamp(-1, 1)[None], step, sample_rate=self.sample_rate)
        model.train(was_training)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
