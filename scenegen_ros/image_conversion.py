"""sensor_msgs/Image and CompressedImage <-> NumPy, without cv_bridge (numpy + Pillow only).

ROS 2's cv_bridge is not installable here (the PyPI `cv-bridge` is a ROS 1 copy that breaks on
NumPy 2), and the node needs only a handful of encodings, so they are decoded here directly.

Decoded layouts (always a fresh C-contiguous array in native byte order, never a view of msg.data):

* colour encodings (rgb8, bgr8, rgba8, bgra8): ``[H, W, 3] uint8`` RGB; channels reordered, alpha
  dropped;
* one-channel encodings: ``[H, W]`` in the encoding's type: mono8/8UC1 uint8, mono16/16UC1
  uint16, 32SC1 int32, 32FC1 float32, values untouched (use `depth_msg_to_metres` for depth).

The decoders only read ``height, width, encoding, is_bigendian, step, data`` (and ``format, data``
for compressed images), so they work on any object with those attributes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np


class ImageConversionError(ValueError):
    """An image message cannot be decoded: unknown encoding, inconsistent size, corrupt data."""


@dataclass(frozen=True)
class _Encoding:
    """Pixel layout of one ROS image encoding: channel type, channel count, RGB channel order."""

    dtype: np.dtype
    channels: int
    rgb_order: tuple[int, ...] | None = None  # indices of R, G, B; None = not a colour encoding

    @property
    def bytes_per_pixel(self) -> int:
        return self.dtype.itemsize * self.channels


_ENCODINGS: dict[str, _Encoding] = {
    "rgb8": _Encoding(np.dtype(np.uint8), 3, (0, 1, 2)),
    "bgr8": _Encoding(np.dtype(np.uint8), 3, (2, 1, 0)),
    "rgba8": _Encoding(np.dtype(np.uint8), 4, (0, 1, 2)),
    "bgra8": _Encoding(np.dtype(np.uint8), 4, (2, 1, 0)),
    "mono8": _Encoding(np.dtype(np.uint8), 1),
    "8UC1": _Encoding(np.dtype(np.uint8), 1),
    "mono16": _Encoding(np.dtype(np.uint16), 1),
    "16UC1": _Encoding(np.dtype(np.uint16), 1),
    "32SC1": _Encoding(np.dtype(np.int32), 1),
    "32FC1": _Encoding(np.dtype(np.float32), 1),
}

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)

# Depth encodings and the factor that turns their values into metres (REP 118: 16-bit depth in mm).
_DEPTH_TO_METRES: dict[str, float] = {"16UC1": 1e-3, "mono16": 1e-3, "32FC1": 1.0}


def _encoding(name: str) -> _Encoding:
    try:
        return _ENCODINGS[name]
    except KeyError:
        raise ImageConversionError(
            f"unsupported image encoding '{name}' (supported: {', '.join(SUPPORTED_ENCODINGS)})"
        ) from None


def _decode_raw(msg) -> tuple[np.ndarray, _Encoding]:
    """[H, W, C] array in the encoding's channel order and native byte order, plus its layout.

    Checks (each failure names the problem): known encoding, non-zero size, step >= width * bytes
    per pixel, len(data) == step * height. Row padding (step > width * bpp) is dropped.
    """
    encoding = _encoding(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageConversionError(f"{msg.encoding} image has zero size ({width}x{height})")
    row_bytes = width * encoding.bytes_per_pixel
    if step < row_bytes:
        raise ImageConversionError(
            f"{msg.encoding} image step {step} is smaller than width {width} x {encoding.bytes_per_pixel} "
            f"bytes per pixel = {row_bytes}"
        )
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size != step * height:
        raise ImageConversionError(
            f"{msg.encoding} image data has {data.size} bytes, expected step {step} x height {height} = "
            f"{step * height}"
        )
    # The slice drops row padding; the copy makes the rows contiguous so they can be reinterpreted.
    rows = np.ascontiguousarray(data.reshape(height, step)[:, :row_bytes])
    wire_dtype = encoding.dtype.newbyteorder(">" if msg.is_bigendian else "<")
    pixels = rows.view(wire_dtype).reshape(height, width, encoding.channels)
    return pixels.astype(encoding.dtype.newbyteorder("="), copy=True), encoding


def image_msg_to_array(msg) -> np.ndarray:
    """Decode a sensor_msgs/Image.

    Returns ``[H, W, 3] uint8`` RGB for rgb8/bgr8/rgba8/bgra8 (alpha dropped) and ``[H, W]`` of the
    encoding's type for one-channel encodings (mono8/8UC1 uint8, mono16/16UC1 uint16, 32SC1 int32,
    32FC1 float32; raw values). Raises ImageConversionError.
    """
    pixels, encoding = _decode_raw(msg)
    if encoding.rgb_order is None:
        return pixels[:, :, 0].copy()
    return np.ascontiguousarray(pixels[:, :, list(encoding.rgb_order)])


def depth_msg_to_metres(msg) -> np.ndarray:
    """Decode a depth image into ``[H, W] float32`` metres, camera optical frame z.

    16UC1 / mono16 are millimetres (REP 118), 32FC1 metres. Invalid readings (0, NaN, +-inf,
    negative) become 0, the pipeline's "no reading". Raises ImageConversionError for any other
    encoding.
    """
    if msg.encoding not in _DEPTH_TO_METRES:
        raise ImageConversionError(
            f"unsupported depth encoding '{msg.encoding}' (supported: {', '.join(_DEPTH_TO_METRES)})"
        )
    depth = image_msg_to_array(msg).astype(np.float32) * np.float32(_DEPTH_TO_METRES[msg.encoding])
    depth[~(np.isfinite(depth) & (depth > 0))] = 0.0
    return depth


def compressed_image_to_array(msg) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG or PNG, via Pillow).

    Returns ``[H, W, 3] uint8`` RGB for colour images (alpha / palette resolved) and ``[H, W]``
    uint8 / uint16 for 8- / 16-bit greyscale PNGs, the same layouts as `image_msg_to_array`.
    `msg.format` must name jpeg/jpg/png (e.g. "jpeg", "rgb8; jpeg compressed bgr8"); the pixel data
    decides the layout. Raises ImageConversionError.
    """
    from PIL import Image as PILImage, UnidentifiedImageError  # only compressed streams need Pillow

    fmt = str(msg.format).lower()
    if not any(name in fmt for name in ("jpeg", "jpg", "png")):
        raise ImageConversionError(f"unsupported compressed image format '{msg.format}' (want jpeg or png)")
    if "compresseddepth" in fmt:
        raise ImageConversionError(f"compressedDepth images are not supported (format '{msg.format}')")
    data = bytes(msg.data)
    if not data:
        raise ImageConversionError(f"compressed image ({msg.format}) has no data")
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode in ("L", "1"):
                return np.array(image.convert("L"), dtype=np.uint8)
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.array(image, dtype=np.int64).astype(np.uint16)
            return np.array(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ImageConversionError(f"cannot decode compressed image ({msg.format}): {error}") from error


def array_to_image_msg(array: np.ndarray, encoding: str, header=None):
    """Encode an array as a sensor_msgs/Image (little-endian, no row padding).

    array: ``[H, W, C]`` or ``[H, W]`` matching `encoding` (rgb8: [H, W, 3] uint8 in R, G, B order;
    bgr8: B, G, R order; 32FC1: [H, W] float32; ...). The values are stored as given (no channel
    reordering, no unit conversion). header: std_msgs/Header or None (empty header).
    Raises ImageConversionError when shape or dtype do not fit the encoding.
    """
    from sensor_msgs.msg import Image  # decoders above must stay importable without ROS

    layout = _encoding(encoding)
    array = np.asarray(array)
    expected_ndim = 2 if layout.channels == 1 else 3
    if array.ndim == 3 and layout.channels == 1 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != expected_ndim or (expected_ndim == 3 and array.shape[2] != layout.channels):
        raise ImageConversionError(
            f"{encoding} needs a {'[H, W]' if expected_ndim == 2 else f'[H, W, {layout.channels}]'} array, "
            f"got shape {array.shape}"
        )
    if array.dtype != layout.dtype:
        raise ImageConversionError(f"{encoding} needs dtype {layout.dtype}, got {array.dtype}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageConversionError(f"cannot encode a zero-size image ({array.shape[1]}x{array.shape[0]})")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = False
    msg.step = msg.width * layout.bytes_per_pixel
    msg.data = np.ascontiguousarray(array, dtype=layout.dtype.newbyteorder("<")).tobytes()
    return msg
