"""Conditioning token layout: order, shapes and per-view content on tiny random encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scenegen_core.conditioning import (
    Conditioning,
    build_conditioning,
    build_multiview_conditioning,
    order_objects_by_mask_area,
    split_vggt_channels,
)
from scenegen_core.models.dinov2 import DinoEncoder, DinoEncoderConfig
from scenegen_core.models.vggt import VGGTAggregator, VGGTAggregatorConfig
from scenegen_core.preprocessing import (
    crop_object_image,
    dino_pixel_values,
    make_object_rgba,
    mask_image,
    preprocess_vggt_image,
)

SIZE = 56  # 4x4 patches -> 21 DINO tokens and 21 VGGT tokens per frame
D = P = 21
C = 64
ATOL = 1e-5


@pytest.fixture(scope="module")
def encoders():
    torch.manual_seed(0)
    dino = DinoEncoder(DinoEncoderConfig.tiny(image_size=SIZE)).eval()
    vggt = VGGTAggregator(VGGTAggregatorConfig.tiny(img_size=SIZE)).eval()
    with torch.no_grad():  # non-trivial special tokens so that frame slots differ visibly
        vggt.camera_token.normal_()
        vggt.register_token.normal_()
    return dino, vggt


def make_view(seed: int, height: int = 40, width: int = 60):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    masks = np.zeros((3, height, width), dtype=bool)
    masks[0, 5:15, 5:20] = True
    masks[1, 10:35, 25:55] = True
    masks[2, 20:30, 2:12] = True
    return rgb, masks


def dino_features(dino, images):
    with torch.no_grad():
        return dino(dino_pixel_values(images, SIZE))


def test_single_view_layout_matches_each_source(encoders):
    dino, vggt = encoders
    rgb, masks = make_view(0)
    cond = build_conditioning(dino, vggt, rgb, masks)
    assert cond.tokens.shape == (1, 3, 3 * D + 2 * P, C) and cond.tokens.dtype == torch.float32
    assert cond.object_context_tokens == D and cond.vggt_tokens == P
    tokens = cond.tokens[0]

    crops = [crop_object_image(make_object_rgba(rgb, m), SIZE) for m in masks]
    torch.testing.assert_close(tokens[:, cond.segment("object")], dino_features(dino, crops), atol=ATOL, rtol=0)
    mask_feats = dino_features(dino, [mask_image(m) for m in masks])
    torch.testing.assert_close(tokens[:, cond.segment("mask")], mask_feats, atol=ATOL, rtol=0)
    scene = dino_features(dino, [rgb])
    vggt_last = vggt.encode_scene(preprocess_vggt_image(rgb, SIZE))[0]  # [P, 2C]
    for n in range(3):
        torch.testing.assert_close(tokens[n, cond.segment("scene")], scene[0], atol=ATOL, rtol=0)
        torch.testing.assert_close(tokens[n, cond.segment("vggt_frame")], vggt_last[:, :C], atol=ATOL, rtol=0)
        torch.testing.assert_close(tokens[n, cond.segment("vggt_global")], vggt_last[:, C:], atol=ATOL, rtol=0)
    # Object segments really are per object.
    assert (tokens[0, :D] - tokens[1, :D]).abs().max() > 1e-2


def test_multiview_uses_each_views_images_and_joint_vggt(encoders):
    dino, vggt = encoders
    (rgb0, masks0), (rgb1, masks1) = make_view(1), make_view(2, height=50, width=44)
    cond = build_multiview_conditioning(dino, vggt, [rgb0, rgb1], [masks0, masks1])
    assert cond.tokens.shape == (2, 3, 3 * D + 2 * P, C)
    joint = vggt.encode_scene(torch.cat([preprocess_vggt_image(rgb0, SIZE), preprocess_vggt_image(rgb1, SIZE)], dim=1))
    for v, rgb in enumerate((rgb0, rgb1)):
        scene = dino_features(dino, [rgb])[0]
        torch.testing.assert_close(cond.tokens[v, 0, cond.segment("scene")], scene, atol=ATOL, rtol=0)
        expected = split_vggt_channels(joint[v], C)
        torch.testing.assert_close(cond.tokens[v, 2, 3 * D :], expected, atol=ATOL, rtol=0)
    single = build_conditioning(dino, vggt, rgb1, masks1)
    # DINO parts of view 1 do not depend on the other view; VGGT parts do (global attention, and
    # view 1 is not the first frame of the joint sequence).
    torch.testing.assert_close(cond.tokens[1, :, : 3 * D], single.tokens[0, :, : 3 * D], atol=ATOL, rtol=0)
    assert (cond.tokens[1, :, 3 * D :] - single.tokens[0, :, 3 * D :]).abs().max() > 1e-2


def test_full_size_layout_matches_the_readme_table():
    layout = Conditioning(tokens=torch.zeros(1, 1, 6870, 1), object_context_tokens=1374, vggt_tokens=1374)
    assert layout.segment("object") == slice(0, 1374)
    assert layout.segment("mask") == slice(1374, 2748)
    assert layout.segment("scene") == slice(2748, 4122)
    assert layout.segment("vggt_frame") == slice(4122, 5496)
    assert layout.segment("vggt_global") == slice(5496, 6870)
    assert DinoEncoderConfig.full().num_tokens == VGGTAggregatorConfig.full().tokens_per_frame == 1374
    with pytest.raises(ValueError, match="layout implies"):
        Conditioning(tokens=torch.zeros(1, 1, 6869, 1), object_context_tokens=1374, vggt_tokens=1374)
    with pytest.raises(ValueError, match="unknown conditioning segment"):
        layout.segment("depth")


def test_order_by_mask_area_is_largest_first_and_stable():
    masks = np.zeros((4, 10, 10), dtype=bool)
    masks[0, :1, :5] = True  # 5 px
    masks[1, :2, :10] = True  # 20 px
    masks[2, 5:7, :] = True  # 20 px (tie with 1: keeps input order)
    masks[3, 9, 9] = True  # 1 px
    order = order_objects_by_mask_area(masks)
    assert order.dtype == np.int64
    assert order.tolist() == [1, 2, 0, 3]
    with pytest.raises(ValueError, match="bool"):
        order_objects_by_mask_area(masks.astype(np.uint8))


def test_bad_inputs_raise_clear_errors(encoders):
    dino, vggt = encoders
    rgb, masks = make_view(3)
    empty = masks.copy()
    empty[1] = False
    with pytest.raises(ValueError, match="object 1 is empty"):
        build_conditioning(dino, vggt, rgb, empty)
    with pytest.raises(ValueError, match="same, non-zero number"):
        build_multiview_conditioning(dino, vggt, [rgb, rgb], [masks, masks[:2]])
    with pytest.raises(ValueError, match="one mask stack per view"):
        build_multiview_conditioning(dino, vggt, [rgb], [masks, masks])
    wide_dino = DinoEncoder(DinoEncoderConfig(hidden_size=32, num_layers=1, num_heads=2, image_size=SIZE))
    with pytest.raises(ValueError, match="VGGT embed dim"):
        build_conditioning(wide_dino, vggt, rgb, masks)


def load_sample_masks(scene_dir) -> tuple[np.ndarray, list[int]]:
    """Bool masks of a 3D-FUTURE sample and the official per-mask count (np.count_nonzero of the RGB PNG)."""
    from PIL import Image

    files = sorted(scene_dir.glob("*_mask.png"))
    arrays = [np.asarray(Image.open(f)) for f in files]
    return np.stack([a.max(axis=2) > 127 for a in arrays]), [int(np.count_nonzero(a)) for a in arrays]


def test_real_samples_query_order_and_conditioning(samples_dir, encoders):
    from PIL import Image

    scenes = sorted(p for p in samples_dir.iterdir() if p.is_dir())
    assert scenes
    for scene_dir in scenes:
        masks, official_counts = load_sample_masks(scene_dir)
        official = sorted(range(len(official_counts)), key=lambda i: official_counts[i], reverse=True)
        assert order_objects_by_mask_area(masks).tolist() == official
    dino, vggt = encoders
    masks, _ = load_sample_masks(scenes[0])
    rgb = np.asarray(Image.open(scenes[0] / "scene.jpg").convert("RGB"))
    order = order_objects_by_mask_area(masks)
    cond = build_conditioning(dino, vggt, rgb, masks[order])
    assert cond.tokens.shape == (1, len(masks), 3 * D + 2 * P, C)
    assert torch.isfinite(cond.tokens).all()
    # Every DINO segment is layer-normed without affine (eps 1e-5): per-token mean 0 and
    # variance var / (var + 1e-5), i.e. just below 1.
    dino_part = cond.tokens[0, :, : 3 * D]
    torch.testing.assert_close(dino_part.mean(-1), torch.zeros(dino_part.shape[:2]), atol=1e-5, rtol=0)
    variance = dino_part.var(-1, unbiased=False)
    assert torch.all(variance < 1 + 1e-5) and torch.all(variance > 0.9)
