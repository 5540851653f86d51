"""The main job end to end: `python -m scenegen_ros.demo` in a subprocess, 1 scene, real DDS."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
pytest.importorskip("rclpy")
pytest.importorskip("scenegen_ros.msg", reason="scenegen_ros interfaces not built (scripts/build_interfaces.sh)")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
NUMBER = r"(-?\d+\.\d+)"
OBJECT_LINE = re.compile(
    rf"^id=(\d+) label=\S+ position=\({NUMBER}, {NUMBER}, {NUMBER}\) m size=\({NUMBER}, {NUMBER}, {NUMBER}\) m "
    rf"score={NUMBER}$"
)


def run_demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scenegen_ros.demo", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_demo_writes_glb_and_overlay_and_prints_objects(tmp_path, ros_child_env):
    import trimesh
    from PIL import Image

    completed = run_demo(ros_child_env, "--out", str(tmp_path), "--scenes", "1", "--seed", "1", "--steps", "2", "--timeout", "150")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()

    objects = [OBJECT_LINE.match(line) for line in lines if line.startswith("id=")]
    assert objects and all(objects), lines
    for match in objects:
        values = np.array([float(v) for v in match.groups()[1:]])
        assert np.all(np.isfinite(values))
        assert values[2] > 0, "objects must be in front of the camera (optical z > 0)"
        assert np.all(values[3:6] >= 0) and 0 <= values[6] <= 1
    assert any(line.startswith("[demo] model: ") and len(line) > len("[demo] model: ") for line in lines)
    assert any("metric=True" in line for line in lines)

    glb = trimesh.load(tmp_path / "scene_0.glb", force="scene")
    assert len(glb.geometry) == len(objects)
    bounds = glb.bounds
    assert np.all(np.isfinite(bounds)) and bounds[1, 2] > 0
    with Image.open(tmp_path / "overlay_0.png") as picture:
        assert picture.size == (256, 256) and picture.mode == "RGB"
        pixels = np.asarray(picture)
    assert pixels.std() > 0


def test_demo_times_out_with_a_clear_message(tmp_path, ros_child_env):
    # The camera's first frame comes 0.5 s after start (2 Hz timer): no scene can exist at 0.01 s.
    completed = run_demo(ros_child_env, "--out", str(tmp_path), "--scenes", "1", "--timeout", "0.01")
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "got 0 of 1 scenes within" in completed.stderr
