"""2D sin-cos grid embedding shared by VGGT's DPT head (UV positions) and point tracker (pixels)."""

from __future__ import annotations

import torch


def sincos_grid_embedding(xs: torch.Tensor, ys: torch.Tensor, channels: int, base: float) -> torch.Tensor:
    """Embedding of the grid of positions xs [W] x ys [H] -> [channels, H, W] float32.

    Channels [sin(x w), cos(x w), sin(y w), cos(y w)], each block channels / 4 wide, with
    w_k = base^(-k / (channels / 4)); computed in float64 (as the official code) and cast.
    """
    if channels % 4:
        raise ValueError(f"sin-cos grid embedding channels must be a multiple of 4, got {channels}")
    quarter = channels // 4
    omega = 1.0 / base ** (torch.arange(quarter, dtype=torch.float64, device=xs.device) / quarter)

    def embed(positions: torch.Tensor) -> torch.Tensor:  # [L] -> [L, channels / 2]
        angles = positions.double().unsqueeze(-1) * omega
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    ex, ey = embed(xs), embed(ys)
    grid = torch.cat(
        [ex.unsqueeze(0).expand(len(ys), -1, -1), ey.unsqueeze(1).expand(-1, len(xs), -1)], dim=-1
    )  # [H, W, channels]
    return grid.permute(2, 0, 1).float()
