"""Launch the SceneGen perception node (and optionally RViz and the synthetic camera).

    ros2 launch scenegen_ros scenegen.launch.py [params_file:=...] [namespace:=...]
        [use_rviz:=true] [synthetic_camera:=true] [camera_seed:=0]

The node reads config/scenegen.yaml (installed to share/scenegen_ros/config); a different
params_file overrides any subset of it. With a namespace every topic moves under it, e.g. the
markers become /<namespace>/scenegen_node/markers (rviz/scenegen.rviz expects no namespace).

Nothing is started when an optional package that was asked for is missing (use_rviz:=true without
rviz2): the launch fails first with a message saying so. Every process is tied to the launch: when
any of them exits (RViz closed, the node failed), the whole launch shuts down, so no process is
ever left running on its own.
"""

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "scenegen_ros"
# Packages started only on request: launch argument -> (package, how to get it).
OPTIONAL_PACKAGES = {"use_rviz": ("rviz2", "install it (e.g. ros-$ROS_DISTRO-rviz2) or launch with use_rviz:=false")}


class MissingPackageError(RuntimeError):
    """A package that a launch argument asked for is not installed."""


def check_optional_packages(context) -> list:
    """OpaqueFunction body, run before any process is started: raises MissingPackageError naming the
    missing package when a requested optional package is not in the ament index."""
    for argument, (package, remedy) in OPTIONAL_PACKAGES.items():
        if not IfCondition(LaunchConfiguration(argument)).evaluate(context):
            continue
        try:
            get_package_share_directory(package)
        except PackageNotFoundError:
            raise MissingPackageError(
                f"{argument}:=true but package '{package}' is not installed: {remedy}. Nothing was started."
            ) from None
    return []


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([share, "config", "scenegen.yaml"]),
            description="ROS 2 params file for scenegen_node",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of every started node"),
        DeclareLaunchArgument("use_rviz", default_value="false", description="Start rviz2 with rviz/scenegen.rviz"),
        DeclareLaunchArgument(
            "rviz_config",
            default_value=PathJoinSubstitution([share, "rviz", "scenegen.rviz"]),
            description="RViz configuration file",
        ),
        DeclareLaunchArgument(
            "synthetic_camera", default_value="false",
            description="Also start the synthetic tabletop camera (publishes the default topics)",
        ),
        DeclareLaunchArgument("camera_seed", default_value="0", description="Scene seed of the synthetic camera"),
    ]
    namespace = LaunchConfiguration("namespace")
    nodes = [
        Node(
            package=PACKAGE,
            executable="scenegen_node",
            name="scenegen_node",
            namespace=namespace,
            parameters=[LaunchConfiguration("params_file")],
            output="screen",
            emulate_tty=True,
            on_exit=[Shutdown(reason="scenegen_node exited")],
        ),
        Node(
            package=PACKAGE,
            executable="synthetic_camera",
            name="synthetic_camera",
            namespace=namespace,
            parameters=[{"seed": LaunchConfiguration("camera_seed")}],
            output="screen",
            condition=IfCondition(LaunchConfiguration("synthetic_camera")),
            on_exit=[Shutdown(reason="synthetic_camera exited")],
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            namespace=namespace,
            arguments=["-d", LaunchConfiguration("rviz_config")],
            output="screen",
            condition=IfCondition(LaunchConfiguration("use_rviz")),
            on_exit=[Shutdown(reason="rviz2 exited")],
        ),
    ]
    # Entities run in order: the check comes before the first process.
    return LaunchDescription(arguments + [OpaqueFunction(function=check_optional_packages)] + nodes)
