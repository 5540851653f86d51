"""Image preprocessing exactly as the official SceneGen pipeline does it (Pillow resampling).

* `preprocess_vggt_image`  -- scene image -> VGGT input [1, 1, 3, T, T] in [0, 1] (white padding).
* `make_object_rgba` + `crop_object_image` -- RGB + mask -> the official RGBA object crop.
* `mask_image`             -- boolean mask -> white-on-black RGB image.
* `dino_pixel_values`      -- RGB images -> resized, ImageNet-normalised DINOv2 input.

Images are numpy arrays [H, W, 3|4] uint8 (RGB / RGBA) or PIL images; masks are [H, W] bool.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ImageLike = Union[np.ndarray, Image.Image]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGGT_IMAGE_SIZE = 518
DINO_IMAGE_SIZE = 518
# Official crop rule: keep pixels whose alpha exceeds 0.8 * 255, square box 1.2x the longer side.
ALPHA_THRESHOLD = 0.8 * 255
CROP_MARGIN = 1.2


def _to_pil(image: ImageLike) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"image must be [H, W, 3|4] uint8, got {array.shape} {array.dtype}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError("image is empty (zero width or height)")
    return Image.fromarray(array)  # [H, W, 4] -> RGBA, [H, W, 3] -> RGB


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> [3, H, W] float32 in [0, 1] (u8 / 255, as torchvision's ToTensor)."""
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255


def preprocess_vggt_image(image: ImageLike, target_size: int = VGGT_IMAGE_SIZE, patch_size: int = 14) -> torch.Tensor:
    """Scene image -> VGGT input [1, 1, 3, target, target] float32 RGB in [0, 1].

    1. RGBA is alpha-composited over opaque white, then RGB.
    2. Longer side -> target; other side -> round(side * target / longer / patch) * patch
       (Python round, half to even), resized with Pillow BICUBIC.
    3. Padded with 1.0 (white) to target x target, top/left = pad // 2, rest bottom/right.
    """
    if target_size % patch_size != 0:
        raise ValueError(f"target_size {target_size} is not a multiple of patch_size {patch_size}")
    pil = _to_pil(image)
    if pil.mode == "RGBA":
        pil = Image.alpha_composite(Image.new("RGBA", pil.size, (255, 255, 255, 255)), pil)
    pil = pil.convert("RGB")
    width, height = pil.size
    if width > height:
        new_width = target_size
        new_height = round(height * (new_width / width) / patch_size) * patch_size
    else:
        new_height = target_size
        new_width = round(width * (new_height / height) / patch_size) * patch_size
    if new_width == 0 or new_height == 0:
        raise ValueError(f"image {width}x{height} is too elongated for a {target_size}px VGGT input")
    tensor = _to_tensor(pil.resize((new_width, new_height), Image.Resampling.BICUBIC))
    pad_h, pad_w = target_size - new_height, target_size - new_width
    tensor = F.pad(tensor, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=1.0)
    return tensor[None, None]


def make_object_rgba(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGB [H, W, 3] uint8 + mask [H, W] bool -> RGBA [H, W, 4] uint8 with alpha = mask * 255.

    Our pipeline receives masks rather than cut-out RGBA images; this makes the image the
    official `preprocess_image` expects (which then needs no background removal).
    """
    rgb = np.asarray(rgb)
    mask = np.asarray(mask)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be [H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")
    if mask.shape != rgb.shape[:2] or mask.dtype != np.bool_:
        raise ValueError(f"mask must be [H, W] bool matching rgb {rgb.shape[:2]}, got {mask.shape} {mask.dtype}")
    return np.concatenate([rgb, mask[..., None].astype(np.uint8) * 255], axis=2)


def crop_object_image(rgba: ImageLike, output_size: int = DINO_IMAGE_SIZE) -> np.ndarray:
    """Official object crop: RGBA -> [output_size, output_size, 3] uint8 RGB on black.

    1. bbox (x0, y0, x1, y1, inclusive) of pixels with alpha > 204.
    2. centre = bbox midpoint; side = int(1.2 * max(x1 - x0, y1 - y0)); box = centre -/+ side // 2.
    3. Pillow crop (rounds each box coordinate half-to-even, outside = transparent black), then
       Pillow LANCZOS resize to output_size (premultiplied alpha internally).
    4. float32 (RGB / 255) * (alpha / 255) * 255, truncated to uint8.
    """
    pil = _to_pil(rgba)
    if pil.mode != "RGBA":
        raise ValueError(f"object crop needs an RGBA image (alpha = object mask), got mode {pil.mode}")
    alpha = np.asarray(pil)[:, :, 3]
    ys, xs = np.nonzero(alpha > ALPHA_THRESHOLD)
    if len(xs) == 0:
        raise ValueError("object mask is empty: no pixel has alpha > 0.8 * 255")
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max(), ys.max()
    center_x, center_y = (x0 + x1) / 2, (y0 + y1) / 2
    half = int(max(x1 - x0, y1 - y0) * CROP_MARGIN) // 2
    box = (center_x - half, center_y - half, center_x + half, center_y + half)
    cropped = pil.crop(box).resize((output_size, output_size), Image.Resampling.LANCZOS)
    values = np.asarray(cropped).astype(np.float32) / 255
    return (values[:, :, :3] * values[:, :, 3:4] * 255).astype(np.uint8)


def mask_image(mask: np.ndarray) -> np.ndarray:
    """[H, W] bool -> [H, W, 3] uint8 white (255) on black, the official mask-image format."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != np.bool_:
        raise ValueError(f"mask must be [H, W] bool, got {mask.shape} {mask.dtype}")
    return np.repeat(mask[..., None].astype(np.uint8) * 255, 3, axis=2)


def dino_images_u8(images: Sequence[ImageLike], image_size: int = DINO_IMAGE_SIZE) -> torch.Tensor:
    """Images -> [B, image_size, image_size, 3] uint8 RGB, each resized ignoring aspect (Pillow
    LANCZOS; a no-op for an image already that size). `normalize_dino_pixels` finishes the input."""
    if len(images) == 0:
        raise ValueError("no images to encode")
    size = (image_size, image_size)
    return torch.stack(
        [torch.from_numpy(np.asarray(_to_pil(image).resize(size, Image.Resampling.LANCZOS).convert("RGB")).copy()) for image in images]
    )


def normalize_dino_pixels(images_u8: torch.Tensor) -> torch.Tensor:
    """[..., S, S, 3] uint8 -> [..., 3, S, S] float32: / 255, then (x - mean) / std per channel."""
    pixels = images_u8.movedim(-1, -3).float() / 255
    mean = torch.tensor(IMAGENET_MEAN, device=pixels.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=pixels.device).view(3, 1, 1)
    return (pixels - mean) / std


def dino_pixel_values(images: Sequence[ImageLike], image_size: int = DINO_IMAGE_SIZE) -> torch.Tensor:
    """Images -> DINOv2 input [B, 3, image_size, image_size] float32.

    Each image is resized to image_size x image_size ignoring aspect (Pillow LANCZOS; a no-op for
    an image already that size), converted to RGB, / 255, then (x - mean) / std per channel.
    """
    return normalize_dino_pixels(dino_images_u8(images, image_size))
