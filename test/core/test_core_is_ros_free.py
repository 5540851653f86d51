"""`scenegen_core` must import and work on machines without ROS: no module of it may import rclpy."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import REPO_ROOT

_IMPORT_EVERY_MODULE = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    class BlockRos:
        # Fail loudly at the import site instead of merely noticing rclpy afterwards.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("rclpy", "rosidl_runtime_py", "sensor_msgs", "scenegen_ros"):
                raise ImportError(f"scenegen_core imported ROS module {name!r}")
            return None

    sys.meta_path.insert(0, BlockRos())
    import scenegen_core
    names = [m.name for m in pkgutil.walk_packages(scenegen_core.__path__, "scenegen_core.")]
    for name in names:
        if name.endswith("__main__"):
            continue
        importlib.import_module(name)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("rclpy", "scenegen_ros"))
    print(len(names), leaked)
    assert not leaked, leaked
    """
)


def test_every_core_module_imports_without_ros():
    completed = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERY_MODULE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    module_count = int(completed.stdout.split()[0])
    assert module_count >= 2, completed.stdout


def test_blocker_detects_a_ros_import():
    """The check above would fail if a core module imported rclpy: prove the blocker bites."""
    probe = _IMPORT_EVERY_MODULE.replace("import scenegen_core\n", "import scenegen_core\nimport rclpy\n", 1)
    completed = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode != 0
    assert "imported ROS module 'rclpy'" in completed.stderr


def test_runtime_path_does_not_import_the_synthetic_world_evaluation_or_training():
    # Data flows one way: node -> pipeline -> (segmentation, models, placement, registration) ->
    # geometry/types. The synthetic world, the evaluation and training are test and offline code.
    code = (
        "import sys, scenegen_core.pipeline\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('scenegen_core.world', 'scenegen_core.evaluation', "
        "'scenegen_core.training')))\n"
        "assert not bad, bad\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
