"""Training: presets (config), the loss set, and the trainer."""

from sectl.train.config import resolve_config
from sectl.train.trainer import Trainer, resume, train

__all__ = ["Trainer", "resolve_config", "resume", "train"]
