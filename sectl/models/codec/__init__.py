"""The speech VAE (JMAS-VAE) with its discriminators and activations."""
