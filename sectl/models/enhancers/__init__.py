"""Enhancers: waveform-to-waveform models with explicit ``encode``/``decode`` stages, and their signal
building blocks (STFT framing, ERB bands, U-Net levels)."""
