"""Pre-norm transformer block shared by DINOv2, the VGGT aggregator and the VGGT camera trunk.

The three users differ only in arguments: DINOv2 (LayerNorm eps 1e-6, no qk-norm, no RoPE,
LayerScale 1.0), aggregator frame/global blocks (eps 1e-5, q/k LayerNorm over head_dim, 2D RoPE,
LayerScale 0.01), camera trunk (eps 1e-5, no qk-norm, no RoPE). GELU is exact (erf).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from scenegen_core.models.vggt.layers.mlp import Mlp
from scenegen_core.models.vggt.layers.rope import RotaryPositionEmbedding2D


class LayerScale(nn.Module):
    """Per-channel residual scale: x * gamma, gamma [C] (name ``gamma`` as in the official code)."""

    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Attention(nn.Module):
    """Multi-head self-attention with fused qkv, optional q/k LayerNorm and optional 2D RoPE.

    q/k norms are affine LayerNorms over head_dim with torch's default eps 1e-5.
    Input [B, N, C] -> [B, N, C]. Order inside: qkv -> split heads -> q/k norm -> RoPE -> SDPA
    (scale 1/sqrt(head_dim)) -> merge heads -> proj.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        qk_norm: bool = False,
        rope: RotaryPositionEmbedding2D | None = None,
    ):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.rope = rope

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        batch, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None:
            if pos is None:
                raise ValueError("this attention layer uses RoPE and needs token positions")
            q, k = self.rope(q, pos), self.rope(k, pos)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, channels))


class Block(nn.Module):
    """x + ls1(attn(norm1(x))) then x + ls2(mlp(norm2(x))). [B, N, C] -> [B, N, C].

    init_values None disables LayerScale (identity), as in the official code.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        ffn_bias: bool = True,
        init_values: float | None = None,
        qk_norm: bool = False,
        norm_eps: float = 1e-5,
        rope: RotaryPositionEmbedding2D | None = None,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, proj_bias=proj_bias, qk_norm=qk_norm, rope=rope)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), bias=ffn_bias)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), pos=pos))
        return x + self.ls2(self.mlp(self.norm2(x)))
