"""Normalisation layers that always compute in float32 and hand back the input dtype.

The official models keep every norm's affine parameters in fp32 even in "fp16" mode and run the
statistics in fp32; reproducing that is what keeps fp16 activations from overflowing.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm32(nn.LayerNorm):
    """LayerNorm over the last dim, computed in float32, result cast back to the input dtype.

    Input/output: [..., C] any float dtype. Parameters (when affine): [C] float32.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


class ChannelLayerNorm32(LayerNorm32):
    """LayerNorm over the channel axis of a channels-first tensor [B, C, *spatial]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels_last = x.movedim(1, -1)
        return super().forward(channels_last).movedim(-1, 1).contiguous()


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32, result cast back to the input dtype. [B, C, *spatial]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


class MultiHeadRMSNorm(nn.Module):
    """Per-head RMS norm used on queries/keys (TRELLIS "qk_rms_norm").

    x: [..., heads, head_dim]. Each head vector is L2-normalised in float32, multiplied by the learnt
    gamma [heads, head_dim] (float32 parameter) and by sqrt(head_dim) so a unit-gamma output has RMS 1.
    Returns the input dtype.
    """

    def __init__(self, head_dim: int, heads: int):
        super().__init__()
        self.scale = head_dim**0.5
        self.gamma = nn.Parameter(torch.ones(heads, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (F.normalize(x.float(), dim=-1) * self.gamma * self.scale).to(x.dtype)
