"""requirements.txt (version ranges, the ROS-distro route) and requirements-ros-pip.txt (exact
pins, the pip-only route of scripts/setup_env.sh) agree: scripts/setup_env.sh installs both at once."""

from __future__ import annotations

import pathlib

import pytest

requirements = pytest.importorskip("packaging.requirements")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def read(name: str) -> dict[str, "requirements.Requirement"]:
    """Requirement per normalised project name of a requirements file (comments, blank lines skipped)."""
    parsed = {}
    for line in (REPO_ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = requirements.Requirement(line)
            key = requirement.name.lower().replace("_", "-")
            assert key not in parsed, f"{name}: {requirement.name} twice"
            parsed[key] = requirement
    return parsed


def pinned_version(requirement) -> str:
    [specifier] = list(requirement.specifier)
    assert specifier.operator == "==", f"{requirement}: not an exact pin"
    return specifier.version


def test_ranges_are_ranges():
    for requirement in read("requirements.txt").values():
        operators = {s.operator for s in requirement.specifier}
        assert operators and operators <= {">=", "<", "!=", "<=", ">"}, f"{requirement}: want a range, not a pin"


def test_every_range_is_pinned_inside_it_for_the_pip_only_route():
    ranges, pins = read("requirements.txt"), read("requirements-ros-pip.txt")
    assert set(ranges) <= set(pins), f"not pinned: {sorted(set(ranges) - set(pins))}"
    for key, requirement in pins.items():
        version = pinned_version(requirement)
        if key in ranges:
            assert ranges[key].specifier.contains(version), f"{requirement} outside {ranges[key]}"


def test_ranges_fit_a_ros_distribution():
    ranges = read("requirements.txt")
    # The distro's numpy (Ubuntu 24.04), which its ROS messages were built against, stays.
    assert ranges["numpy"].specifier.contains("1.26.4")
    # launch_testing's pytest plugins break on pytest 9 (ros2/launch#979).
    assert not ranges["pytest"].specifier.contains("9.0.0")
    assert not any(key.startswith("ros-") for key in ranges), "ROS comes from the distribution there"
