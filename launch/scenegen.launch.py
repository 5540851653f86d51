"""Launch the SceneGen perception node (and optionally RViz and the synthetic camera).

    ros2 launch scenegen_ros scenegen.launch.py [params_file:=...] [namespace:=...]
        [use_rviz:=true] [synthetic_camera:=true] [camera_seed:=0]

The node reads config/scenegen.yaml (installed to share/scenegen_ros/config); a different
params_file overrides any subset of it. With a namespace every topic moves under it, e.g. the
markers become /<namespace>/scenegen_node/markers (rviz/scenegen.rviz expects no namespace).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "scenegen_ros"


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
        ),
        Node(
            package=PACKAGE,
            executable="synthetic_camera",
            name="synthetic_camera",
            namespace=namespace,
            parameters=[{"seed": LaunchConfiguration("camera_seed")}],
            output="screen",
            condition=IfCondition(LaunchConfiguration("synthetic_camera")),
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            namespace=namespace,
            arguments=["-d", LaunchConfiguration("rviz_config")],
            output="screen",
            condition=IfCondition(LaunchConfiguration("use_rviz")),
        ),
    ]
    return LaunchDescription(arguments + nodes)
