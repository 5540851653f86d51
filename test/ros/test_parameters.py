"""Node parameters: config/scenegen.yaml is the single source of defaults and matches the specs."""

from __future__ import annotations

import pathlib

import pytest
import yaml

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from scenegen_ros.parameters import (  # noqa: E402
    NODE_NAME,
    PARAMETERS,
    config_from_values,
    declare_parameters,
    default_parameters_file,
    load_defaults,
)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def write_params(tmp_path, **changes) -> pathlib.Path:
    values = load_defaults()
    values.update(changes)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({NODE_NAME: {"ros__parameters": values}}))
    return path


def test_yaml_defaults_cover_every_parameter_with_the_declared_type():
    assert default_parameters_file() == REPO_ROOT / "config" / "scenegen.yaml"
    defaults = load_defaults()
    assert list(defaults) == [spec.name for spec in PARAMETERS]  # same order as the file documents them
    config = config_from_values(defaults)
    assert config.mode == "continuous" and len(config.views) == defaults["views"] == 1
    assert config.views[0].image == "camera/color/image_raw" and not config.views[0].compressed
    assert config.pipeline_config().steps == defaults["steps"]
    assert config.pipeline_config().registration.per_object == defaults["registration"] == "similarity"
    assert config.sync_config().slop_s == defaults["sync_slop_s"]
    assert config.tracker_config().object_timeout_s == defaults["object_timeout_s"]


def test_installed_package_finds_the_defaults_under_the_environment_prefix(tmp_path, monkeypatch):
    """Outside the source tree (plain pip install), the file under <prefix>/share/scenegen_ros is used;
    with none anywhere the error lists every place looked at."""
    import scenegen_ros.parameters as parameters

    site_packages = tmp_path / "lib" / "site-packages" / "scenegen_ros"
    monkeypatch.setattr(parameters, "__file__", str(site_packages / "parameters.py"))
    monkeypatch.setattr(parameters.sys, "prefix", str(tmp_path))
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    with pytest.raises(FileNotFoundError, match="share/scenegen_ros/config/scenegen.yaml"):
        default_parameters_file()
    installed = tmp_path / "share" / "scenegen_ros" / "config" / "scenegen.yaml"
    installed.parent.mkdir(parents=True)
    installed.write_text((REPO_ROOT / "config" / "scenegen.yaml").read_text())
    assert default_parameters_file() == installed
    assert load_defaults() == load_defaults(REPO_ROOT / "config" / "scenegen.yaml")


def test_load_defaults_rejects_missing_unknown_and_mistyped(tmp_path):
    values = load_defaults()
    del values["seed"]
    values["typo_param"] = 1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({NODE_NAME: {"ros__parameters": values}}))
    with pytest.raises(ValueError, match=r"missing parameters \['seed'\], unknown parameters \['typo_param'\]"):
        load_defaults(path)
    # An integer where a double is declared would make rcl infer INTEGER and reject the override.
    with pytest.raises(ValueError, match="sync_slop_s must be DOUBLE"):
        load_defaults(write_params(tmp_path, sync_slop_s=1))
    with pytest.raises(ValueError, match="ros__parameters"):
        path.write_text("other_node: {}\n")
        load_defaults(path)


def test_per_view_lists_expand_and_validate():
    values = load_defaults()
    values.update(
        views=3,
        image_topics=["cam{view}/image"],
        compressed=[True],
        depth_topics=["", "cam1/depth", ""],
        camera_info_topics=["cam{view}/info"],
        mask_topics=[],
    )
    views = config_from_values(values).views
    assert [v.image for v in views] == ["cam0/image", "cam1/image", "cam2/image"]
    assert [v.compressed for v in views] == [True, True, True]
    assert [v.depth for v in views] == ["", "cam1/depth", ""]
    assert [v.mask for v in views] == ["", "", ""]
    with pytest.raises(ValueError, match="image_topics has 2 entries for 3 views"):
        config_from_values({**values, "image_topics": ["a", "b"]})
    with pytest.raises(ValueError, match="use '\\{view\\}'"):
        config_from_values({**values, "image_topics": ["same/topic"]})
    with pytest.raises(ValueError, match="depth topic but no camera_info"):
        config_from_values({**values, "camera_info_topics": []})
    with pytest.raises(ValueError, match="mode must be one of"):
        config_from_values({**values, "mode": "sometimes"})
    with pytest.raises(ValueError, match="registration must be one of"):
        config_from_values({**values, "registration": "affine"})
    assert not config_from_values({**values, "registration": "off"}).pipeline_config().registration.enabled
    with pytest.raises(ValueError, match="views must be >= 1"):
        config_from_values({**values, "views": 0})


def test_declared_parameters_take_yaml_defaults_and_overrides(make_ros_context):
    node = Node(NODE_NAME, context=make_ros_context(), parameter_overrides=[Parameter("steps", value=3)])
    try:
        config = declare_parameters(node)
        assert config.steps == 3
        assert config.seed == load_defaults()["seed"]
        descriptor = node.describe_parameter("sync_slop_s")
        assert descriptor.read_only and "seconds" in descriptor.description
        assert node.get_parameter("image_topics").type_ == Parameter.Type.STRING_ARRAY
    finally:
        node.destroy_node()


def test_params_file_with_empty_list_means_no_topic(make_ros_context, tmp_path):
    # rcl reads `[]` as "not set"; it must still mean "no mask topic", not the YAML default.
    path = write_params(tmp_path, mask_topics=[])
    node = Node(NODE_NAME, context=make_ros_context(["--ros-args", "--params-file", str(path)]))
    try:
        config = declare_parameters(node)
        assert config.views[0].mask == ""
        assert config.views[0].image == "camera/color/image_raw"
    finally:
        node.destroy_node()
