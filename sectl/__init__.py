"""sectl: train, run and evaluate neural speech-enhancement and speech-representation models."""

__version__ = "0.1.0"
