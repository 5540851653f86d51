"""SceneGen sparse-structure flow transformer (arXiv 2508.15769, Sec. 3.2; TRELLIS SS flow + global
feature aggregation + position head).

The N objects of one scene form the batch. Each object's 16^3 x 8 noisy occupancy latent is
patchified into T tokens; the objects talk to each other through the global attention of every
block, and a position token per object is decoded into its pose relative to the query object
(batch row 0).

State-dict names, shapes, order and per-parameter dtypes are exactly those of the official
``SparseStructureFlowModel`` with ``use_global=True`` (see ``ss_flow_scenegen.tsv``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from scenegen_core.models.layers.embeddings import (
    TimestepEmbedder,
    absolute_position_embedding_3d,
    grid_coords_3d,
    patchify_3d,
    unpatchify_3d,
)
from scenegen_core.models.layers.modulated import SceneModulatedCrossBlock
from scenegen_core.models.layers.official_config import official_args
from scenegen_core.models.layers.precision import convert_to_half, resolve_half_dtype, torso_dtype
from scenegen_core.models.position_head import PositionHead, PositionHeadConfig

# Tokens of one DINOv2 ViT-L/14 image at 518 px: cls + 4 registers + 37*37 patches.
DINO_TOKENS_518 = 1374
OUTPUT_NORM_EPS = 1e-5

# Official constructor defaults of the optional arguments (used for keys absent from a json).
_OFFICIAL_DEFAULTS: dict[str, Any] = {
    "num_heads": None,
    "num_head_channels": 64,
    "mlp_ratio": 4,
    "patch_size": 2,
    "pe_mode": "ape",
    "use_fp16": False,
    "share_mod": False,
    "qk_rms_norm": False,
    "qk_rms_norm_cross": False,
    "use_global": False,
    "num_register_tokens": 4,
    "trunk_depth": 4,
    "pose_encoding_type": "absT_quatR_S",
    "num_iteration": 4,
    "use_batch_encoder": False,
}
_OFFICIAL_REQUIRED = ("resolution", "in_channels", "model_channels", "cond_channels", "out_channels", "num_blocks")


@dataclass(frozen=True)
class SSFlowConfig:
    """Hyper-parameters, with the official argument names. Defaults = released SceneGen model.

    resolution: latent grid edge R (16); in/out_channels: latent channels (8); model_channels C;
    cond_channels: channels of the conditioning tokens (must equal C); patch_size p (T = (R/p)^3);
    use_fp16: torso Linear weights in half precision as released (``half_dtype`` picks float16 or
    bfloat16); object_context_tokens: how many leading context tokens are the object's own image
    tokens (official: hard-coded 1374). share_mod / use_global / pe_mode / use_batch_encoder are
    accepted only at the values the SceneGen model uses.
    """

    resolution: int = 16
    in_channels: int = 8
    out_channels: int = 8
    model_channels: int = 1024
    cond_channels: int = 1024
    num_blocks: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    patch_size: int = 1
    pe_mode: str = "ape"
    qk_rms_norm: bool = True
    qk_rms_norm_cross: bool = False
    use_fp16: bool = True
    share_mod: bool = False
    use_global: bool = True
    num_register_tokens: int = 4
    trunk_depth: int = 4
    pose_encoding_type: str = "absT_quatR_S"
    num_iteration: int = 4
    use_batch_encoder: bool = False
    object_context_tokens: int = DINO_TOKENS_518
    half_dtype: str = "float16"

    def __post_init__(self) -> None:
        resolve_half_dtype(self.half_dtype)
        if not self.use_global:
            raise ValueError("only the SceneGen variant (use_global=True) is implemented")
        if self.share_mod:
            raise ValueError("share_mod=True is unsupported (the official global block cannot run with it)")
        if self.pe_mode != "ape":
            raise ValueError(f"pe_mode must be 'ape' (SceneGen's setting), got {self.pe_mode!r}")
        if self.use_batch_encoder:
            raise ValueError("use_batch_encoder=True is unsupported (unused by the official forward pass)")
        if self.num_register_tokens < 1:
            raise ValueError("num_register_tokens must be >= 1 with use_global")
        if self.model_channels != self.cond_channels:
            raise ValueError(
                f"model_channels ({self.model_channels}) must equal cond_channels ({self.cond_channels}): "
                "norm5 is sized by cond_channels but normalises hidden tokens"
            )
        if self.model_channels % self.num_heads:
            raise ValueError(f"model_channels {self.model_channels} not divisible by num_heads {self.num_heads}")
        if self.resolution % self.patch_size:
            raise ValueError(f"resolution {self.resolution} not divisible by patch_size {self.patch_size}")
        if self.object_context_tokens < 1:
            raise ValueError("object_context_tokens must be >= 1")

    @classmethod
    def full(cls) -> "SSFlowConfig":
        """The released SceneGen SS flow (24 blocks, C 1024, 16 heads, trunk 4, 4 iterations, fp16)."""
        return cls()

    @classmethod
    def tiny(cls, **overrides: Any) -> "SSFlowConfig":
        """Test-sized model (R 8, C 64, 2 blocks, 4 heads, trunk 2, 2 iterations), fp32 by default.

        Matches the ``ss_flow_tiny`` golden fixtures (use_fp16=True for the fp16 file)."""
        base = dict(
            resolution=8, model_channels=64, cond_channels=64, num_blocks=2, num_heads=4,
            trunk_depth=2, num_iteration=2, use_fp16=False,
        )
        return cls(**{**base, **overrides})

    @classmethod
    def from_official_json(cls, data: Mapping[str, Any], **overrides: Any) -> "SSFlowConfig":
        """Build from the official model json (``{"name", "args"}``) or its ``args`` dict.

        Missing optional keys take the OFFICIAL constructor defaults (e.g. patch_size 2), not ours;
        ``use_checkpoint`` is accepted and ignored; any other unknown key raises ValueError.
        `overrides` set our extra fields (object_context_tokens, half_dtype) or any other field.
        """
        args = official_args(
            data,
            expected_name="SparseStructureFlowModel",
            required=_OFFICIAL_REQUIRED,
            defaults=_OFFICIAL_DEFAULTS,
            ignored=("use_checkpoint",),
        )
        head_channels = args.pop("num_head_channels")
        if args["num_heads"] is None:
            args["num_heads"] = args["model_channels"] // head_channels
        return cls(**{**args, **overrides})

    @property
    def compute_dtype(self) -> torch.dtype:
        """dtype of the transformer torso's activations and Linear weights."""
        return torso_dtype(self.use_fp16, self.half_dtype)

    @property
    def num_special_tokens(self) -> int:
        """Position token + register tokens prepended to every object's sequence."""
        return 1 + self.num_register_tokens

    @property
    def num_patch_tokens(self) -> int:
        """T = (R / p)^3."""
        return (self.resolution // self.patch_size) ** 3

    @property
    def position_head(self) -> PositionHeadConfig:
        return PositionHeadConfig(
            channels=self.model_channels,
            trunk_depth=self.trunk_depth,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            pose_encoding_type=self.pose_encoding_type,
            num_iteration=self.num_iteration,
        )


@dataclass(frozen=True)
class FlowOutput:
    """velocity: [N, out_channels, R, R, R] float32 (flow-matching v = dx/dt);
    positions: [N, pose_dim] float32, [t(3), q(4, w first, not normalised), s] relative to object 0."""

    velocity: torch.Tensor
    positions: torch.Tensor


class SSFlowModel(nn.Module):
    """SceneGen SparseStructureFlowModel (use_global=True).

    forward(x [N, Cin, R, R, R] float32, t [N] float32 (flow time x 1000), cond [N, L, C] float,
    num_scenes=1) -> FlowOutput. Row 0 of the batch is the query object. In eval mode the query's
    pose is the identity; train mode returns the prediction for every row.

    Several scenes with the same object count run as one batch with ``num_scenes=B``: the N rows
    are B consecutive groups of N/B objects, the first row of each group is that scene's query,
    and the global attention stays inside a group, so the result equals B separate calls.
    """

    def __init__(self, config: SSFlowConfig):
        super().__init__()
        self.config = config
        c = config.model_channels
        # Parameters of this module come first in the state dict, then the pos_emb buffer, then children.
        self.position_token = nn.Parameter(torch.randn(2, 1, c))
        self.register_token = nn.Parameter(torch.randn(2, config.num_register_tokens, c))
        grid = grid_coords_3d(config.resolution // config.patch_size)
        self.register_buffer("pos_emb", absolute_position_embedding_3d(grid, c))
        self.t_embedder = TimestepEmbedder(c)
        self.input_layer = nn.Linear(config.in_channels * config.patch_size**3, c)
        self.position_head = PositionHead(config.position_head)
        self.blocks = nn.ModuleList(
            SceneModulatedCrossBlock(
                c,
                config.cond_channels,
                config.num_heads,
                config.mlp_ratio,
                qk_rms_norm=config.qk_rms_norm,
                qk_rms_norm_cross=config.qk_rms_norm_cross,
                num_special_tokens=config.num_special_tokens,
                object_context_tokens=config.object_context_tokens,
            )
            for _ in range(config.num_blocks)
        )
        self.out_layer = nn.Linear(c, config.out_channels * config.patch_size**3)
        if config.use_fp16:
            convert_to_half(self.blocks, config.compute_dtype)
            convert_to_half(self.position_head.trunk, config.compute_dtype)

    def _check_inputs(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, num_scenes: int) -> None:
        cfg = self.config
        expected_x = (cfg.in_channels, cfg.resolution, cfg.resolution, cfg.resolution)
        if x.ndim != 5 or tuple(x.shape[1:]) != expected_x or x.shape[0] < 1:
            raise ValueError(f"x must be [N, {', '.join(map(str, expected_x))}] with N >= 1, got {tuple(x.shape)}")
        if x.dtype != torch.float32:
            raise ValueError(f"x must be float32 (the torso dtype is chosen by the config), got {x.dtype}")
        n = x.shape[0]
        if t.shape != (n,):
            raise ValueError(f"t must be [N] = [{n}] (one flow time x 1000 per object), got {tuple(t.shape)}")
        if cond.ndim != 3 or cond.shape[0] != n or cond.shape[2] != cfg.cond_channels:
            raise ValueError(f"cond must be [{n}, L, {cfg.cond_channels}], got {tuple(cond.shape)}")
        if cond.shape[1] < cfg.object_context_tokens:
            raise ValueError(
                f"cond has {cond.shape[1]} tokens, fewer than object_context_tokens={cfg.object_context_tokens}"
            )
        if num_scenes < 1 or n % num_scenes:
            raise ValueError(f"{n} objects cannot form num_scenes={num_scenes} scenes of equal size")

    def _special_tokens(self, n: int, num_scenes: int) -> torch.Tensor:
        """[N, 1 + n_reg, C]: index 0 of the learnt tokens for each scene's query object (its first
        row), index 1 for all others."""
        per_scene = n // num_scenes
        position = torch.cat([self.position_token[:1], self.position_token[1:].expand(per_scene - 1, -1, -1)])
        registers = torch.cat([self.register_token[:1], self.register_token[1:].expand(per_scene - 1, -1, -1)])
        return torch.cat([position, registers], dim=1).repeat(num_scenes, 1, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, num_scenes: int = 1) -> FlowOutput:
        self._check_inputs(x, t, cond, num_scenes)
        cfg = self.config
        n, grid = x.shape[0], cfg.resolution // cfg.patch_size
        # 1. Patchify to [N, T, Cin p^3] (x slowest, z fastest), embed, add the fixed 3D position embedding.
        h = patchify_3d(x, cfg.patch_size).flatten(2).transpose(1, 2)
        h = self.input_layer(h) + self.pos_emb[None]
        # 2. Prepend position + register tokens -> [N, 5 + T, C].
        h = torch.cat([self._special_tokens(n, num_scenes), h], dim=1)
        t_emb = self.t_embedder(t)
        # 3. Transformer torso in the compute dtype (fp16 as released).
        dtype = cfg.compute_dtype
        h, t_emb, context = h.to(dtype), t_emb.to(dtype), cond.to(dtype)
        for block in self.blocks:
            h = block(h, t_emb, context, num_scenes)
        h = h.to(x.dtype)
        # 4. Pose from the position token; velocity from the patch tokens.
        positions = self.position_head(h[:, :1], num_scenes)
        h = F.layer_norm(h[:, cfg.num_special_tokens :], h.shape[-1:], eps=OUTPUT_NORM_EPS)
        h = self.out_layer(h).transpose(1, 2).reshape(n, -1, grid, grid, grid)
        return FlowOutput(velocity=unpatchify_3d(h, cfg.patch_size).contiguous(), positions=positions)
