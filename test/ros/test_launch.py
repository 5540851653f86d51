"""launch/scenegen.launch.py: the description, and its behaviour in a real LaunchService (needs a
ROS 2 install with launch_ros; launch_ros has no PyPI wheel, so these skip in the pip-only
environment, except the compile and RViz-config checks).

- use_rviz:=true without rviz2 fails before any process starts, with a message naming rviz2;
- every process carries on_exit=Shutdown: when one exits, the launch stops all the others
  (checked with the installed package's processes where `colcon build` installed them).
"""

from __future__ import annotations

import os
import pathlib
import signal

import pytest
import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO_ROOT / "launch" / "scenegen.launch.py"
# A launch under test that has not ended by itself after this long is shut down and fails the test
# (scenegen_node's start-up plus the launch's SIGINT/SIGTERM escalation take well under it).
LAUNCH_TIMEOUT_S = 60.0


def import_launch():
    pytest.importorskip("launch_ros", reason="launch_ros is only available from a ROS 2 installation")
    import launch

    return launch


def load_module():
    import_launch()
    import importlib.util

    spec = importlib.util.spec_from_file_location("scenegen_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_launch(arguments: dict[str, str], on_start=None) -> tuple[int, list[str], list[str], dict[str, int]]:
    """Run the launch file with `arguments` in a LaunchService until it ends. on_start(executable,
    pid) is called as each process starts. Returns the exit code, the executables of the processes
    that started and of those that exited, and their pids."""
    launch = import_launch()
    from launch.actions import IncludeLaunchDescription, OpaqueFunction, RegisterEventHandler, Shutdown, TimerAction
    from launch.event_handlers import OnProcessExit, OnProcessStart
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    started, exited, pids, timed_out = [], [], {}, []

    def executable(event) -> str:
        # The process name is "<executable>-<n>"; a launch_ros Node knows its executable.
        return getattr(event.action, "node_executable", event.action.name)

    def record_start(event, context):
        started.append(executable(event))
        pids[executable(event)] = event.pid
        if on_start is not None:
            on_start(executable(event), event.pid)

    description = launch.LaunchDescription([
        RegisterEventHandler(OnProcessStart(on_start=record_start)),
        RegisterEventHandler(OnProcessExit(on_exit=lambda event, context: exited.append(executable(event)))),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH_FILE)), launch_arguments=arguments.items()),
        # A launch that does not end by itself is shut down (its processes with it) and reported.
        TimerAction(period=LAUNCH_TIMEOUT_S, actions=[
            OpaqueFunction(function=lambda context: timed_out.append(True) or []),
            Shutdown(reason="test timeout"),
        ]),
    ])
    service = launch.LaunchService()
    service.include_launch_description(description)
    code = service.run()
    assert not timed_out, f"the launch did not end within {LAUNCH_TIMEOUT_S} s"
    return code, started, exited, pids


@pytest.fixture
def launch_env(tmp_path, monkeypatch, ros_domain_id):
    """Fresh launch logging (screen output to this test's stdout, log files under tmp_path),
    processes on a private ROS domain on this machine. Skips without launch_ros."""
    launch = import_launch()
    (tmp_path / "log").mkdir()
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "log"))
    monkeypatch.setenv("ROS_DOMAIN_ID", str(ros_domain_id))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    launch.logging.reset()
    launch.logging.launch_config.log_dir = str(tmp_path / "log")
    yield
    launch.logging.reset()


def file_arguments() -> dict[str, str]:
    """params_file and rviz_config from the source tree: no FindPackageShare, so no build needed."""
    return {"params_file": str(REPO_ROOT / "config" / "scenegen.yaml"), "rviz_config": str(REPO_ROOT / "rviz" / "scenegen.rviz")}


@pytest.mark.ros
def test_launch_description_declares_arguments_and_nodes():
    description = load_module().generate_launch_description()  # skips without launch_ros
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
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
    # The optional-package check runs before the first process; every process ends the launch.
    positions = {id(e): k for k, e in enumerate(description.entities)}
    checks = [positions[id(e)] for e in description.entities if isinstance(e, OpaqueFunction)]
    assert checks and checks[0] < positions[id(nodes[0])]
    for node in nodes:
        assert any(isinstance(action, Shutdown) for action in node.get_sub_entities()), node.node_executable


@pytest.mark.ros
def test_missing_rviz_fails_before_anything_starts(launch_env, monkeypatch, capfd):
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    # Hide every ament prefix that holds rviz2 (scenegen_ros is not needed: files come from the tree).
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    visible = [p for p in prefixes if not (pathlib.Path(p) / "share/ament_index/resource_index/packages/rviz2").exists()]
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join(visible))
    with pytest.raises(PackageNotFoundError):
        get_package_share_directory("rviz2")

    code, started, _, _ = run_launch({**file_arguments(), "use_rviz": "true", "synthetic_camera": "true"})
    assert code != 0
    assert started == [], f"processes started although rviz2 is missing: {started}"
    output = capfd.readouterr()
    assert "package 'rviz2' is not installed" in output.out + output.err


@pytest.mark.ros
def test_a_process_exit_shuts_the_whole_launch_down(launch_env):
    """The synthetic camera is stopped from outside once it runs: the launch must then stop
    scenegen_node too and end, leaving no process behind."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        prefix = pathlib.Path(get_package_prefix("scenegen_ros"))
    except PackageNotFoundError:
        pytest.skip("scenegen_ros is not installed in the ament index (colcon build)")
    if not (prefix / "lib" / "scenegen_ros" / "synthetic_camera").is_file():
        pytest.skip("scenegen_ros executables not installed (colcon build)")

    def stop_the_camera(name: str, pid: int) -> None:
        if name == "synthetic_camera":
            os.kill(pid, signal.SIGTERM)

    _, started, exited, pids = run_launch({**file_arguments(), "synthetic_camera": "true"}, stop_the_camera)
    assert sorted(started) == ["scenegen_node", "synthetic_camera"]
    assert sorted(exited) == sorted(started)
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # gone (reaped by the launch)


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
