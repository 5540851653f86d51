"""TRELLIS sparse-structure VAE encoder (E_S, TRELLIS Sec. 3.3): a dense 3D conv net that maps a
binary occupancy grid to the Gaussian posterior of the latent the SS flow model generates.

Layout (state-dict names as TRELLIS ``SparseStructureEncoder``): ``input_layer`` conv3x3x3 ->
``blocks`` (res blocks per level, a strided 2x2x2 conv halving the grid between levels) ->
``middle_block`` (res blocks at channels[-1]) -> ``out_layer`` (norm, SiLU, conv3x3x3 to
2 x latent_channels = mean and log-variance). The decoder (`ss_decoder.SSDecoder`) mirrors it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from scenegen_core.models.layers.conv3d import NORM_TYPES, DownsampleBlock3d, ResBlock3d, norm_3d
from scenegen_core.models.layers.precision import convert_to_half, resolve_half_dtype, torso_dtype


@dataclass(frozen=True)
class SSEncoderConfig:
    """Official argument names. Defaults = TRELLIS ``ss_enc_conv3d_16l8_fp16`` (64^3 -> 16^3 x 8).

    channels: per-level widths, the grid halves between consecutive levels; num_res_blocks per
    level; num_res_blocks_middle at channels[-1]; use_fp16 keeps blocks/middle convs in half_dtype.
    """

    in_channels: int = 1
    latent_channels: int = 8
    num_res_blocks: int = 2
    channels: tuple[int, ...] = (32, 128, 512)
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
    def full(cls) -> "SSEncoderConfig":
        return cls()

    @classmethod
    def tiny(cls, **overrides: Any) -> "SSEncoderConfig":
        """Mirror of `SSDecoderConfig.tiny` (16^3 -> 4^3), fp32 by default."""
        base = dict(num_res_blocks=1, channels=(8, 16, 32), use_fp16=False)
        return cls(**{**base, **overrides})

    @property
    def compute_dtype(self) -> torch.dtype:
        return torso_dtype(self.use_fp16, self.half_dtype)

    @property
    def downsampling(self) -> int:
        """Input grid edge / latent grid edge."""
        return 2 ** (len(self.channels) - 1)


@dataclass(frozen=True)
class LatentPosterior:
    """Diagonal Gaussian over latents: mean, logvar [B, latent_channels, G, G, G] float32."""

    mean: torch.Tensor
    logvar: torch.Tensor

    def sample(self, noise: torch.Tensor) -> torch.Tensor:
        """Reparameterised draw mean + exp(logvar / 2) * noise; noise has the mean's shape."""
        if noise.shape != self.mean.shape:
            raise ValueError(f"noise {tuple(noise.shape)} must match the latent {tuple(self.mean.shape)}")
        return self.mean + torch.exp(0.5 * self.logvar) * noise

    def kl(self) -> torch.Tensor:
        """Scalar mean over elements of KL(q || N(0, I)) per element, as TRELLIS's trainer logs it."""
        return 0.5 * torch.mean(self.mean.pow(2) + self.logvar.exp() - self.logvar - 1)


class SSEncoder(nn.Module):
    """occupancy [B, in_channels, G*2^(levels-1), ...] float32 (0/1) -> LatentPosterior at G^3."""

    def __init__(self, config: SSEncoderConfig):
        super().__init__()
        self.config = config
        ch = config.channels
        self.input_layer = nn.Conv3d(config.in_channels, ch[0], 3, padding=1)
        blocks: list[nn.Module] = []
        for level, width in enumerate(ch):
            blocks.extend(ResBlock3d(width, config.norm_type) for _ in range(config.num_res_blocks))
            if level + 1 < len(ch):
                blocks.append(DownsampleBlock3d(width, ch[level + 1]))
        self.blocks = nn.ModuleList(blocks)
        self.middle_block = nn.Sequential(*(ResBlock3d(ch[-1], config.norm_type) for _ in range(config.num_res_blocks_middle)))
        self.out_layer = nn.Sequential(
            norm_3d(config.norm_type, ch[-1]), nn.SiLU(), nn.Conv3d(ch[-1], 2 * config.latent_channels, 3, padding=1)
        )
        if config.use_fp16:
            convert_to_half(self.blocks, config.compute_dtype)
            convert_to_half(self.middle_block, config.compute_dtype)

    def forward(self, occupancy: torch.Tensor) -> LatentPosterior:
        cfg = self.config
        if occupancy.ndim != 5 or occupancy.shape[1] != cfg.in_channels:
            raise ValueError(f"occupancy must be [B, {cfg.in_channels}, X, Y, Z], got {tuple(occupancy.shape)}")
        if any(side % cfg.downsampling for side in occupancy.shape[2:]):
            raise ValueError(f"grid {tuple(occupancy.shape[2:])} is not divisible by {cfg.downsampling}")
        h = self.input_layer(occupancy.float()).to(cfg.compute_dtype)
        for block in self.blocks:
            h = block(h)
        h = self.middle_block(h)
        mean, logvar = self.out_layer(h.float()).chunk(2, dim=1)
        return LatentPosterior(mean, logvar)
