"""2D rotary position embedding (RoPE) of the VGGT aggregator blocks.

Per attention head of size D: the first D/2 channels are rotated by the token's row coordinate,
the last D/2 by its column coordinate. Within one half of size h the frequencies are
base^(-2k/h), k = 0..h/2-1, the angle table is duplicated as [theta, theta] and the rotation is the
half-split form x*cos + rotate_half(x)*sin with rotate_half(x1, x2) = (-x2, x1).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def patch_positions(batch: int, grid_h: int, grid_w: int, num_special: int, device: torch.device) -> torch.Tensor:
    """RoPE coordinates of an aggregator token sequence.

    Returns [batch, num_special + grid_h*grid_w, 2] int64 (row, col): the special tokens get (0, 0),
    the patch at grid cell (y, x) gets (y + 1, x + 1) so that no patch shares the specials' angle.
    """
    rows = torch.arange(grid_h, device=device)
    cols = torch.arange(grid_w, device=device)
    grid = torch.cartesian_prod(rows, cols) + 1
    special = torch.zeros(num_special, 2, dtype=grid.dtype, device=device)
    return torch.cat([special, grid], dim=0).unsqueeze(0).expand(batch, -1, -1).contiguous()


class RotaryPositionEmbedding2D(nn.Module):
    """Applies 2D RoPE to per-head queries or keys. Has no parameters (never in state dicts)."""

    def __init__(self, base: float = 100.0):
        super().__init__()
        if base <= 0:
            raise ValueError(f"RoPE base frequency must be positive, got {base}")
        self.base = float(base)
        self._tables: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _cos_sin(self, half_dim: int, length: int, device: torch.device, dtype: torch.dtype):
        key = (half_dim, length, device, dtype)
        if key not in self._tables:
            exponents = torch.arange(0, half_dim, 2, device=device).float() / half_dim
            inv_freq = 1.0 / (self.base**exponents)
            angles = torch.outer(torch.arange(length, device=device, dtype=inv_freq.dtype), inv_freq).to(dtype)
            angles = torch.cat([angles, angles], dim=-1)
            self._tables[key] = (angles.cos().to(dtype), angles.sin().to(dtype))
        return self._tables[key]

    @staticmethod
    def _rotate_half(x: torch.Tensor) -> torch.Tensor:
        first, second = x.chunk(2, dim=-1)
        return torch.cat([-second, first], dim=-1)

    def _rotate(self, x: torch.Tensor, coords: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        cos_at = F.embedding(coords, cos)[:, None]
        sin_at = F.embedding(coords, sin)[:, None]
        return x * cos_at + self._rotate_half(x) * sin_at

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """x: [B, heads, N, D] (D divisible by 4); positions: [B, N, 2] int64 (row, col). Returns x's shape."""
        if x.shape[-1] % 4 != 0:
            raise ValueError(f"2D RoPE needs a head dim divisible by 4, got {x.shape[-1]}")
        if positions.ndim != 3 or positions.shape[-1] != 2 or positions.shape[:2] != (x.shape[0], x.shape[2]):
            raise ValueError(f"positions must be [B, N, 2] for tokens {tuple(x.shape)}, got {tuple(positions.shape)}")
        half_dim = x.shape[-1] // 2
        cos, sin = self._cos_sin(half_dim, int(positions.max()) + 1, x.device, x.dtype)
        rows, cols = x.chunk(2, dim=-1)
        return torch.cat(
            [self._rotate(rows, positions[..., 0], cos, sin), self._rotate(cols, positions[..., 1], cos, sin)], dim=-1
        )
