"""Pictures of predictions: mesh overlays on camera images and one summary figure per scene.

Rendering reuses the synthetic world's ray caster (`scenegen_core.world.render.render_meshes`);
figures are composed with Pillow (matplotlib is not a dependency of the project).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from scenegen_core.types import CameraIntrinsics, Mesh
from scenegen_core.world.render import BACKGROUND_ID, render_meshes

# Distinct, saturated colours (RGB in [0, 1]) for object k; cycles after 10 objects.
PALETTE = np.array(
    [
        [0.90, 0.10, 0.10], [0.10, 0.60, 0.95], [0.20, 0.80, 0.20], [0.95, 0.65, 0.05], [0.70, 0.25, 0.90],
        [0.05, 0.80, 0.75], [0.95, 0.40, 0.70], [0.55, 0.35, 0.15], [0.60, 0.80, 0.10], [0.30, 0.30, 0.85],
    ]
)  # fmt: skip
UNMATCHED_COLOR = (0.5, 0.5, 0.5)


def palette_color(index: int | None) -> tuple[float, float, float]:
    """RGB in [0, 1] of object `index`; grey for None (a prediction matched to no true object)."""
    if index is None:
        return UNMATCHED_COLOR
    return tuple(float(c) for c in PALETTE[index % len(PALETTE)])


def _outline(ids: np.ndarray) -> np.ndarray:
    """[H, W] bool pixels of an instance (id >= 0) that touch a different id (4-neighbourhood)."""
    edge = np.zeros(ids.shape, dtype=bool)
    edge[1:] |= ids[1:] != ids[:-1]
    edge[:-1] |= ids[:-1] != ids[1:]
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    return edge & (ids >= 0)


def _blend_instances(rgb: np.ndarray, ids: np.ndarray, fill: np.ndarray, colors: np.ndarray, alpha: float) -> np.ndarray:
    """Alpha-blend `fill` ([H, W, 3] uint8) over rgb where ids >= 0 and draw outlines in colors[id]."""
    out = rgb.astype(np.float64)
    inside = ids >= 0
    out[inside] = (1 - alpha) * out[inside] + alpha * fill[inside].astype(np.float64)
    edge = _outline(ids)
    out[edge] = 255.0 * colors[ids[edge]]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _check_colors(colors, count: int) -> np.ndarray:
    colors = np.asarray(colors, dtype=np.float64).reshape(-1, 3) if count else np.zeros((0, 3))
    if colors.shape != (count, 3) or np.any((colors < 0) | (colors > 1)):
        raise ValueError(f"colors must be [{count}, 3] RGB in [0, 1], got shape {colors.shape}")
    return colors


def overlay(
    rgb: np.ndarray,
    meshes_in_camera_frame: Sequence[Mesh],
    colors: np.ndarray | Sequence[Sequence[float]],
    intrinsics: CameraIntrinsics,
    alpha: float = 0.55,
) -> np.ndarray:
    """Shaded posed meshes alpha-blended over the image, with one-pixel outlines per mesh.

    rgb: [H, W, 3] uint8 camera image. meshes_in_camera_frame: meshes in this camera's optical
    frame, metres. colors: [N, 3] float RGB in [0, 1], one per mesh. Returns [H, W, 3] uint8.
    """
    rgb = np.asarray(rgb)
    if rgb.shape != (intrinsics.height, intrinsics.width, 3) or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be [{intrinsics.height}, {intrinsics.width}, 3] uint8, got {rgb.shape} {rgb.dtype}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    colors = _check_colors(colors, len(meshes_in_camera_frame))
    if not meshes_in_camera_frame:
        return rgb.copy()
    render = render_meshes(list(meshes_in_camera_frame), colors, intrinsics, np.eye(4))
    return _blend_instances(rgb, render.instance_ids, render.rgb, colors, alpha)


def mask_overlay(rgb: np.ndarray, masks: np.ndarray, colors: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """[K, H, W] bool masks painted over [H, W, 3] uint8 rgb in colors [K, 3] (later masks on top)."""
    masks = np.asarray(masks, dtype=bool)
    colors = _check_colors(colors, len(masks))
    ids = np.full(rgb.shape[:2], BACKGROUND_ID, dtype=np.int64)
    for k, mask in enumerate(masks):
        ids[mask] = k
    fill = np.zeros_like(rgb)
    fill[ids >= 0] = np.round(255 * colors[ids[ids >= 0]]).astype(np.uint8)
    return _blend_instances(rgb, ids, fill, colors, alpha)


def orbit_camera(meshes: Sequence[Mesh], degrees: float) -> np.ndarray:
    """[4, 4] camera_from_frame of a camera orbited by `degrees` about the image's vertical axis
    through the centre of the meshes' bounding box (frame = the original camera's optical frame)."""
    bounds = np.array([m.bounds() for m in meshes if not m.is_empty]).reshape(-1, 2, 3)
    centre = 0.5 * (bounds[:, 0].min(0) + bounds[:, 1].max(0)) if len(bounds) else np.zeros(3)
    angle = math.radians(degrees)
    # Rotation about the optical frame's y axis (pointing down in the image).
    rotation = np.array([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    frame_from_camera = np.eye(4)
    frame_from_camera[:3, :3] = rotation
    frame_from_camera[:3, 3] = centre - rotation @ centre
    return np.linalg.inv(frame_from_camera)


def _render_panel(meshes: Sequence[Mesh], colors: np.ndarray, intrinsics: CameraIntrinsics, camera_from_frame) -> np.ndarray:
    if not meshes:
        return np.full((intrinsics.height, intrinsics.width, 3), 255, np.uint8)
    return render_meshes(list(meshes), colors, intrinsics, camera_from_frame, background_rgb=(1.0, 1.0, 1.0)).rgb


def _label(panel: np.ndarray, text: str) -> Image.Image:
    image = Image.fromarray(panel)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, 7 * len(text) + 6, 14], fill=(0, 0, 0))
    draw.text((3, 2), text, fill=(255, 255, 255))
    return image


def scene_figure(
    rgb: np.ndarray,
    intrinsics: CameraIntrinsics,
    gt_masks: np.ndarray,
    gt_meshes: Sequence[Mesh],
    pred_masks: np.ndarray,
    pred_meshes: Sequence[Mesh],
    pred_gt_index: Sequence[int | None],
    title: str = "",
    side_view_degrees: float = 60.0,
) -> np.ndarray:
    """One summary picture: 2 rows x 3 panels of the camera's size.

    Row 1: input image | true masks | predicted masks. Row 2: predicted meshes over the image |
    true meshes from a second viewpoint | predicted meshes from that viewpoint. The second
    viewpoint orbits `side_view_degrees` about the image's vertical axis. Colours: true object k
    in palette_color(k); a prediction takes the colour of its matched true object
    (pred_gt_index), grey when unmatched. Meshes in the camera optical frame, metres; masks
    [K, H, W] / [P, H, W] bool. Returns [2H + title bar, 3W, 3] uint8.
    """
    if len(pred_meshes) != len(pred_gt_index) or len(pred_masks) != len(pred_meshes):
        raise ValueError("pred_masks, pred_meshes and pred_gt_index must have one entry per prediction")
    gt_colors = np.array([palette_color(k) for k in range(len(gt_meshes))]).reshape(-1, 3)
    pred_colors = np.array([palette_color(k) for k in pred_gt_index]).reshape(-1, 3)
    side = orbit_camera(list(gt_meshes) + list(pred_meshes), side_view_degrees)
    panels = [
        _label(rgb, "input"),
        _label(mask_overlay(rgb, gt_masks, gt_colors), "true masks"),
        _label(mask_overlay(rgb, pred_masks, pred_colors), "predicted masks"),
        _label(overlay(rgb, pred_meshes, pred_colors, intrinsics), "predicted meshes"),
        _label(_render_panel(gt_meshes, gt_colors, intrinsics, side), f"true, {side_view_degrees:g} deg"),
        _label(_render_panel(pred_meshes, pred_colors, intrinsics, side), f"predicted, {side_view_degrees:g} deg"),
    ]
    height, width = rgb.shape[:2]
    bar = 16 if title else 0
    figure = Image.new("RGB", (3 * width, 2 * height + bar), (255, 255, 255))
    if title:
        ImageDraw.Draw(figure).text((3, 2), title, fill=(0, 0, 0))
    for i, panel in enumerate(panels):
        figure.paste(panel, ((i % 3) * width, bar + (i // 3) * height))
    return np.asarray(figure)
