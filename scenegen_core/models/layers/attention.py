"""Multi-head attention (self / cross / global) on dense token sequences, via torch SDPA.

Parameter names follow TRELLIS/SceneGen: ``to_qkv`` (self, global) or ``to_q`` + ``to_kv`` (cross),
optional ``q_rms_norm`` / ``k_rms_norm`` gammas, ``to_out``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from scenegen_core.models.layers.norm import MultiHeadRMSNorm

AttentionKind = Literal["self", "cross", "global"]


def multihead_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention on head-split tokens.

    q: [B, Lq, H, D]; k, v: [B, Lk, H, D] (same dtype). Scale 1/sqrt(D), no mask.
    Returns [B, Lq, H*D] in the input dtype.
    """
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2).flatten(2)


class MultiHeadAttention(nn.Module):
    """Attention layer with three token-mixing patterns.

    * ``self``:   x [B, L, C] attends within each batch row.
    * ``global``: all B*L tokens of the batch form ONE sequence (SceneGen's scene-level attention:
      the batch is the scene, every object sees every other object's tokens).
    * ``cross``:  x [B, L, C] queries a context [B, Lc, ctx_channels] of the same batch row.

    Output: [B, L, C] in the dtype of x (which must match the weights' dtype).
    """

    def __init__(
        self,
        channels: int,
        num_heads: int,
        kind: AttentionKind = "self",
        ctx_channels: int | None = None,
        qkv_bias: bool = True,
        qk_rms_norm: bool = False,
    ):
        super().__init__()
        if channels % num_heads != 0:
            raise ValueError(f"channels {channels} not divisible by num_heads {num_heads}")
        if kind not in ("self", "cross", "global"):
            raise ValueError(f"unknown attention kind {kind!r}")
        self.channels = channels
        self.num_heads = num_heads
        self.head_dim = channels // num_heads
        self.kind = kind
        if kind == "cross":
            self.to_q = nn.Linear(channels, channels, bias=qkv_bias)
            self.to_kv = nn.Linear(ctx_channels or channels, 2 * channels, bias=qkv_bias)
        else:
            self.to_qkv = nn.Linear(channels, 3 * channels, bias=qkv_bias)
        self.qk_rms_norm = qk_rms_norm
        if qk_rms_norm:
            self.q_rms_norm = MultiHeadRMSNorm(self.head_dim, num_heads)
            self.k_rms_norm = MultiHeadRMSNorm(self.head_dim, num_heads)
        self.to_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, num_scenes: int = 1) -> torch.Tensor:
        """num_scenes: only for ``global``: the B rows are num_scenes equal groups of consecutive rows
        (one scene each) and tokens attend only within their group."""
        batch, length, channels = x.shape
        if self.kind == "cross":
            if context is None:
                raise ValueError("cross-attention needs a context tensor")
            q = self.to_q(x).unflatten(-1, (self.num_heads, self.head_dim))
            k, v = self.to_kv(context).unflatten(-1, (2, self.num_heads, self.head_dim)).unbind(dim=2)
        else:
            if context is not None:
                raise ValueError(f"{self.kind}-attention takes no context")
            if self.kind == "global":
                if num_scenes < 1 or batch % num_scenes:
                    raise ValueError(f"{batch} rows cannot form {num_scenes} scenes of equal size")
                tokens = x.reshape(num_scenes, batch // num_scenes * length, channels)
            else:
                tokens = x
            q, k, v = self.to_qkv(tokens).unflatten(-1, (3, self.num_heads, self.head_dim)).unbind(dim=2)
        if self.qk_rms_norm:
            q = self.q_rms_norm(q)
            k = self.k_rms_norm(k)
        h = multihead_sdpa(q, k, v).reshape(batch, length, channels)
        return self.to_out(h)
