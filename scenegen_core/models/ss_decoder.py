"""TRELLIS sparse-structure VAE decoder (D_S, TRELLIS Sec. 3.3): a dense 3D conv net that turns the
flow model's 16^3 x 8 latent into 64^3 occupancy logits, plus the pipeline's logits -> voxel rule.

Layout (state-dict names as TRELLIS ``SparseStructureDecoder``): ``input_layer`` conv3x3x3 ->
``middle_block`` (res blocks at channels[0]) -> ``blocks`` (res blocks per level, a conv +
3D pixel-shuffle x2 upsampling between levels) -> ``out_layer`` (norm, SiLU, conv3x3x3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from scenegen_core.models.layers.embeddings import pixel_shuffle_3d
from scenegen_core.models.layers.norm import ChannelLayerNorm32, GroupNorm32
from scenegen_core.models.layers.official_config import official_args
from scenegen_core.models.layers.precision import convert_to_half, resolve_half_dtype, torso_dtype

_NORM_TYPES = ("layer", "group")


@dataclass(frozen=True)
class SSDecoderConfig:
    """Official argument names. Defaults = TRELLIS ``ss_vae_conv3d_16l8_fp16`` decoder (16^3 -> 64^3).

    channels: per-level widths, the grid doubles between consecutive levels; num_res_blocks per
    level; num_res_blocks_middle at channels[0]; norm_type "layer" (channel LayerNorm) or "group"
    (32 groups); use_fp16 keeps middle/blocks convs in `half_dtype` as released.
    """

    out_channels: int = 1
    latent_channels: int = 8
    num_res_blocks: int = 2
    channels: tuple[int, ...] = (512, 128, 32)
    num_res_blocks_middle: int = 2
    norm_type: str = "layer"
    use_fp16: bool = True
    half_dtype: str = "float16"

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        resolve_half_dtype(self.half_dtype)
        if self.norm_type not in _NORM_TYPES:
            raise ValueError(f"norm_type must be one of {_NORM_TYPES}, got {self.norm_type!r}")
        if not self.channels:
            raise ValueError("channels must not be empty")

    @classmethod
    def full(cls) -> "SSDecoderConfig":
        return cls()

    @classmethod
    def tiny(cls, **overrides: Any) -> "SSDecoderConfig":
        """Test-sized decoder of the ``ss_decoder_tiny`` fixtures (4^3 -> 16^3), fp32 by default."""
        base = dict(num_res_blocks=1, channels=(32, 16, 8), use_fp16=False)
        return cls(**{**base, **overrides})

    @classmethod
    def from_official_json(cls, data: Mapping[str, Any], **overrides: Any) -> "SSDecoderConfig":
        """From the official model json or its ``args``; unknown keys raise ValueError."""
        args = official_args(
            data,
            expected_name="SparseStructureDecoder",
            required=("out_channels", "latent_channels", "num_res_blocks", "channels"),
            defaults={"num_res_blocks_middle": 2, "norm_type": "layer", "use_fp16": False},
        )
        return cls(**{**args, **overrides})

    @property
    def compute_dtype(self) -> torch.dtype:
        return torso_dtype(self.use_fp16, self.half_dtype)

    @property
    def upsampling(self) -> int:
        """Output grid edge / latent grid edge."""
        return 2 ** (len(self.channels) - 1)


def _norm(norm_type: str, channels: int) -> nn.Module:
    return ChannelLayerNorm32(channels) if norm_type == "layer" else GroupNorm32(32, channels)


class ResBlock3d(nn.Module):
    """Pre-norm residual block: x + conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))), [B, C, X, Y, Z]."""

    def __init__(self, channels: int, norm_type: str):
        super().__init__()
        self.norm1 = _norm(norm_type, channels)
        self.norm2 = _norm(norm_type, channels)
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


class SSDecoder(nn.Module):
    """z [B, latent_channels, G, G, G] float32 -> logits [B, out_channels, G*2^(levels-1), ...] float32."""

    def __init__(self, config: SSDecoderConfig):
        super().__init__()
        self.config = config
        ch = config.channels
        self.input_layer = nn.Conv3d(config.latent_channels, ch[0], 3, padding=1)
        self.middle_block = nn.Sequential(*(ResBlock3d(ch[0], config.norm_type) for _ in range(config.num_res_blocks_middle)))
        blocks: list[nn.Module] = []
        for level, width in enumerate(ch):
            blocks.extend(ResBlock3d(width, config.norm_type) for _ in range(config.num_res_blocks))
            if level + 1 < len(ch):
                blocks.append(UpsampleBlock3d(width, ch[level + 1]))
        self.blocks = nn.ModuleList(blocks)
        self.out_layer = nn.Sequential(_norm(config.norm_type, ch[-1]), nn.SiLU(), nn.Conv3d(ch[-1], config.out_channels, 3, padding=1))
        if config.use_fp16:
            convert_to_half(self.middle_block, config.compute_dtype)
            convert_to_half(self.blocks, config.compute_dtype)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 5 or z.shape[1] != self.config.latent_channels:
            raise ValueError(f"z must be [B, {self.config.latent_channels}, G, G, G], got {tuple(z.shape)}")
        h = self.input_layer(z).to(self.config.compute_dtype)
        h = self.middle_block(h)
        for block in self.blocks:
            h = block(h)
        return self.out_layer(h.to(z.dtype))


def logits_to_coords(logits: torch.Tensor) -> torch.Tensor:
    """Occupied voxels of decoder logits, as the official pipeline extracts them.

    logits: [N, 1, X, Y, Z]. A voxel is occupied when its logit is > 0. Returns [K, 4] int32 rows
    (object index, x, y, z) in row-major order (object slowest, z fastest).
    """
    if logits.ndim != 5 or logits.shape[1] != 1:
        raise ValueError(f"logits must be [N, 1, X, Y, Z], got {tuple(logits.shape)}")
    return torch.argwhere(logits > 0)[:, [0, 2, 3, 4]].int()
