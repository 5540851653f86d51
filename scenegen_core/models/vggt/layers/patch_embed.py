"""Image -> non-overlapping patch tokens (a strided convolution)."""

from __future__ import annotations

import torch
import torch.nn as nn


class PatchEmbed(nn.Module):
    """Conv2d(k = stride = patch_size), flattened row-major (row slowest, column fastest).

    Input [B, 3, H, W] (H, W multiples of patch_size) -> output [B, (H/p)*(W/p), embed_dim].
    `img_size` only fixes the nominal patch count used to size the position table.
    """

    def __init__(self, img_size: int, patch_size: int, in_chans: int = 3, embed_dim: int = 1024):
        super().__init__()
        if img_size % patch_size != 0:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.patch_size = patch_size
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"image size {height}x{width} is not a multiple of the patch size {self.patch_size}")
        return self.proj(x).flatten(2).transpose(1, 2)
