"""SceneGen position head: regresses each object's pose relative to the query object.

Input is the flow transformer's position token after the last block. The pose is refined
iteratively (VGGT camera-head style): every iteration re-runs an adaLN transformer trunk on the
same normalised token, conditioned on the embedding of the current pose estimate, and adds a
predicted delta.

Pose layout ("absT_quatR_S", 8 values): [tx, ty, tz, qw, qx, qy, qz, s] -- translation and
quaternion (w first, NOT normalised) pass through unchanged, the scale through ReLU. All values
are in the query object's canonical frame (TRELLIS [-0.5, 0.5]^3 box units).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from scenegen_core.models.layers.modulated import BLOCK_NORM_EPS, ModulatedTransformerBlock
from scenegen_core.models.layers.norm import LayerNorm32

# pose layout -> (size, identity pose: written for the query object in eval mode, initial empty pose)
POSE_ENCODINGS: dict[str, tuple[int, tuple[float, ...]]] = {
    "absT_quatR_S": (8, (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)),
    "absT_eulerR_S": (7, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)),
}


@dataclass(frozen=True)
class PositionHeadConfig:
    """channels: C of the incoming token; trunk_depth adaLN blocks with num_heads heads;
    num_iteration refinement passes; pose_encoding_type one of POSE_ENCODINGS."""

    channels: int = 1024
    trunk_depth: int = 4
    num_heads: int = 16
    mlp_ratio: float = 4.0
    pose_encoding_type: str = "absT_quatR_S"
    num_iteration: int = 4

    def __post_init__(self) -> None:
        if self.pose_encoding_type not in POSE_ENCODINGS:
            raise ValueError(f"pose_encoding_type must be one of {sorted(POSE_ENCODINGS)}, got {self.pose_encoding_type!r}")
        if self.num_iteration < 1:
            raise ValueError(f"num_iteration must be >= 1, got {self.num_iteration}")
        if self.channels % 2:
            raise ValueError(f"channels must be even (pose branch uses C/2), got {self.channels}")

    @property
    def pose_dim(self) -> int:
        return POSE_ENCODINGS[self.pose_encoding_type][0]


class PositionHead(nn.Module):
    """position token [N, 1, C] (float32) -> poses [N, pose_dim] float32.

    In eval mode row 0 (the query object, which defines the frame) is replaced by the identity
    pose, exactly as the official model does; train mode returns the raw prediction for every row.
    """

    def __init__(self, config: PositionHeadConfig):
        super().__init__()
        self.config = config
        c, dim = config.channels, config.pose_dim
        self.trunk = nn.ModuleList(
            ModulatedTransformerBlock(c, config.num_heads, config.mlp_ratio, qk_rms_norm=True, qkv_bias=True)
            for _ in range(config.trunk_depth)
        )
        self.token_norm = LayerNorm32(c, elementwise_affine=False, eps=BLOCK_NORM_EPS)
        self.trunk_norm = LayerNorm32(c, elementwise_affine=False, eps=BLOCK_NORM_EPS)
        identity = torch.tensor(POSE_ENCODINGS[config.pose_encoding_type][1])
        self.empty_pose_tokens = nn.Parameter(identity[None].clone())
        self.embed_pose = nn.Linear(dim, c)
        self.pose_branch = nn.Sequential(nn.Linear(c, c // 2), nn.GELU(), nn.Linear(c // 2, dim))

    def forward(self, position_token: torch.Tensor, num_scenes: int = 1) -> torch.Tensor:
        """num_scenes: the N rows are that many equal groups of consecutive rows (one scene each);
        in eval mode the first row of every group is the identity."""
        if position_token.ndim != 3 or position_token.shape[1] != 1 or position_token.shape[2] != self.config.channels:
            raise ValueError(f"position token must be [N, 1, {self.config.channels}], got {tuple(position_token.shape)}")
        n = position_token.shape[0]
        token = self.token_norm(position_token)
        raw_pose = None
        for _ in range(self.config.num_iteration):
            # 1. Condition on the current estimate (the learnt "empty" pose on the first pass).
            pose_in = self.empty_pose_tokens.expand(n, -1) if raw_pose is None else raw_pose.squeeze(1)
            cond = self.embed_pose(pose_in)
            # 2. The trunk restarts from the same normalised token every iteration.
            h = token
            for block in self.trunk:
                h = block(h, cond)
            delta = self.pose_branch(self.trunk_norm(h.to(token.dtype)))  # [N, 1, pose_dim]
            # 3. Accumulate the raw (pre-activation) pose.
            raw_pose = delta if raw_pose is None else raw_pose + delta
        poses = self._activate(raw_pose.squeeze(1))
        if not self.training:
            if n % num_scenes:
                raise ValueError(f"{n} rows cannot form num_scenes={num_scenes} scenes of equal size")
            grouped = poses.reshape(num_scenes, n // num_scenes, -1)
            identity = self.identity_pose(poses)[None, None].expand(num_scenes, 1, -1)
            poses = torch.cat([identity, grouped[:, 1:]], dim=1).reshape(n, -1)
        return poses

    def _activate(self, raw: torch.Tensor) -> torch.Tensor:
        """Identity on translation and rotation, ReLU on the trailing scale."""
        return torch.cat([raw[..., :-1], F.relu(raw[..., -1:])], dim=-1)

    def identity_pose(self, like: torch.Tensor) -> torch.Tensor:
        """[pose_dim] identity pose (t = 0, unit rotation, s = 1) with `like`'s dtype/device."""
        return torch.tensor(POSE_ENCODINGS[self.config.pose_encoding_type][1], dtype=like.dtype, device=like.device)
