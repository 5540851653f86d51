"""pip/setuptools install of the Python side (scenegen_core + scenegen_ros).

The ROS build (colcon, ament_cmake) uses CMakeLists.txt instead: it generates the msg/srv
interfaces and installs these same Python packages with ament_cmake_python. This file serves the
plain-Python path (`pip install -e .`) used by scripts/setup_env.sh, and declares the console
scripts so `scenegen_node`, `synthetic_camera` and `scenegen_demo` exist in both installs.
"""

from setuptools import find_packages, setup

setup(
    name="scenegen_ros",
    version="0.1.0",
    description="SceneGen as a ROS 2 perception node: images in, posed shape-completed meshes out",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["scenegen_core", "scenegen_core.*", "scenegen_ros", "scenegen_ros.*"]),
    package_data={"scenegen_core": ["default_model/*.json", "default_model/*.safetensors", "default_model/*.md"]},
    entry_points={
        "console_scripts": [
            "scenegen_node = scenegen_ros.node:main",
            "synthetic_camera = scenegen_ros.synthetic_camera:main",
            "scenegen_demo = scenegen_ros.demo:main",
            "scenegen_generate_world = scenegen_core.world.generate:main",
            "scenegen_evaluate = scenegen_core.evaluation.evaluate:main",
            "scenegen_download = scenegen_core.download:main",
            "scenegen_benchmark = scenegen_core.benchmark:main",
        ],
    },
)
