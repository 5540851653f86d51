"""VGGT camera head: iterative refinement of a 9-D pose encoding from the camera token.

Encoding layout [tx, ty, tz, qx, qy, qz, qw, fov_h, fov_w] (VGGT "absT_quaR_FoV", quaternion real part last);
this module only reproduces the network, the decoding to extrinsics/intrinsics is not needed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from scenegen_core.models.vggt.layers.block import Block
from scenegen_core.models.vggt.layers.mlp import Mlp

POSE_ENCODING_DIM = 9


@dataclass(frozen=True)
class CameraHeadConfig:
    """dim_in = 2 * aggregator embed_dim. Defaults = VGGT-1B."""

    dim_in: int = 2048
    trunk_depth: int = 4
    num_heads: int = 16
    mlp_ratio: float = 4.0
    init_values: float = 0.01


class CameraHead(nn.Module):
    """Camera token of the last aggregator layer -> list of [B, S, 9] pose encodings (one per
    refinement iteration, activated: translation/quaternion linear, field of view ReLU)."""

    def __init__(self, config: CameraHeadConfig):
        super().__init__()
        dim = config.dim_in
        self.trunk = nn.Sequential(
            *(
                Block(dim, config.num_heads, mlp_ratio=config.mlp_ratio, init_values=config.init_values)
                for _ in range(config.trunk_depth)
            )
        )
        self.token_norm = nn.LayerNorm(dim)
        self.trunk_norm = nn.LayerNorm(dim)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_ENCODING_DIM))
        self.embed_pose = nn.Linear(POSE_ENCODING_DIM, dim)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 3 * dim))
        self.adaln_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim, dim // 2, POSE_ENCODING_DIM)

    def forward(self, layers: tuple[torch.Tensor, ...], num_iterations: int = 4) -> list[torch.Tensor]:
        """layers: aggregator outputs, each [B, S, P, dim_in]; token 0 of the last is the camera token."""
        tokens = self.token_norm(layers[-1][:, :, 0])
        batch, frames, _ = tokens.shape
        raw = None
        outputs = []
        for _ in range(num_iterations):
            # adaLN-style modulation of the (fixed) camera token by the current estimate,
            # residual, trunk, then a delta on the raw encoding.
            previous = self.empty_pose_tokens.expand(batch, frames, -1) if raw is None else raw.detach()
            shift, scale, gate = self.poseLN_modulation(self.embed_pose(previous)).chunk(3, dim=-1)
            modulated = gate * (self.adaln_norm(tokens) * (1 + scale) + shift) + tokens
            delta = self.pose_branch(self.trunk_norm(self.trunk(modulated)))
            raw = delta if raw is None else raw + delta
            outputs.append(torch.cat([raw[..., :7], F.relu(raw[..., 7:])], dim=-1))
        return outputs
