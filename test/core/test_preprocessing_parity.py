"""Image preprocessing vs the official pipeline (keys `preprocess.*` of `vggt_aggregator_tiny`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from scenegen_core.preprocessing import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    crop_object_image,
    dino_pixel_values,
    make_object_rgba,
    mask_image,
    preprocess_vggt_image,
)


@pytest.fixture(scope="module")
def fixture(reference_dir):
    return load_file(str(reference_dir / "vggt_aggregator_tiny.safetensors"))


@pytest.mark.parity
def test_vggt_preprocessing_is_bit_exact(fixture):
    out = preprocess_vggt_image(fixture["preprocess.vggt.input"].numpy())
    expected_u8 = fixture["preprocess.vggt.output_u8"]
    assert out.shape == (1, 1, 3, 518, 518) and out.dtype == torch.float32
    assert torch.equal(out * 255, expected_u8.float())
    assert torch.equal(out, expected_u8.float() / 255)
    # 80x60 -> 518x392, 63 white rows above and below, none left/right.
    assert torch.all(out[..., :63, :] == 1.0) and torch.all(out[..., -63:, :] == 1.0)
    assert not torch.all(out[..., 63, :] == 1.0)


@pytest.mark.parity
def test_object_crop_is_bit_exact(fixture):
    out = crop_object_image(fixture["preprocess.object.input"].numpy())
    assert out.shape == (518, 518, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, fixture["preprocess.object.output"].numpy())


def test_vggt_rgba_is_composited_on_white_and_sizes_generalise():
    rgba = np.zeros((30, 20, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red where opaque
    rgba[:15, :, 3] = 255  # top half opaque, bottom half transparent
    out = preprocess_vggt_image(rgba, target_size=56)
    assert out.shape == (1, 1, 3, 56, 56)
    # Portrait: height -> 56, width round(20*56/30/14)*14 = 42 -> 7 columns of white padding each side.
    assert torch.all(out[..., :7] == 1.0) and torch.all(out[..., -7:] == 1.0)
    top, bottom = out[0, 0, :, 2, 20], out[0, 0, :, -2, 20]
    torch.testing.assert_close(top, torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(bottom, torch.ones(3))
    with pytest.raises(ValueError, match="multiple of patch_size"):
        preprocess_vggt_image(rgba, target_size=50)


def test_rgba_from_mask_and_crop_errors():
    rgb = np.full((10, 12, 3), 7, dtype=np.uint8)
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:9] = True
    rgba = make_object_rgba(rgb, mask)
    assert rgba.shape == (10, 12, 4)
    np.testing.assert_array_equal(rgba[..., 3], mask * 255)
    np.testing.assert_array_equal(rgba[..., :3], rgb)
    crop = crop_object_image(rgba, output_size=28)
    assert crop.shape == (28, 28, 3)
    # Box side int(1.2 * 5) = 6 around centre (5.5, 3): (2.5, 0, 8.5, 6) -> Pillow rounds to
    # (2, 0, 8, 6), so rows 0-1 (transparent, black after x alpha) fill the top third.
    assert crop[:7].max() == 0
    assert crop[14, 14].tolist() == [7, 7, 7]
    with pytest.raises(ValueError, match="empty"):
        crop_object_image(make_object_rgba(rgb, np.zeros_like(mask)))
    with pytest.raises(ValueError, match="RGBA"):
        crop_object_image(rgb)
    with pytest.raises(ValueError, match="bool"):
        make_object_rgba(rgb, mask.astype(np.uint8))


def test_mask_image_and_dino_normalisation():
    mask = np.zeros((4, 6), dtype=bool)
    mask[1, 2] = True
    image = mask_image(mask)
    assert image.shape == (4, 6, 3) and image.dtype == np.uint8
    assert image[1, 2].tolist() == [255, 255, 255] and image.sum() == 3 * 255

    white = np.full((5, 9, 3), 255, dtype=np.uint8)  # non-square: resized ignoring aspect
    black = np.zeros((14, 14, 3), dtype=np.uint8)
    pixels = dino_pixel_values([white, black], image_size=14)
    assert pixels.shape == (2, 3, 14, 14) and pixels.dtype == torch.float32
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(pixels[0, :, 7, 7], (1 - mean) / std)
    torch.testing.assert_close(pixels[1, :, 0, 0], -mean / std)
    with pytest.raises(ValueError, match="no images"):
        dino_pixel_values([])
