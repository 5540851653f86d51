"""adaLN-modulated transformer blocks (DiT style) used by the SceneGen sparse-structure flow.

* `ModulatedTransformerBlock`: self-attention + MLP, both modulated by a conditioning vector
  (the pose-refinement trunk of the position head).
* `SceneModulatedCrossBlock`: SceneGen's flow block: per-object self-attention, object-level
  cross-attention, scene-level global attention across all objects, scene-level cross-attention,
  MLP (paper Sec. 3.2 "feature aggregation").

Modulation convention: ``x * (1 + scale) + shift``; adaLN chunks are
(shift, scale, gate) for attention then (shift, scale, gate) for the MLP.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from scenegen_core.models.layers.attention import MultiHeadAttention
from scenegen_core.models.layers.norm import LayerNorm32

BLOCK_NORM_EPS = 1e-6


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x [B, L, C]; shift, scale [B, C] -> x * (1 + scale) + shift, broadcast over tokens."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class FeedForwardNet(nn.Module):
    """Linear C -> ratio*C, tanh-approximate GELU, Linear -> C. Names ``mlp.0`` / ``mlp.2``."""

    def __init__(self, channels: int, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(channels * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def _adaln(channels: int, chunks: int) -> nn.Sequential:
    """SiLU -> Linear(C, chunks*C); index 1 is the Linear (state-dict ``adaLN_modulation.1``)."""
    return nn.Sequential(nn.SiLU(), nn.Linear(channels, chunks * channels))


class ModulatedTransformerBlock(nn.Module):
    """Self-attention + MLP block conditioned by adaLN (pose trunk of the position head).

    x: [B, L, C]; mod: [B, C]. Both are cast to the dtype of the block's own weights first
    (the official trunk hard-casts to float16; following the weights keeps the released fp16
    behaviour bit-identical and makes pure fp32 / bf16 models work). Returns [B, L, C] in that dtype.
    """

    def __init__(self, channels: int, num_heads: int, mlp_ratio: float = 4.0, qk_rms_norm: bool = True, qkv_bias: bool = True):
        super().__init__()
        self.norm1 = LayerNorm32(channels, elementwise_affine=False, eps=BLOCK_NORM_EPS)
        self.norm2 = LayerNorm32(channels, elementwise_affine=False, eps=BLOCK_NORM_EPS)
        self.attn = MultiHeadAttention(channels, num_heads, "self", qkv_bias=qkv_bias, qk_rms_norm=qk_rms_norm)
        self.mlp = FeedForwardNet(channels, mlp_ratio)
        self.adaLN_modulation = _adaln(channels, 6)

    @property
    def dtype(self) -> torch.dtype:
        return self.adaLN_modulation[1].weight.dtype

    def forward(self, x: torch.Tensor, mod: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(mod.to(self.dtype)).chunk(6, dim=1)
        x = x + self.attn(modulate(self.norm1(x), shift_msa, scale_msa)) * gate_msa.unsqueeze(1)
        x = x + self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp)) * gate_mlp.unsqueeze(1)
        return x


class SceneModulatedCrossBlock(nn.Module):
    """SceneGen flow block with object-level and scene-level attention.

    Args:
        channels: C (model_channels); ctx_channels must equal C (``norm5`` is declared with it but
            applied to the hidden tokens, as in the official code).
        num_special_tokens: position + register tokens at the front of every object's sequence.
        object_context_tokens: Lo; ``context[:, :Lo]`` are the object's own image tokens (object-level
            cross-attention); the scene-level cross-attention sees the whole context.

    forward(x [B*N, S, C], mod [B*N, C] (t embedding), context [B*N, L, C], num_scenes=B)
    -> [B*N, S, C], S = specials + T. The rows are B scenes of N objects each (consecutive rows);
    the global attention mixes the objects of one scene and never crosses scenes.
    """

    def __init__(
        self,
        channels: int,
        ctx_channels: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qk_rms_norm: bool = False,
        qk_rms_norm_cross: bool = False,
        num_special_tokens: int = 5,
        object_context_tokens: int = 1374,
    ):
        super().__init__()
        self.num_special_tokens = num_special_tokens
        self.object_context_tokens = object_context_tokens
        # Creation order fixes the state-dict order: norms, attentions, mlp, modulations.
        self.norm1 = LayerNorm32(channels, elementwise_affine=False, eps=BLOCK_NORM_EPS)
        self.norm2 = LayerNorm32(channels, elementwise_affine=True, eps=BLOCK_NORM_EPS)
        self.norm3 = LayerNorm32(channels, elementwise_affine=False, eps=BLOCK_NORM_EPS)
        self.norm4 = LayerNorm32(channels, elementwise_affine=True, eps=BLOCK_NORM_EPS)
        self.norm5 = LayerNorm32(ctx_channels, elementwise_affine=False, eps=BLOCK_NORM_EPS)
        self.self_attn = MultiHeadAttention(channels, num_heads, "self", qk_rms_norm=qk_rms_norm)
        self.cross_attn = MultiHeadAttention(channels, num_heads, "cross", ctx_channels, qk_rms_norm=qk_rms_norm_cross)
        self.global_attn = MultiHeadAttention(channels, num_heads, "global", qk_rms_norm=qk_rms_norm_cross)
        self.global_cross_attn = MultiHeadAttention(channels, num_heads, "cross", ctx_channels, qk_rms_norm=qk_rms_norm_cross)
        self.mlp = FeedForwardNet(channels, mlp_ratio)
        self.adaLN_modulation = _adaln(channels, 6)
        self.adaLN_modulation_global = _adaln(channels, 3)

    def forward(self, x: torch.Tensor, mod: torch.Tensor, context: torch.Tensor, num_scenes: int = 1) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(mod).chunk(6, dim=1)
        shift_glb, scale_glb, gate_glb = self.adaLN_modulation_global(mod).chunk(3, dim=1)
        k = self.num_special_tokens
        # 1. Per-object self-attention over the patch tokens only (special tokens excluded).
        special, patches = x[:, :k], x[:, k:]
        patches = patches + self.self_attn(modulate(self.norm1(patches), shift_msa, scale_msa)) * gate_msa.unsqueeze(1)
        # 2. Object-level cross-attention to the object's own image tokens (no modulation, no gate).
        patches = patches + self.cross_attn(self.norm2(patches), context[:, : self.object_context_tokens])
        # 3. Scene-level global self-attention over every token of every object (special tokens included).
        x = torch.cat([special, patches], dim=1)
        x = x + self.global_attn(modulate(self.norm4(x), shift_glb, scale_glb), num_scenes=num_scenes) * gate_glb.unsqueeze(1)
        # 4. Scene-level cross-attention of each object's tokens to its full context.
        x = x + self.global_cross_attn(self.norm5(x), context)
        # 5. MLP on patch tokens only; the special tokens pass through unchanged.
        special, patches = x[:, :k], x[:, k:]
        patches = patches + self.mlp(modulate(self.norm3(patches), shift_mlp, scale_mlp)) * gate_mlp.unsqueeze(1)
        return torch.cat([special, patches], dim=1)
