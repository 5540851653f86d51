"""Fixtures for tests that talk over real DDS: private ROS domains restricted to this machine."""

from __future__ import annotations

import os
import pathlib
import random

import pytest

_random = random.SystemRandom()


def private_domain_id() -> int:
    """A random domain id in [1, 232] (0 is everyone's default), so concurrent test runs on this
    machine, which all see each other on loopback, are very unlikely to share a domain."""
    return _random.randint(1, 232)


@pytest.fixture(scope="module")
def make_ros_context():
    """Factory: `make_ros_context(args=None)` -> an initialised rclpy Context on a private domain;
    every context is shut down at the end of the test module."""
    rclpy = pytest.importorskip("rclpy")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    contexts = []

    def factory(args: list[str] | None = None):
        context = rclpy.Context()
        rclpy.init(context=context, args=args, domain_id=private_domain_id())
        contexts.append(context)
        return context

    yield factory
    for context in contexts:
        rclpy.try_shutdown(context=context)


@pytest.fixture
def ros_domain_id() -> int:
    """A fresh private domain id, e.g. for a subprocess's ROS_DOMAIN_ID."""
    return private_domain_id()


@pytest.fixture
def ros_child_env(ros_domain_id) -> dict[str, str]:
    """Environment for a child process: a private domain on localhost, this checkout importable."""
    repo_root = str(pathlib.Path(__file__).resolve().parents[2])
    env = dict(os.environ, ROS_DOMAIN_ID=str(ros_domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo_root, env.get("PYTHONPATH")]))
    return env
