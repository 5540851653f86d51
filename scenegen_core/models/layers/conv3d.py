"""Dense 3D conv building blocks of TRELLIS's sparse-structure VAE (encoder and decoder).

State-dict names follow TRELLIS ``sparse_structure_vae.py``: ``norm1 / conv1 / norm2 / conv2`` in a
residual block, ``conv`` in the resampling blocks. All tensors are [B, C, X, Y, Z].
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from scenegen_core.models.layers.embeddings import pixel_shuffle_3d
from scenegen_core.models.layers.norm import ChannelLayerNorm32, GroupNorm32

NORM_TYPES = ("layer", "group")


def norm_3d(norm_type: str, channels: int) -> nn.Module:
    """"layer": LayerNorm over channels at every voxel; "group": GroupNorm with 32 groups."""
    if norm_type not in NORM_TYPES:
        raise ValueError(f"norm_type must be one of {NORM_TYPES}, got {norm_type!r}")
    return ChannelLayerNorm32(channels) if norm_type == "layer" else GroupNorm32(32, channels)


class ResBlock3d(nn.Module):
    """Pre-norm residual block: x + conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))), [B, C, X, Y, Z]."""

    def __init__(self, channels: int, norm_type: str):
        super().__init__()
        self.norm1 = norm_3d(norm_type, channels)
        self.norm2 = norm_3d(norm_type, channels)
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + x


class UpsampleBlock3d(nn.Module):
    """conv3x3x3 to 8*out channels, then 3D pixel shuffle: [B, Cin, X, Y, Z] -> [B, Cout, 2X, 2Y, 2Z]."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels * 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle_3d(self.conv(x), 2)


class DownsampleBlock3d(nn.Module):
    """Strided conv 2x2x2 / 2 ("conv" mode of TRELLIS): [B, Cin, X, Y, Z] -> [B, Cout, X/2, Y/2, Z/2]."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)
