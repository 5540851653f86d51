"""Sampling, correlation and sin-cos embedding helpers of VGGT's point tracker.

Coordinate convention (the official tracker's, CoTracker / VGGSfM heritage): a point is (x, y)
in pixels of the map it samples, pixel centres at integer positions, x in [0, W - 1] left to
right, y in [0, H - 1] top to bottom (``grid_sample`` with ``align_corners=True``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from scenegen_core.models.vggt.layers.sincos import sincos_grid_embedding


def bilinear_sample(values: torch.Tensor, coords: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Bilinear interpolation of ``values`` [M, C, H, W] at ``coords`` [M, Ho, Wo, 2] (x, y pixels,
    pixel centres at integers) -> [M, C, Ho, Wo], dtype of ``values``.

    padding_mode: "border" (clamp to the edge pixel) or "zeros" (outside pixels count as 0).
    """
    height, width = values.shape[-2:]
    # Pixel -> [-1, 1] with -1 / +1 at the centres of the first / last pixel; a size-1 axis maps
    # pixel 0 to -1 like the official sampler (scale 2 / max(size - 1, 1)).
    scale = torch.tensor(
        [2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], device=values.device, dtype=values.dtype
    )
    # Positions are detached as in the official sampler: gradients reach the values, not the coords.
    grid = coords.detach().to(device=values.device, dtype=values.dtype) * scale - 1.0
    return F.grid_sample(values, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def sample_features(feature_map: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Features of ``feature_map`` [B, C, H, W] at ``points`` [B, N, 2] (x, y map pixels, border
    padding) -> [B, N, C]."""
    sampled = bilinear_sample(feature_map, points.unsqueeze(2))  # [B, C, N, 1]
    return sampled[..., 0].transpose(1, 2)


def flow_embedding(xy: torch.Tensor, channels: int) -> torch.Tensor:
    """Sin-cos embedding of 2D displacements ``xy`` [..., 2] (pixels) -> [..., 2 * channels] float32.

    Layout [e(x), e(y)], each e(t) of ``channels`` entries interleaved as
    e(t)[2k] = sin(t * w_k), e(t)[2k + 1] = cos(t * w_k) with w_k = 2k * 1000 / channels
    (the official ``get_2d_embedding``: linear, not geometric, frequencies).
    """
    if channels % 2:
        raise ValueError(f"flow embedding channels must be even, got {channels}")
    freqs = torch.arange(0, channels, 2, device=xy.device, dtype=torch.float32) * (1000.0 / channels)

    def embed(t: torch.Tensor) -> torch.Tensor:
        angles = t.float().unsqueeze(-1) * freqs
        return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)

    return torch.cat([embed(xy[..., 0]), embed(xy[..., 1])], dim=-1)


def grid_sincos_embedding(dim: int, height: int, width: int, device=None) -> torch.Tensor:
    """2D sin-cos position embedding of a pixel grid -> [1, dim, height, width] float32.

    Channels [sin(x w), cos(x w), sin(y w), cos(y w)], each block dim / 4 wide, with
    w_k = 10000^(-k / (dim / 4)) and (x, y) the integer pixel position (the official
    ``get_2d_sincos_pos_embed``, computed in float64 then cast).
    """
    xs = torch.arange(width, device=device)
    ys = torch.arange(height, device=device)
    return sincos_grid_embedding(xs, ys, dim, base=10000.0).unsqueeze(0)


class CorrelationPyramid:
    """Multi-scale correlation between track features and per-frame feature maps.

    Level 0 is the feature map [B, S, C, H, W]; level l is 2x2 average pooling of level l - 1
    (floor division of odd sizes). ``sample`` correlates each track feature with every pixel of
    its frame, corr = <f_track, f_pixel> / sqrt(C), and reads that volume bilinearly (zero
    padding outside the map) on a (2r + 1)^2 window around the track's position scaled by 2^-l.
    """

    def __init__(self, feature_maps: torch.Tensor, levels: int, radius: int):
        if feature_maps.dim() != 5:
            raise ValueError(f"feature maps must be [B, S, C, H, W], got {tuple(feature_maps.shape)}")
        batch, frames, channels, height, width = feature_maps.shape
        if min(height, width) < 2 ** (levels - 1):
            raise ValueError(
                f"a {levels}-level correlation pyramid needs feature maps of at least {2 ** (levels - 1)} "
                f"pixels per side, got {height}x{width}; use fewer corr_levels or larger images"
            )
        self.radius = radius
        self.levels = [feature_maps]
        for _ in range(levels - 1):
            pooled = F.avg_pool2d(self.levels[-1].flatten(0, 1), kernel_size=2, stride=2)
            self.levels.append(pooled.reshape(batch, frames, channels, *pooled.shape[-2:]))
        # Window offsets in the official order: flattened index i * (2r + 1) + j samples
        # (x + i - r, y + j - r), i.e. the x offset varies along the slow axis.
        steps = torch.arange(-radius, radius + 1, device=feature_maps.device, dtype=feature_maps.dtype)
        self.offsets = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), dim=-1)  # [2r+1, 2r+1, 2]

    @property
    def channels(self) -> int:
        """Width of ``sample``'s output: levels * (2r + 1)^2."""
        return len(self.levels) * (2 * self.radius + 1) ** 2

    def sample(self, targets: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """targets [B, S, N, C] track features; coords [B, S, N, 2] (x, y) level-0 map pixels
        -> [B, S, N, levels * (2r + 1)^2], level-major, each level's window in ``offsets`` order."""
        batch, frames, count, channels = targets.shape
        window = 2 * self.radius + 1
        out = []
        for level, fmap in enumerate(self.levels):
            height, width = fmap.shape[-2:]
            corr = torch.matmul(targets, fmap.reshape(batch, frames, channels, height * width)) / math.sqrt(channels)
            centres = coords.reshape(-1, 1, 1, 2) / 2**level
            grid = centres + self.offsets.to(coords.dtype).view(1, window, window, 2)
            sampled = bilinear_sample(corr.reshape(-1, 1, height, width), grid, padding_mode="zeros")
            out.append(sampled.reshape(batch, frames, count, window * window))
        return torch.cat(out, dim=-1)
