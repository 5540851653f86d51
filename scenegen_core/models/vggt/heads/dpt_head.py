"""DPT dense head of VGGT (depth, point map, and the track head's feature extractor).

Four aggregator layers -> per-layer 1x1 projection and resampling to strides 4, 8, 14, 28 (in
patch units: x4, x2, x1, x1/2) -> RefineNet-style fusion from coarse to fine -> upsampling to the
image size -> either features or a per-pixel prediction + confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from scenegen_core.models.vggt.layers.sincos import sincos_grid_embedding


@dataclass(frozen=True)
class DPTHeadConfig:
    """dim_in = 2 * aggregator embed_dim. activation: "inv_log" | "exp" | "linear" for the
    prediction channels; conf_activation: "expp1" (1 + exp). feature_only: stop at the fused
    features (no output_conv2). down_ratio: output resolution divisor. Defaults = VGGT-1B point head."""

    dim_in: int = 2048
    patch_size: int = 14
    output_dim: int = 4
    activation: str = "inv_log"
    conf_activation: str = "expp1"
    features: int = 256
    out_channels: tuple[int, int, int, int] = (256, 512, 1024, 1024)
    intermediate_layer_idx: tuple[int, int, int, int] = (4, 11, 17, 23)
    pos_embed: bool = True
    feature_only: bool = False
    down_ratio: int = 1

    def __post_init__(self) -> None:
        if self.activation not in ("inv_log", "exp", "linear"):
            raise ValueError(f"unknown DPT activation {self.activation!r}")
        if self.conf_activation != "expp1":
            raise ValueError(f"unknown DPT confidence activation {self.conf_activation!r}")


@dataclass(frozen=True)
class DPTOutput:
    """prediction: [B, S, H, W, output_dim - 1] float32 (depth in scene units, or 3D points in the
    first camera's frame); confidence: [B, S, H, W] float32, >= 1."""

    prediction: torch.Tensor
    confidence: torch.Tensor


class ResidualConvUnit(nn.Module):
    """relu -> conv3x3 -> relu -> conv3x3, plus the skip. The official unit applies an in-place
    ReLU to its input, so the skip it adds is relu(x), not x; reproduced here."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = F.relu(x)
        return self.conv2(F.relu(self.conv1(skip))) + skip


class FeatureFusionBlock(nn.Module):
    """(x [+ unit1(skip)]) -> unit2 -> bilinear resize (align_corners) -> 1x1 conv."""

    def __init__(self, features: int, has_residual: bool = True):
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, kernel_size=1)
        self.resConfUnit1 = ResidualConvUnit(features) if has_residual else None
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None, size=None) -> torch.Tensor:
        if self.resConfUnit1 is not None:
            if skip is None:
                raise ValueError("this fusion block needs a skip feature map")
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            size = (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)
        return self.out_conv(x)


def _uv_embedding(channels: int, height: int, width: int, aspect: float, device, dtype) -> torch.Tensor:
    """[channels, height, width] sin/cos embedding of a centred UV grid (span normalised by the
    diagonal for the given width/height aspect), omega_0 = 100, layout [sin u, cos u, sin v, cos v]."""
    diag = (aspect**2 + 1.0) ** 0.5
    span_u, span_v = aspect / diag, 1.0 / diag
    edge_u, edge_v = span_u * (width - 1) / width, span_v * (height - 1) / height
    u = torch.linspace(-edge_u, edge_u, width, dtype=dtype, device=device)
    v = torch.linspace(-edge_v, edge_v, height, dtype=dtype, device=device)
    return sincos_grid_embedding(u, v, channels, base=100.0).to(dtype)


class DPTHead(nn.Module):
    """Parameter names match ``depth_head.* / point_head.* / track_head.feature_extractor.*``."""

    def __init__(self, config: DPTHeadConfig):
        super().__init__()
        self.config = config
        oc = config.out_channels
        self.norm = nn.LayerNorm(config.dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(config.dim_in, c, kernel_size=1) for c in oc)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(oc[0], oc[0], kernel_size=4, stride=4),
                nn.ConvTranspose2d(oc[1], oc[1], kernel_size=2, stride=2),
                nn.Identity(),
                nn.Conv2d(oc[3], oc[3], kernel_size=3, stride=2, padding=1),
            ]
        )
        feats = config.features
        self.scratch = nn.Module()
        for i, c in enumerate(oc, start=1):
            setattr(self.scratch, f"layer{i}_rn", nn.Conv2d(c, feats, kernel_size=3, padding=1, bias=False))
        self.scratch.refinenet1 = FeatureFusionBlock(feats)
        self.scratch.refinenet2 = FeatureFusionBlock(feats)
        self.scratch.refinenet3 = FeatureFusionBlock(feats)
        self.scratch.refinenet4 = FeatureFusionBlock(feats, has_residual=False)
        if config.feature_only:
            self.scratch.output_conv1 = nn.Conv2d(feats, feats, kernel_size=3, padding=1)
        else:
            self.scratch.output_conv1 = nn.Conv2d(feats, feats // 2, kernel_size=3, padding=1)
            self.scratch.output_conv2 = nn.Sequential(
                nn.Conv2d(feats // 2, 32, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, config.output_dim, kernel_size=1),
            )

    def _with_pos_embed(self, x: torch.Tensor, image_w: int, image_h: int) -> torch.Tensor:
        emb = _uv_embedding(x.shape[1], x.shape[-2], x.shape[-1], image_w / image_h, x.device, x.dtype)
        return x + 0.1 * emb[None]

    def features(self, layers: tuple[torch.Tensor, ...], image_hw: tuple[int, int], patch_start_idx: int):
        """Fused feature map [B, S, F', H/down, W/down] (F' = features if feature_only else features/2).

        layers: aggregator outputs [B, S, P, dim_in]; image_hw: (H, W) of the input images.
        """
        cfg = self.config
        height, width = image_hw
        grid_h, grid_w = height // cfg.patch_size, width // cfg.patch_size
        if max(cfg.intermediate_layer_idx) >= len(layers):
            raise ValueError(f"DPT head reads layers {cfg.intermediate_layer_idx}, aggregator has {len(layers)}")
        batch, frames = layers[0].shape[:2]
        maps = []
        for project, resize, layer_idx in zip(self.projects, self.resize_layers, cfg.intermediate_layer_idx):
            x = self.norm(layers[layer_idx][:, :, patch_start_idx:].reshape(batch * frames, grid_h * grid_w, -1))
            x = project(x.permute(0, 2, 1).reshape(batch * frames, -1, grid_h, grid_w))
            if cfg.pos_embed:
                x = self._with_pos_embed(x, width, height)
            maps.append(resize(x))

        # Coarse-to-fine fusion: each refinenet upsamples to the next finer map's size.
        rn = [getattr(self.scratch, f"layer{i}_rn")(m) for i, m in enumerate(maps, start=1)]
        out = self.scratch.refinenet4(rn[3], size=rn[2].shape[2:])
        out = self.scratch.refinenet3(out, rn[2], size=rn[1].shape[2:])
        out = self.scratch.refinenet2(out, rn[1], size=rn[0].shape[2:])
        out = self.scratch.output_conv1(self.scratch.refinenet1(out, rn[0]))

        size = (int(grid_h * cfg.patch_size / cfg.down_ratio), int(grid_w * cfg.patch_size / cfg.down_ratio))
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        if cfg.pos_embed:
            out = self._with_pos_embed(out, width, height)
        return out.reshape(batch, frames, *out.shape[1:])

    def forward(self, layers: tuple[torch.Tensor, ...], image_hw: tuple[int, int], patch_start_idx: int) -> DPTOutput:
        if self.config.feature_only:
            raise ValueError("a feature_only DPT head has no prediction layers; call features()")
        fused = self.features(layers, image_hw, patch_start_idx)
        batch, frames = fused.shape[:2]
        out = self.scratch.output_conv2(fused.flatten(0, 1)).permute(0, 2, 3, 1)
        values, conf = out[..., :-1], out[..., -1]
        if self.config.activation == "inv_log":
            values = torch.sign(values) * torch.expm1(values.abs())
        elif self.config.activation == "exp":
            values = values.exp()
        return DPTOutput(
            prediction=values.reshape(batch, frames, *values.shape[1:]),
            confidence=(1 + conf.exp()).reshape(batch, frames, *conf.shape[1:]),
        )
