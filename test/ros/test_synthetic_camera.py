"""The synthetic camera node's world preset parameter (real rclpy node, private domain, no spinning)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402

from scenegen_core.world.scene import WorldConfig, generate_scene  # noqa: E402
from scenegen_ros.synthetic_camera import SyntheticCameraNode  # noqa: E402

SMALL = [Parameter("width", value=64), Parameter("height", value=48), Parameter("seed", value=5)]


@pytest.mark.parametrize("preset", ["idealised", "realistic"])
def test_world_parameter_selects_the_preset(make_ros_context, preset):
    overrides = SMALL if preset == "idealised" else SMALL + [Parameter("world", value=preset)]
    node = SyntheticCameraNode(context=make_ros_context(), parameter_overrides=overrides)
    try:
        expected = generate_scene(
            5, WorldConfig.from_dict(dict(preset=preset, min_objects=2, max_objects=4, image_width=64, image_height=48))
        )
        assert [o.label for o in node.scene.objects] == [o.label for o in expected.objects]
        np.testing.assert_array_equal(node.scene.renders[0].rgb, expected.renders[0].rgb)
        assert node.scene.config.background == ("void" if preset == "idealised" else "room")
    finally:
        node.destroy_node()


def test_unknown_world_preset_is_refused_by_name(make_ros_context):
    with pytest.raises(ValueError, match="unknown WorldConfig preset 'photoreal'"):
        SyntheticCameraNode(context=make_ros_context(), parameter_overrides=SMALL + [Parameter("world", value="photoreal")])
