"""Per-object conditioning tokens of SceneGen's sparse-structure flow model.

For one view and N objects the context of object n is, concatenated along tokens
(full size: D = 1374 DINOv2 tokens, P = 1374 VGGT tokens, C = 1024, L = 6870):

    [0, D)          DINOv2(object n's crop)
    [D, 2D)         DINOv2(object n's mask image)
    [2D, 3D)        DINOv2(scene image)                       same for every object
    [3D, 3D+P)      VGGT last layer, channels [0, C)  (frame attention)   same for every object
    [3D+P, 3D+2P)   VGGT last layer, channels [C, 2C) (global attention)  same for every object

Only the first D tokens ("object context") feed the flow model's object-level cross-attention.
Multi-view: VGGT runs once over all V views as one scene ([1, V, 3, T, T], so the views attend to
each other); view v's conditioning uses view v's images and VGGT frame v.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from scenegen_core.models.dinov2 import DinoEncoder
from scenegen_core.models.vggt.aggregator import VGGTAggregator
from scenegen_core.preprocessing import (
    crop_object_image,
    dino_images_u8,
    make_object_rgba,
    mask_image,
    normalize_dino_pixels,
    preprocess_vggt_image,
)
from scenegen_core.runtime import host_to_device


@dataclass(frozen=True)
class Conditioning:
    """tokens: [V, N, L, C] float32, views x objects (object 0 = query) x tokens x channels.
    object_context_tokens: D, the split index between object context and scene context
    (1374 at full size). vggt_tokens: P, tokens per VGGT half."""

    tokens: torch.Tensor
    object_context_tokens: int
    vggt_tokens: int

    def __post_init__(self) -> None:
        if self.tokens.ndim != 4:
            raise ValueError(f"conditioning tokens must be [V, N, L, C], got {tuple(self.tokens.shape)}")
        expected = 3 * self.object_context_tokens + 2 * self.vggt_tokens
        if self.tokens.shape[2] != expected:
            raise ValueError(f"conditioning has {self.tokens.shape[2]} tokens, layout implies {expected}")

    @property
    def num_views(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def num_objects(self) -> int:
        return int(self.tokens.shape[1])

    def segment(self, name: str) -> slice:
        """Token slice of one segment: "object", "mask", "scene", "vggt_frame" or "vggt_global"."""
        d, p = self.object_context_tokens, self.vggt_tokens
        bounds = {
            "object": (0, d),
            "mask": (d, 2 * d),
            "scene": (2 * d, 3 * d),
            "vggt_frame": (3 * d, 3 * d + p),
            "vggt_global": (3 * d + p, 3 * d + 2 * p),
        }
        if name not in bounds:
            raise ValueError(f"unknown conditioning segment {name!r}; one of {sorted(bounds)}")
        return slice(*bounds[name])


def split_vggt_channels(features: torch.Tensor, embed_dim: int) -> torch.Tensor:
    """[..., P, 2C] VGGT layer tokens -> [..., 2P, C]: channels [0, C) of all tokens, then
    channels [C, 2C) of all tokens (SceneGen's split, C = 1024 hard-coded there)."""
    if features.shape[-1] != 2 * embed_dim:
        raise ValueError(f"VGGT features have {features.shape[-1]} channels, expected {2 * embed_dim}")
    return torch.cat([features[..., :embed_dim], features[..., embed_dim:]], dim=-2)


def order_objects_by_mask_area(masks: np.ndarray) -> np.ndarray:
    """Official query rule: objects sorted by mask pixel count, largest first (ties keep input
    order). masks [N, H, W] bool -> permutation [N] int64 (new position i holds object perm[i])."""
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.dtype != np.bool_:
        raise ValueError(f"masks must be [N, H, W] bool, got {masks.shape} {masks.dtype}")
    areas = masks.reshape(len(masks), -1).sum(axis=1)
    return np.argsort(-areas, kind="stable").astype(np.int64)


def _module_device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def _check_views(rgbs: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> int:
    if len(rgbs) == 0 or len(rgbs) != len(masks):
        raise ValueError(f"need one mask stack per view: {len(rgbs)} images, {len(masks)} mask stacks")
    counts = set()
    for v, (rgb, view_masks) in enumerate(zip(rgbs, masks)):
        rgb, view_masks = np.asarray(rgb), np.asarray(view_masks)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"view {v}: rgb must be [H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")
        if view_masks.ndim != 3 or view_masks.shape[1:] != rgb.shape[:2] or view_masks.dtype != np.bool_:
            expected = f"[N, {rgb.shape[0]}, {rgb.shape[1]}] bool"
            raise ValueError(f"view {v}: masks must be {expected}, got {view_masks.shape} {view_masks.dtype}")
        for n, mask in enumerate(view_masks):
            if not mask.any():
                raise ValueError(f"view {v}: mask of object {n} is empty")
        counts.add(len(view_masks))
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"every view needs the same, non-zero number of object masks, got {sorted(counts)}")
    return counts.pop()


@dataclass(frozen=True)
class ConditioningImages:
    """Encoder inputs of B scenes x V views x N objects, as uint8 (compact enough to cache for training).

    dino: [B, V, 2N + 1, S, S, 3] uint8 RGB at the DINOv2 size S: N object crops, N mask images and
    the scene image, in that order. vggt: [B, V, T, T, 3] uint8 VGGT-preprocessed scene images
    (`preprocess_vggt_image` x 255, exact).
    """

    dino: torch.Tensor
    vggt: torch.Tensor

    def __post_init__(self) -> None:
        if self.dino.ndim != 6 or self.dino.dtype != torch.uint8 or self.dino.shape[2] % 2 != 1:
            raise ValueError(f"dino images must be [B, V, 2N+1, S, S, 3] uint8, got {tuple(self.dino.shape)} {self.dino.dtype}")
        if self.vggt.ndim != 5 or self.vggt.dtype != torch.uint8 or self.vggt.shape[:2] != self.dino.shape[:2]:
            raise ValueError(f"vggt images must be [B, V, T, T, 3] uint8 matching dino's [B, V], got {tuple(self.vggt.shape)}")

    @property
    def num_objects(self) -> int:
        return (self.dino.shape[2] - 1) // 2


def prepare_conditioning_images(
    rgbs: Sequence[np.ndarray], masks: Sequence[np.ndarray], dino_size: int, vggt_size: int, vggt_patch: int
) -> ConditioningImages:
    """The official preprocessing of one scene (B = 1): rgbs V x [H, W, 3] uint8, masks V x [N, H, W]
    bool (validated as in `build_multiview_conditioning`)."""
    _check_views(rgbs, masks)
    dino, vggt = [], []
    for rgb, view_masks in zip(rgbs, masks):
        crops = [crop_object_image(make_object_rgba(rgb, mask), dino_size) for mask in view_masks]
        dino.append(dino_images_u8([*crops, *(mask_image(mask) for mask in view_masks), rgb], dino_size))
        pixels = preprocess_vggt_image(rgb, vggt_size, vggt_patch)[0, 0]
        vggt.append(torch.round(pixels * 255).to(torch.uint8).permute(1, 2, 0))
    return ConditioningImages(dino=torch.stack(dino)[None], vggt=torch.stack(vggt)[None])


def encode_condition_tokens(dino: DinoEncoder, vggt: VGGTAggregator, images: ConditioningImages) -> torch.Tensor:
    """Differentiable conditioning of B scenes: tokens [B, V, N, L, C] float32 on the DINO encoder's device.

    1. VGGT on the V views of each scene together ([B, V, 3, T, T]; views attend to each other,
       scenes never mix) -> last layer [B, V, P, 2C] -> [B, V, 2P, C].
    2. DINOv2 on every crop, mask image and scene image in one batch.
    3. Per object: [own crop, own mask, scene, VGGT frame half, VGGT global half] (module docstring).
    """
    embed_dim = vggt.config.embed_dim
    if dino.config.hidden_size != embed_dim:
        raise ValueError(f"DINOv2 width {dino.config.hidden_size} != VGGT embed dim {embed_dim}")
    batch, views, images_per_view = images.dino.shape[:3]
    n = images.num_objects
    vggt_pixels = images.vggt.to(_module_device(vggt)).permute(0, 1, 4, 2, 3).float() / 255
    vggt_tokens = split_vggt_channels(vggt(vggt_pixels).last, embed_dim)
    device = _module_device(dino)
    features = dino(normalize_dino_pixels(images.dino.to(device).flatten(0, 2)))
    features = features.unflatten(0, (batch, views, images_per_view))
    objects, mask_feats, scene = features[:, :, :n], features[:, :, n : 2 * n], features[:, :, 2 * n :]
    shared = torch.cat([scene, vggt_tokens.to(device, features.dtype)[:, :, None]], dim=3)
    return torch.cat([objects, mask_feats, shared.expand(-1, -1, n, -1, -1)], dim=3)


@torch.inference_mode()
def build_multiview_conditioning(
    dino: DinoEncoder,
    vggt: VGGTAggregator,
    rgbs: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
) -> Conditioning:
    """Conditioning for V views of one scene.

    rgbs: V images [H_v, W_v, 3] uint8. masks: V stacks [N, H_v, W_v] bool, object n is the same
    object in every view and in the order the flow model wants (object 0 = query; see
    `order_objects_by_mask_area`). Every mask must be non-empty (ValueError otherwise).
    DINOv2 channels must equal the VGGT embed dim. Returns tokens on the DINO encoder's device.
    All views go through each encoder in one batch (`encode_condition_tokens`); the uint8 images
    reach the GPU from pinned memory (`runtime.host_to_device`).
    """
    images = prepare_conditioning_images(rgbs, masks, dino.config.image_size, vggt.config.img_size, vggt.config.patch_size)
    images = ConditioningImages(
        dino=host_to_device(images.dino, _module_device(dino)), vggt=host_to_device(images.vggt, _module_device(vggt))
    )
    tokens = encode_condition_tokens(dino, vggt, images)[0]
    return Conditioning(tokens=tokens, object_context_tokens=dino.num_tokens, vggt_tokens=(tokens.shape[2] - 3 * dino.num_tokens) // 2)


def build_conditioning(dino: DinoEncoder, vggt: VGGTAggregator, rgb: np.ndarray, masks: np.ndarray) -> Conditioning:
    """Single-view conditioning (the official `get_cond`): tokens [1, N, L, C]."""
    return build_multiview_conditioning(dino, vggt, [rgb], [masks])
