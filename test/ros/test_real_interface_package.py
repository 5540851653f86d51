"""scripts/find_real_interface_package.py: how scripts/build_interfaces.sh tells a real moveit_msgs /
object_recognition_msgs (never to be built over or shadowed) from its own stand-in install.

Runs the script as build_interfaces.sh does, with a real Python and PYTHONPATH, on package trees
laid out like rosidl's Python install (<package>/__init__.py, <package>/msg/__init__.py)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "find_real_interface_package.py"


def install_package(site: pathlib.Path, name: str, interface_kind: str | None = "msg") -> list[pathlib.Path]:
    """A rosidl-like Python package `name` under `site`; returns its files (an install manifest)."""
    files = [site / name / "__init__.py"]
    if interface_kind:
        files.append(site / name / interface_kind / "__init__.py")
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return files


def find(name: str, path: list[pathlib.Path], manifest: pathlib.Path | None = None) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in path))
    # -S: no site-packages, so this venv's own (stand-in) installs stay out of the search path.
    args = [sys.executable, "-S", str(SCRIPT), name] + ([str(manifest)] if manifest else [])
    done = subprocess.run(args, env=env, cwd="/", capture_output=True, text=True, timeout=60)
    assert not done.stderr, done.stderr
    return done.returncode, done.stdout.strip()


def write_manifest(path: pathlib.Path, files: list[pathlib.Path]) -> pathlib.Path:
    path.write_text("".join(f"{file}\n" for file in files))
    return path


def test_nothing_importable_means_no_real_package(tmp_path):
    assert find("moveit_msgs", [tmp_path]) == (1, "")


def test_the_stand_in_build_is_not_a_real_package(tmp_path):
    files = install_package(tmp_path / "venv_site", "moveit_msgs")
    manifest = write_manifest(tmp_path / "install_manifest.txt", files)
    assert find("moveit_msgs", [tmp_path / "venv_site"], manifest) == (1, "")
    # Without the stand-in's manifest the same install is somebody else's: real.
    assert find("moveit_msgs", [tmp_path / "venv_site"]) == (0, str(tmp_path / "venv_site" / "moveit_msgs"))


def test_a_real_package_behind_the_stand_in_is_found(tmp_path):
    """A venv with --system-site-packages puts its own site-packages (our stand-in) first."""
    manifest = write_manifest(
        tmp_path / "install_manifest.txt", install_package(tmp_path / "venv_site", "object_recognition_msgs")
    )
    install_package(tmp_path / "system_site", "object_recognition_msgs")
    found = find("object_recognition_msgs", [tmp_path / "venv_site", tmp_path / "system_site"], manifest)
    assert found == (0, str(tmp_path / "system_site" / "object_recognition_msgs"))


def test_only_installed_interface_packages_count(tmp_path):
    # A source folder of .msg files (namespace package) and a plain package of the same name are
    # no interface install; a service-only package is.
    (tmp_path / "sources" / "moveit_msgs" / "msg").mkdir(parents=True)
    (tmp_path / "sources" / "moveit_msgs" / "msg" / "CollisionObject.msg").write_text("string id\n")
    install_package(tmp_path / "plain", "moveit_msgs", interface_kind=None)
    assert find("moveit_msgs", [tmp_path / "sources", tmp_path / "plain"]) == (1, "")
    install_package(tmp_path / "services", "moveit_msgs", interface_kind="srv")
    found = find("moveit_msgs", [tmp_path / "sources", tmp_path / "plain", tmp_path / "services"])
    assert found == (0, str(tmp_path / "services" / "moveit_msgs"))


def test_bad_usage_exits_2():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage" in done.stderr
