"""A causal Demucs with absolute levels (``causal=True, normalize=False``) hop by hop, equal to
:class:`sectl.models.Demucs` on the whole (validly padded) signal.

One step takes ``stride^depth`` samples; encoder level ``l`` then completes ``stride^(depth - l)``
frames from its ``kernel - stride`` buffered input frames, the bottleneck one frame, and each decoder
level overlap-adds its transposed convolution into a tail of ``kernel - stride`` positions, emitting
the positions no later frame reaches (the bias once per position, then the ReLU).

Frame grids: offline, level ``l``'s frame ``j`` reads level ``l - 1`` frames ``[j stride, j stride +
kernel)``; a stream's hops line up with every level's grid only if it starts ``lead_in`` samples
early, so that many zeros go in first. Frames at negative indices (reading those zeros) and frames
past the offline model's count (once the length is known) are left out of the recurrent state and the
decoder, as offline they do not exist. The decoder runs behind the encoder, so each skip connection
waits in a short queue until its decoder level reaches it.
"""

from __future__ import annotations

import torch
from torch import nn

from sectl.errors import ModelError
from sectl.models.enhancers.blocks import ConvBottleneck, LSTMBottleneck
from sectl.models.enhancers.demucs import Demucs
from sectl.streaming.frames import FrameStep, StreamLayout, keep_if, require_streamable


def _grid(depth: int, stride: int, kernel: int) -> tuple[list[int], list[int]]:
    """Index of the first frame each step-0 encoder level delivers (``o``, level 0 = the input), and of
    the first position each decoder level's input covers (``p``), such that all grids line up."""
    overlap = kernel // stride - 1  # frames of the previous level a frame shares with its neighbour
    lead = [0] * depth  # lead[l] = -o[l], for l < depth
    lead[depth - 1] = stride * -(-overlap // stride)
    for level in range(depth - 1, 0, -1):
        lead[level - 1] = stride * (lead[level] - overlap)
    encoder = [-m for m in lead] + [-(lead[depth - 1] // stride + overlap)]
    decoder = [0] * (depth + 1)
    decoder[depth] = encoder[depth]
    for level in range(depth - 1, -1, -1):
        decoder[level] = decoder[level + 1] * stride
    return encoder, decoder


class DemucsStep(FrameStep):
    multi_hop = False  # a hop is already stride^depth samples: each level's frames differ in count per call

    def __init__(self, model: Demucs) -> None:
        super().__init__()
        c = model.config
        require_streamable(model, "its bottleneck (a bidirectional LSTM or centred convolutions)")
        if c.kernel_size % c.stride or c.kernel_size < c.stride:
            raise ModelError(f"demucs: streaming needs kernel_size ({c.kernel_size}) to be a multiple of stride ({c.stride})")
        self.model = model
        self.depth, self.stride, self.kernel = c.depth, c.stride, c.kernel_size
        self.encoder_start, self.decoder_start = _grid(c.depth, c.stride, c.kernel_size)
        hop = c.stride**c.depth
        self.layout = StreamLayout(sample_rate=model.sample_rate, hop=hop, preroll=-self.decoder_start[0], end_pad=0,
                                   first_frame=0, lead_in=-self.encoder_start[0])  # fmt: skip
        self.channels = [1] + [level.down.out_channels for level in model.encoder]

    def new_frames(self, level: int) -> int:
        return self.stride ** (self.depth - level)

    def skip_delay(self, level: int) -> int:
        return self.encoder_start[level] - self.decoder_start[level]

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        overlap = self.kernel - self.stride
        shapes: dict[str, tuple[int, ...]] = {"frame": ()}
        for level in range(1, self.depth + 1):
            shapes[f"encoder{level}"] = (self.channels[level - 1], overlap)
            if self.skip_delay(level):
                shapes[f"skip{level}"] = (self.channels[level], self.skip_delay(level))
            shapes[f"decoder{level}"] = (self.channels[level - 1], overlap)
        bottleneck, width = self.model.bottleneck, self.channels[-1]
        if isinstance(bottleneck, LSTMBottleneck):
            shapes["lstm_h"] = shapes["lstm_c"] = (bottleneck.lstm.num_layers, width)
        else:
            for i, conv in enumerate(bottleneck.convs):
                shapes[f"bottleneck{i}"] = (width, conv.dilation[0] * (conv.kernel_size[0] - 1))
        return shapes

    def frame_counts(self, length: torch.Tensor) -> list[torch.Tensor]:
        """Frames per level of the offline model for ``length`` samples (padded to its valid length)."""
        c, n = self.model.config, length[0]
        for _ in range(c.depth):
            n = torch.clamp(-torch.div(-(n - c.kernel_size), c.stride, rounding_mode="floor") + 1, min=1)
        for _ in range(c.depth):
            n = (n - 1) * c.stride + c.kernel_size
        counts = [n]
        for _ in range(c.depth):
            counts.append(torch.div(counts[-1] - c.kernel_size, c.stride, rounding_mode="floor") + 1)
        return counts

    def valid(self, first: torch.Tensor, count: int, limit: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """``(count,)`` float: frames ``first ... first + count - 1`` exist offline (index >= 0, below ``limit``)."""
        index = first + torch.arange(count, device=first.device)
        return ((index >= 0) & (~known | (index < limit))).to(torch.float32)

    def forward(self, samples: torch.Tensor, length: torch.Tensor, frame: torch.Tensor,
                *state: torch.Tensor) -> tuple[torch.Tensor, ...]:  # fmt: skip
        named = dict(zip(self.state_names[1:], state))
        new: dict[str, torch.Tensor] = {}
        step, known = frame[0], length[0] >= 0
        counts = self.frame_counts(length)
        skips, x = [], samples.unsqueeze(1)
        for level, block in enumerate(self.model.encoder, start=1):
            window = torch.cat([named[f"encoder{level}"], x], dim=2)
            new[f"encoder{level}"] = window[:, :, window.shape[2] - (self.kernel - self.stride) :]
            x = block(window)
            skips.append(x)
        first = step * self.new_frames(self.depth) + self.encoder_start[self.depth]
        present = self.valid(first, 1, counts[self.depth], known)
        x = self._bottleneck(x, present, named, new)
        for level, block in zip(range(self.depth, 0, -1), self.model.decoder):
            skip = skips[level - 1]
            if self.skip_delay(level):
                queued = torch.cat([named[f"skip{level}"], skip], dim=2)
                skip, new[f"skip{level}"] = queued[:, :, : x.shape[2]], queued[:, :, x.shape[2] :]
            first = step * self.new_frames(level) + self.decoder_start[level]
            present = self.valid(first, x.shape[2], counts[level], known)
            x = self._decode(block, x + skip, present, named[f"decoder{level}"], level, new)
        return (x[:, 0], frame + 1, *(new[name] for name in self.state_names[1:]))

    def _bottleneck(self, x: torch.Tensor, present: torch.Tensor, named: dict, new: dict) -> torch.Tensor:
        bottleneck: nn.Module = self.model.bottleneck
        active = present[0] > 0
        if isinstance(bottleneck, LSTMBottleneck):
            hidden = (named["lstm_h"].transpose(0, 1).contiguous(), named["lstm_c"].transpose(0, 1).contiguous())
            y, (h, c) = bottleneck.lstm(x.transpose(1, 2), hidden)
            new["lstm_h"] = keep_if(active, h.transpose(0, 1), named["lstm_h"])
            new["lstm_c"] = keep_if(active, c.transpose(0, 1), named["lstm_c"])
            return y.transpose(1, 2)
        assert isinstance(bottleneck, ConvBottleneck)
        for i, conv in enumerate(bottleneck.convs):
            window = torch.cat([named[f"bottleneck{i}"], x * present], dim=2)  # offline: zeros before frame 0
            new[f"bottleneck{i}"] = keep_if(active, window[:, :, 1:], named[f"bottleneck{i}"])
            x = x + nn.functional.relu(conv(window))
        return x

    def _decode(self, block: nn.Module, x: torch.Tensor, present: torch.Tensor, tail: torch.Tensor, level: int,
                new: dict) -> torch.Tensor:  # fmt: skip
        """One decoder level: the positions its frames complete (frames that do not exist add nothing)."""
        up: nn.ConvTranspose1d = block.up
        z = nn.functional.glu(block.mix(x), dim=1) * present
        contribution = nn.functional.conv_transpose1d(z, up.weight, None, up.stride)
        done = x.shape[2] * self.stride
        acc = contribution + nn.functional.pad(tail, (0, contribution.shape[2] - tail.shape[2]))
        new[f"decoder{level}"] = acc[:, :, done:]
        y = acc[:, :, :done] + up.bias.view(1, -1, 1)
        return y if block.last else nn.functional.relu(y)
