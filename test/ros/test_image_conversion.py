"""sensor_msgs/Image and CompressedImage decoding/encoding (no node, no DDS)."""

from __future__ import annotations

import io

import numpy as np
import pytest

sensor_msgs = pytest.importorskip("sensor_msgs.msg")
from PIL import Image as PILImage  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from scenegen_ros.image_conversion import (  # noqa: E402
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    array_to_image_msg,
    compressed_image_to_array,
    depth_msg_to_metres,
    image_msg_to_array,
)


def raw_image(pixels: np.ndarray, encoding: str, padding: int = 0, bigendian: bool = False):
    """Image message built by hand (not via array_to_image_msg): rows of `pixels` in the given byte
    order, each followed by `padding` bytes of 0xAB junk that decoders must ignore."""
    pixels = np.asarray(pixels)
    height, width = pixels.shape[:2]
    wire = pixels.astype(pixels.dtype.newbyteorder(">" if bigendian else "<"))
    rows = wire.reshape(height, -1).view(np.uint8).reshape(height, -1)
    padded = np.concatenate([rows, np.full((height, padding), 0xAB, np.uint8)], axis=1)
    msg = sensor_msgs.Image()
    msg.height, msg.width, msg.encoding = height, width, encoding
    msg.is_bigendian = bigendian
    msg.step = padded.shape[1]
    msg.data = padded.tobytes()
    return msg


RGB = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 7  # distinct values per channel


@pytest.mark.parametrize("padding", [0, 5])
def test_rgb8_is_returned_as_is(padding):
    out = image_msg_to_array(raw_image(RGB, "rgb8", padding))
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize("padding", [0, 3])
def test_bgr8_is_reordered_to_rgb(padding):
    out = image_msg_to_array(raw_image(RGB[:, :, ::-1], "bgr8", padding))
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize("encoding, order", [("rgba8", [0, 1, 2]), ("bgra8", [2, 1, 0])])
def test_four_channel_encodings_drop_alpha(encoding, order):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[:, :, order] = RGB
    rgba[:, :, 3] = 200
    out = image_msg_to_array(raw_image(rgba, encoding, padding=2))
    assert out.shape == (2, 3, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_is_two_dimensional(encoding):
    gray = np.array([[0, 1, 255], [7, 128, 9]], np.uint8)
    out = image_msg_to_array(raw_image(gray, encoding, padding=1))
    assert out.dtype == np.uint8 and out.shape == (2, 3)
    np.testing.assert_array_equal(out, gray)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
@pytest.mark.parametrize("bigendian", [False, True])
def test_sixteen_bit_honours_byte_order_and_padding(encoding, bigendian):
    values = np.array([[1, 258, 65535], [1000, 0, 4660]], np.uint16)
    out = image_msg_to_array(raw_image(values, encoding, padding=4, bigendian=bigendian))
    assert out.dtype == np.uint16 and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


@pytest.mark.parametrize("bigendian", [False, True])
def test_float_and_int32_honour_byte_order(bigendian):
    floats = np.array([[0.5, -1.25, np.nan], [1e-3, 3.0e4, 2.0]], np.float32)
    out = image_msg_to_array(raw_image(floats, "32FC1", padding=8, bigendian=bigendian))
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, floats)  # NaN compares equal in assert_array_equal
    ints = np.array([[-5, 70000, 0], [2**31 - 1, -(2**31), 3]], np.int32)
    np.testing.assert_array_equal(image_msg_to_array(raw_image(ints, "32SC1", bigendian=bigendian)), ints)


def test_decoded_array_does_not_alias_the_message():
    msg = raw_image(RGB, "rgb8")
    out = image_msg_to_array(msg)
    out[:] = 0
    np.testing.assert_array_equal(image_msg_to_array(msg), RGB)


def test_depth_16uc1_millimetres_become_metres():
    mm = np.array([[1500, 0, 1], [65535, 250, 1000]], np.uint16)
    depth = depth_msg_to_metres(raw_image(mm, "16UC1", padding=2, bigendian=True))
    assert depth.dtype == np.float32 and depth.shape == (2, 3)
    np.testing.assert_allclose(depth, [[1.5, 0.0, 0.001], [65.535, 0.25, 1.0]], rtol=1e-6)


def test_depth_32fc1_invalid_readings_become_zero():
    metres = np.array([[1.25, np.nan, np.inf], [-0.5, 0.0, 7.0]], np.float32)
    depth = depth_msg_to_metres(raw_image(metres, "32FC1"))
    np.testing.assert_array_equal(depth, np.array([[1.25, 0, 0], [0, 0, 7.0]], np.float32))


def test_depth_rejects_colour_encoding():
    with pytest.raises(ImageConversionError, match="unsupported depth encoding 'rgb8'"):
        depth_msg_to_metres(raw_image(RGB, "rgb8"))


# ----------------------------------------------------------------------------- errors


def test_unknown_encoding_is_named():
    msg = raw_image(RGB, "rgb8")
    msg.encoding = "yuv422"
    with pytest.raises(ImageConversionError, match="unsupported image encoding 'yuv422'"):
        image_msg_to_array(msg)


@pytest.mark.parametrize("height, width", [(0, 3), (2, 0)])
def test_zero_size_is_rejected(height, width):
    msg = sensor_msgs.Image(height=height, width=width, encoding="rgb8", step=width * 3)
    with pytest.raises(ImageConversionError, match="zero size"):
        image_msg_to_array(msg)


def test_step_smaller_than_row_is_rejected():
    msg = raw_image(RGB, "rgb8")
    msg.step = 8  # width 3 x 3 bytes = 9
    msg.data = bytes(16)
    with pytest.raises(ImageConversionError, match="step 8 is smaller than width 3 x 3"):
        image_msg_to_array(msg)


@pytest.mark.parametrize("delta", [-1, 1])
def test_data_length_must_equal_step_times_height(delta):
    msg = raw_image(RGB, "rgb8", padding=1)  # step 10, height 2
    msg.data = bytes(20 + delta)
    with pytest.raises(ImageConversionError, match=f"has {20 + delta} bytes, expected step 10 x height 2 = 20"):
        image_msg_to_array(msg)


def test_conversion_error_is_a_value_error():
    assert issubclass(ImageConversionError, ValueError)


# ----------------------------------------------------------------------------- compressed


def compressed(image: PILImage.Image, fmt: str, pil_format: str):
    buffer = io.BytesIO()
    image.save(buffer, format=pil_format)
    return sensor_msgs.CompressedImage(format=fmt, data=buffer.getvalue())


def test_png_rgb_is_exact():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (8, 5, 3), dtype=np.uint8)
    out = compressed_image_to_array(compressed(PILImage.fromarray(rgb), "png", "PNG"))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)


def test_png_rgba_drops_alpha_and_grey_png_stays_two_dimensional():
    rgba = np.dstack([RGB, np.full((2, 3), 9, np.uint8)])
    np.testing.assert_array_equal(compressed_image_to_array(compressed(PILImage.fromarray(rgba), "png", "PNG")), RGB)
    gray = np.array([[0, 100, 255], [1, 2, 3]], np.uint8)
    out = compressed_image_to_array(compressed(PILImage.fromarray(gray), "mono8; png compressed", "PNG"))
    assert out.shape == (2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, gray)


def test_sixteen_bit_png_keeps_values():
    values = np.array([[0, 1000, 65535], [4660, 2, 300]], np.uint16)
    out = compressed_image_to_array(compressed(PILImage.fromarray(values), "png", "PNG"))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, values)


def test_jpeg_is_close_to_the_source():
    y, x = np.mgrid[0:32, 0:48]
    rgb = np.stack([x * 5, y * 7, np.full_like(x, 90)], axis=-1).astype(np.uint8)  # smooth: JPEG-friendly
    out = compressed_image_to_array(compressed(PILImage.fromarray(rgb), "rgb8; jpeg compressed bgr8", "JPEG"))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 3.0


def test_compressed_errors():
    png = compressed(PILImage.fromarray(RGB), "png", "PNG")
    with pytest.raises(ImageConversionError, match="unsupported compressed image format 'bmp'"):
        compressed_image_to_array(sensor_msgs.CompressedImage(format="bmp", data=png.data))
    with pytest.raises(ImageConversionError, match="compressedDepth"):
        compressed_image_to_array(sensor_msgs.CompressedImage(format="16UC1; compressedDepth png", data=png.data))
    with pytest.raises(ImageConversionError, match="no data"):
        compressed_image_to_array(sensor_msgs.CompressedImage(format="jpeg"))
    with pytest.raises(ImageConversionError, match="cannot decode compressed image"):
        compressed_image_to_array(sensor_msgs.CompressedImage(format="jpeg", data=b"not a jpeg at all"))
    truncated = bytes(png.data)[: len(png.data) // 2]
    with pytest.raises(ImageConversionError, match="cannot decode compressed image"):
        compressed_image_to_array(sensor_msgs.CompressedImage(format="png", data=truncated))


# ----------------------------------------------------------------------------- encoding


ROUND_TRIP_ARRAYS = {
    "rgb8": RGB,
    "bgr8": RGB,
    "rgba8": np.dstack([RGB, np.full((2, 3), 4, np.uint8)]),
    "bgra8": np.dstack([RGB, np.full((2, 3), 4, np.uint8)]),
    "mono8": RGB[:, :, 0],
    "8UC1": RGB[:, :, 1],
    "mono16": np.array([[1, 2, 3], [60000, 5, 6]], np.uint16),
    "16UC1": np.array([[1, 2, 3], [60000, 5, 6]], np.uint16),
    "32SC1": np.array([[-1, 2, 3], [4, 5, 70000]], np.int32),
    "32FC1": np.array([[0.25, 2, 3], [4, 5, 1e6]], np.float32),
}


def test_round_trip_covers_every_encoding():
    assert set(ROUND_TRIP_ARRAYS) == set(SUPPORTED_ENCODINGS)


@pytest.mark.parametrize("encoding", sorted(ROUND_TRIP_ARRAYS))
def test_array_to_image_msg_round_trip(encoding):
    array = ROUND_TRIP_ARRAYS[encoding]
    header = Header(frame_id="cam_optical")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = array_to_image_msg(array, encoding, header)
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (2, 3, encoding, False)
    assert msg.step * msg.height == len(msg.data)
    assert msg.header.frame_id == "cam_optical" and msg.header.stamp.nanosec == 345
    decoded = image_msg_to_array(msg)
    if encoding.startswith("bgr"):
        expected = array[:, :, [2, 1, 0]]  # stored as given (B, G, R), decoded to RGB
    elif encoding.endswith("a8"):
        expected = array[:, :, :3]
    else:
        expected = array
    np.testing.assert_array_equal(decoded, expected)


def test_array_to_image_msg_errors():
    with pytest.raises(ImageConversionError, match=r"rgb8 needs a \[H, W, 3\] array, got shape \(2, 3\)"):
        array_to_image_msg(RGB[:, :, 0], "rgb8")
    with pytest.raises(ImageConversionError, match="32FC1 needs dtype float32, got float64"):
        array_to_image_msg(np.zeros((2, 3)), "32FC1")
    with pytest.raises(ImageConversionError, match="zero-size"):
        array_to_image_msg(np.zeros((0, 3, 3), np.uint8), "rgb8")
    with pytest.raises(ImageConversionError, match="unsupported image encoding 'rgb16'"):
        array_to_image_msg(RGB, "rgb16")
