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

from scenegen_core.models.layers.conv3d import NORM_TYPES, ResBlock3d, UpsampleBlock3d, norm_3d
from scenegen_core.models.layers.official_config import official_args
from scenegen_core.models.layers.precision import convert_to_half, resolve_half_dtype, torso_dtype

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
        if self.norm_type not in NORM_TYPES:
            raise ValueError(f"norm_type must be one of {NORM_TYPES}, got {self.norm_type!r}")
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
        self.out_layer = nn.Sequential(norm_3d(config.norm_type, ch[-1]), nn.SiLU(), nn.Conv3d(ch[-1], config.out_channels, 3, padding=1))
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
