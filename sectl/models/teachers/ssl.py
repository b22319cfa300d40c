"""Frozen self-supervised speech models (WavLM, wav2vec 2.0, HuBERT) used as teachers and feature spaces.

Weights come from a local checkpoint (``ssl.checkpoint: PATH``), else torchaudio's weights file copied
into ``$SECTL_MODELS_DIR/<name>/`` (the lookup every model shares), else the torchaudio pipeline
(downloaded once into torch's hub cache); offline machines use the first two. ``"tiny"`` builds a
small randomly initialised WavLM of the same architecture (seeded, so runs are reproducible): it
exercises every code path in tests without any download.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Callable

import torch
import torchaudio
from torch import nn
from torchaudio.models.wav2vec2.wavlm_attention import WavLMSelfAttention

from sectl.device import module_device, resolve_device
from sectl.errors import ConfigError, ModelError, first_line
from sectl.modelfiles import refuse_onnx_graph, search_folders
from sectl.models.base import frozen_mode

SSL_RATE = 16000
SSL_HOP = 320  # every torchaudio SSL front end downsamples by 320: 20 ms frames

_FACTORIES: dict[str, tuple[Callable[[], nn.Module], str]] = {
    "wavlm_base": (torchaudio.models.wavlm_base, "WAVLM_BASE"),
    "wavlm_base_plus": (torchaudio.models.wavlm_base, "WAVLM_BASE_PLUS"),
    "wavlm_large": (torchaudio.models.wavlm_large, "WAVLM_LARGE"),
    "wav2vec2_base": (torchaudio.models.wav2vec2_base, "WAV2VEC2_BASE"),
    "hubert_base": (torchaudio.models.hubert_base, "HUBERT_BASE"),
}
SSL_MODELS = ("tiny", *_FACTORIES)
NORMALISED_INPUT = {"wavlm_large"}
"""Models trained on waveforms normalised to zero mean and unit variance per utterance (fairseq's
``normalize: true``). torchaudio's pipeline wraps them in a module that hides ``.encoder`` and
normalises over the whole batch tensor at once; a local checkpoint skips the normalisation. sectl
uses the bare model and normalises each utterance itself, whichever way the weights came."""


def tiny_wavlm(seed: int = 0) -> nn.Module:
    """A 2-layer, 64-dim WavLM with the real front end's strides (hop 320), randomly initialised."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torchaudio.models.wavlm_model(
            extractor_mode="group_norm",
            extractor_conv_layer_config=[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2,
            extractor_conv_bias=False,
            encoder_embed_dim=64,
            encoder_projection_dropout=0.0,
            encoder_pos_conv_kernel=16,
            encoder_pos_conv_groups=4,
            encoder_num_layers=2,
            encoder_num_heads=4,
            encoder_num_buckets=32,
            encoder_max_distance=128,
            encoder_attention_dropout=0.0,
            encoder_ff_interm_features=128,
            encoder_ff_interm_dropout=0.0,
            encoder_dropout=0.0,
            encoder_layer_norm_first=False,
            encoder_layer_drop=0.0,
            aux_num_out=None,
        )


def _load_state(path: Path) -> dict:
    refuse_onnx_graph(path, "SSL features", "an SSL state dict (.pt) or an SSL model name")
    if not path.is_file():
        raise ModelError(f"{path}: SSL checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise ModelError(f"{path}: not a readable torch checkpoint ({exc})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def _weights_file(name: str) -> str:
    """The file torchaudio downloads for ``name`` (what its hub cache holds)."""
    return getattr(torchaudio.pipelines, _FACTORIES[name][1])._path


def copied_weights(name: str) -> Path | None:
    """torchaudio's weights of ``name`` copied into ``$SECTL_MODELS_DIR/<name>/`` (the lookup every model
    shares, :mod:`sectl.modelfiles`), or ``None``: an offline machine needs no download then."""
    found = [folder / _weights_file(name) for folder in search_folders(name)]
    return next((path for path in found if path.is_file()), None)


def build_ssl_model(name: str = "wavlm_base", checkpoint: str | Path | None = None) -> nn.Module:
    """A frozen SSL model in eval mode. ``checkpoint`` holds a state dict of the same architecture."""
    if name == "tiny":
        model = tiny_wavlm()
        if checkpoint is not None:
            model.load_state_dict(_load_state(Path(checkpoint)))
    elif name in _FACTORIES:
        factory, bundle_name = _FACTORIES[name]
        checkpoint = checkpoint if checkpoint is not None else copied_weights(name)
        if checkpoint is not None:
            model = factory()
            try:
                model.load_state_dict(_load_state(Path(checkpoint)))
            except RuntimeError as exc:
                raise ModelError(f"{checkpoint}: weights do not fit {name} ({first_line(exc)})") from None
        else:
            try:
                with contextlib.redirect_stdout(sys.stderr):  # download messages must not break --json on stdout
                    model = getattr(torchaudio.pipelines, bundle_name).get_model()
                model = getattr(model, "model", model)  # unwrap the input-normalising wrapper (see NORMALISED_INPUT)
            except Exception as exc:  # noqa: BLE001 - offline machines fail in many ways
                raise ModelError(
                    f"could not fetch {name} weights ({type(exc).__name__}); offline, pass a local state dict with "
                    f"ssl.checkpoint=PATH (or --model PATH), or copy torchaudio's {_weights_file(name)} into $SECTL_MODELS_DIR/{name}/"
                ) from None
    else:
        raise ConfigError(f"ssl.model: unknown SSL model {name!r}; known: {', '.join(SSL_MODELS)}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    for module in model.modules():
        if type(module) is WavLMSelfAttention:
            module.__class__ = DeviceBiasWavLMAttention
    return model


class DeviceBiasWavLMAttention(WavLMSelfAttention):
    """torchaudio's WavLM attention with the relative position buckets computed on the embedding's
    device and kept per length pair. torchaudio builds them on the CPU and copies them to the GPU on
    every forward: a host-to-device copy, and so a wait, in every training step."""

    def compute_bias(self, query_length: int, key_length: int) -> torch.Tensor:
        device = self.rel_attn_embed.weight.device
        cache = self.__dict__.setdefault("_buckets", {})
        key = (query_length, key_length, device)
        if key not in cache:
            if len(cache) >= 8:  # training crops have one length; validation files many
                cache.pop(next(iter(cache)))
            offsets = torch.arange(key_length, device=device)[None, :] - torch.arange(query_length, device=device)[:, None]
            cache[key] = self._relative_positions_bucket(offsets, bidirectional=True)
        return self.rel_attn_embed(cache[key]).permute(2, 0, 1)


class FrozenTeacher(nn.Module):
    """A module whose ``model`` stays in eval mode whatever ``train()`` says: a teacher's dropout must stay off.

    ``hop`` is the number of 16 kHz input samples per output frame (what frame-exact padding needs).
    ``forward(wave, lengths=None)`` takes a zero-padded batch with each row's length in samples (a
    device tensor), so per-sample references of different lengths go through in one call;
    ``frames(samples)`` is the number of output frames of a row of that length, known on the host.
    """

    model: nn.Module
    hop: int = SSL_HOP

    def train(self, mode: bool = True) -> "FrozenTeacher":
        super().train(mode)
        frozen_mode(self.model)
        return self

    def frames(self, samples: int) -> int:
        """Output frames for ``samples`` input samples (measured once per length on a silent input)."""
        cache = self.__dict__.setdefault("_frames", {})
        if samples not in cache:
            with torch.no_grad():
                cache[samples] = int(self(torch.zeros(1, samples, device=module_device(self))).shape[1])
        return cache[samples]


class SSLFeatures(FrozenTeacher):
    """Output of transformer layer ``layer`` (1-based) of a frozen SSL model: ``(B, frames, D)``.

    ``train()`` never switches the teacher out of eval mode: its dropout must stay off.
    """

    def __init__(self, model: str = "wavlm_base", layer: int = 6, checkpoint: str | Path | None = None) -> None:
        super().__init__()
        self.model = build_ssl_model(model, checkpoint)
        self.normalise_input = model in NORMALISED_INPUT
        num_layers = len(self.model.encoder.transformer.layers)
        if not 1 <= layer <= num_layers:
            raise ConfigError(f"ssl.layer {layer} out of range 1..{num_layers} for {model}")
        self.layer = layer

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Features ``(B, frames, D)``; with ``lengths`` the padding is masked out of the attention (and
        of the input normalisation), so a row's valid frames do not depend on the rows beside it (exact
        for layer-norm front ends such as WavLM Large; a group-norm front end, as in the Base models,
        normalises its first layer over the padded length too)."""
        if wave.dim() == 3:
            wave = wave[:, 0]
        if self.normalise_input:
            wave = normalise_utterances(wave, lengths)
        if lengths is None:
            features, _ = self.model.extract_features(wave, num_layers=self.layer)
            return features[-1]
        return self._masked_features(wave, lengths)

    def _masked_features(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """torchaudio's ``extract_features(wave, lengths)`` with padding handled for every encoder: WavLM's
        attention takes a key-padding mask (torchaudio passes it an attention mask it refuses), and the
        padded frames are zeroed with ``masked_fill`` (boolean indexing would wait on the device)."""
        x, frame_lengths = self.model.feature_extractor(wave, lengths)
        encoder = self.model.encoder
        x = encoder.feature_projection(x)
        padding = torch.arange(x.shape[1], device=x.device)[None] >= frame_lengths[:, None]  # (B, frames)
        x = x.masked_fill(padding[..., None], 0.0)
        key_bias = -10000.0 * padding.to(x.dtype)  # added to the attention logits of padded keys
        additive = key_bias[:, None, None, :].expand(-1, 1, x.shape[1], -1)
        transformer = encoder.transformer
        x = transformer._preprocess(x)
        position_bias = None
        for layer in transformer.layers[: self.layer]:
            wavlm = isinstance(layer.attention, WavLMSelfAttention)
            x, position_bias = layer(x, None if wavlm else additive, position_bias=position_bias, key_padding_mask=key_bias)
        return x

    def frames(self, samples: int) -> int:
        for conv in self.model.feature_extractor.conv_layers:
            samples = max(0, (samples - conv.kernel_size) // conv.stride + 1)
        return samples


def normalise_utterances(wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Zero mean, unit variance per row over its first ``lengths`` samples (padding stays zero)."""
    if lengths is None:
        return nn.functional.layer_norm(wave, wave.shape[-1:])
    valid = torch.arange(wave.shape[-1], device=wave.device)[None] < lengths[:, None]
    count = lengths[:, None].to(wave.dtype)
    mean = (wave * valid).sum(-1, keepdim=True) / count
    var = ((wave - mean).pow(2) * valid).sum(-1, keepdim=True) / count
    return (wave - mean) * torch.rsqrt(var + 1e-5) * valid


def ssl_feature_extractor(model: str | Path | None = None, layer: int = 6, device: str = "cpu"):
    """Feature function for ``sectl align --features ssl``: ``model`` is ``tiny``, a name or a checkpoint;
    it computes on ``device`` and returns CPU frames."""
    if model is None:
        extractor = SSLFeatures("wavlm_base", layer)
    elif str(model) in SSL_MODELS:
        extractor = SSLFeatures(str(model), min(layer, 2) if str(model) == "tiny" else layer)
    else:
        extractor = SSLFeatures("wavlm_base", layer, checkpoint=model)

    on = resolve_device(device)
    extractor.to(on)

    def features(wave: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return extractor(wave[None].to(on))[0].cpu()

    return features, SSL_HOP / SSL_RATE
