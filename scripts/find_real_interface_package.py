#!/usr/bin/env python3
"""Where a ROS 2 interface package is importable from, other than this repo's stand-in build.

    find_real_interface_package.py NAME [INSTALL_MANIFEST]

Looks through every sys.path entry of the Python that runs it (PYTHONPATH of a sourced ROS
distribution, a venv's own and, with --system-site-packages, the system site-packages) for a
regular package NAME with a msg/, srv/ or action/ subpackage whose __init__.py is not listed in
INSTALL_MANIFEST (the install_manifest.txt cmake wrote when scripts/build_interfaces.sh installed
the test stand-in of NAME). Prints the first such package directory and exits 0; prints nothing
and exits 1 when NAME is importable only from the stand-in build, or not at all. Every entry is
searched, not only the first hit: a stand-in in a venv's site-packages shadows a real package in
the system site-packages behind it, and must not hide it here.

scripts/build_interfaces.sh runs it with the venv's Python to never build or install a stand-in
over (or in front of) a real moveit_msgs / object_recognition_msgs.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys

INTERFACE_KINDS = ("msg", "srv", "action")


def stand_in_files(manifest: str | None) -> set[str]:
    """Real paths of the files cmake installed for the stand-in (empty set without a manifest)."""
    if not manifest or not os.path.isfile(manifest):
        return set()
    with open(manifest, encoding="utf-8") as lines:
        return {os.path.realpath(line.strip()) for line in lines if line.strip()}


def find_real_package(name: str, manifest: str | None = None, path: list[str] | None = None) -> str | None:
    """Directory of the first interface package `name` on `path` (default sys.path) that is not
    the stand-in listed in `manifest`, or None."""
    ours = stand_in_files(manifest)
    for entry in sys.path if path is None else path:
        if not entry or not os.path.isdir(entry):
            continue
        spec = importlib.machinery.PathFinder.find_spec(name, [entry])
        # A namespace package (origin None, e.g. a source folder of .msg files) is no install.
        if spec is None or not spec.origin or os.path.basename(spec.origin) != "__init__.py":
            continue
        package_dir = os.path.dirname(spec.origin)
        if os.path.realpath(spec.origin) in ours:
            continue
        if any(os.path.isfile(os.path.join(package_dir, kind, "__init__.py")) for kind in INTERFACE_KINDS):
            return package_dir
    return None


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: find_real_interface_package.py NAME [INSTALL_MANIFEST]", file=sys.stderr)
        return 2
    found = find_real_package(argv[1], argv[2] if len(argv) == 3 else None)
    if found is None:
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
