"""launch/scenegen.launch.py builds the expected description (needs a ROS 2 install with launch_ros;
launch_ros has no PyPI wheel, so this skips in the pip-only environment)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO_ROOT / "launch" / "scenegen.launch.py"


def load_description():
    pytest.importorskip("launch_ros", reason="launch_ros is only available from a ROS 2 installation")
    spec = importlib.util.spec_from_file_location("scenegen_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


@pytest.mark.ros
def test_launch_description_declares_arguments_and_nodes():
    description = load_description()  # skips without launch_ros
    from launch.actions import DeclareLaunchArgument
    from launch_ros.actions import Node

    arguments = {e.name: e for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    assert set(arguments) == {"params_file", "namespace", "use_rviz", "rviz_config", "synthetic_camera", "camera_seed"}
    assert all(argument.description for argument in arguments.values())
    nodes = [e for e in description.entities if isinstance(e, Node)]
    assert [(n.node_package, n.node_executable) for n in nodes] == [
        ("scenegen_ros", "scenegen_node"),
        ("scenegen_ros", "synthetic_camera"),
        ("rviz2", "rviz2"),
    ]
    # RViz and the synthetic camera are optional, the node is not.
    assert nodes[0].condition is None
    assert nodes[1].condition is not None and nodes[2].condition is not None


def test_launch_file_compiles_and_rviz_config_shows_the_markers():
    # Runs without ROS: the launch file must compile and define its entry point, and the RViz
    # config must look at the node's markers in the synthetic camera's optical frame.
    code = compile(LAUNCH_FILE.read_text(), str(LAUNCH_FILE), "exec")
    assert "generate_launch_description" in code.co_names
    rviz = yaml.safe_load((REPO_ROOT / "rviz" / "scenegen.rviz").read_text())["Visualization Manager"]
    assert rviz["Global Options"]["Fixed Frame"] == "cam0_optical_frame"
    displays = {d["Class"]: d for d in rviz["Displays"]}
    assert displays["rviz_default_plugins/MarkerArray"]["Topic"]["Value"] == "/scenegen_node/markers"
    assert displays["rviz_default_plugins/Image"]["Topic"]["Value"] == "/camera/color/image_raw"
