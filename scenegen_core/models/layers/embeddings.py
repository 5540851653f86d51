"""Timestep embedding MLP, absolute 3D sin-cos position embedding, 3D (un)patchify, pixel shuffle."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

TIMESTEP_FREQUENCY_SIZE = 256


def timestep_frequencies(t: torch.Tensor, dim: int = TIMESTEP_FREQUENCY_SIZE, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of (fractional) timesteps, GLIDE/DiT layout.

    t: [N] any float/int dtype (SceneGen passes 1000*t, t in [0, 1]).
    Returns [N, dim] float32 = [cos(t*f_k), sin(t*f_k)] (cos first) with f_k = exp(-ln(max_period) k / (dim/2)),
    plus one zero column when dim is odd.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class TimestepEmbedder(nn.Module):
    """t [N] -> [N, hidden] float32: sinusoidal features (256) -> Linear -> SiLU -> Linear."""

    def __init__(self, hidden_size: int, frequency_size: int = TIMESTEP_FREQUENCY_SIZE):
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_frequencies(t, self.frequency_size))


def absolute_position_embedding_3d(coords: torch.Tensor, channels: int) -> torch.Tensor:
    """Fixed sin-cos embedding of integer 3D grid positions (TRELLIS "ape").

    coords: [T, 3] (x, y, z) grid indices. Per axis, f = channels // 3 // 2 frequencies
    1 / 10000^(k/f); each token gets [sin(x f), cos(x f), sin(y f), cos(y f), sin(z f), cos(z f)],
    zero-padded up to `channels`. Returns [T, channels] float32.
    """
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise ValueError(f"coords must be [T, 3], got {tuple(coords.shape)}")
    freq_dim = channels // 3 // 2
    freqs = 1.0 / (10000 ** (torch.arange(freq_dim, dtype=torch.float32, device=coords.device) / freq_dim))
    angles = torch.outer(coords.reshape(-1).float(), freqs)  # [T*3, f], axis-major within a token
    embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).reshape(coords.shape[0], -1)
    padding = channels - embedding.shape[1]
    if padding:
        embedding = torch.cat([embedding, embedding.new_zeros(coords.shape[0], padding)], dim=-1)
    return embedding


def grid_coords_3d(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """[size^3, 3] int64 (x, y, z) indices of a cubic grid, row-major (x slowest, z fastest)."""
    axes = torch.arange(size, device=device)
    return torch.stack(torch.meshgrid(axes, axes, axes, indexing="ij"), dim=-1).reshape(-1, 3)


def patchify_3d(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[B, C, X, Y, Z] -> [B, C*p^3, X/p, Y/p, Z/p]; channel index = c*p^3 + (i*p + j)*p + k."""
    batch, channels, *spatial = x.shape
    if len(spatial) != 3 or any(s % patch_size for s in spatial):
        raise ValueError(f"spatial dims {spatial} must be 3 and divisible by patch size {patch_size}")
    gx, gy, gz = (s // patch_size for s in spatial)
    p = patch_size
    x = x.reshape(batch, channels, gx, p, gy, p, gz, p).permute(0, 1, 3, 5, 7, 2, 4, 6)
    return x.reshape(batch, channels * p**3, gx, gy, gz)


def unpatchify_3d(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Inverse of `patchify_3d`: [B, C*p^3, X', Y', Z'] -> [B, C, X'p, Y'p, Z'p]."""
    batch, channels, gx, gy, gz = x.shape
    p = patch_size
    if channels % p**3:
        raise ValueError(f"channels {channels} not divisible by patch volume {p ** 3}")
    x = x.reshape(batch, channels // p**3, p, p, p, gx, gy, gz).permute(0, 1, 5, 2, 6, 3, 7, 4)
    return x.reshape(batch, channels // p**3, gx * p, gy * p, gz * p)


def pixel_shuffle_3d(x: torch.Tensor, scale_factor: int) -> torch.Tensor:
    """[B, C*s^3, X, Y, Z] -> [B, C, X*s, Y*s, Z*s] (sub-voxel index = (i*s + j)*s + k of the channel)."""
    return unpatchify_3d(x, scale_factor)
