"""ROS 2 side of SceneGen: the node, message conversion and the generated interfaces.

`scenegen_ros` is split over two directories that Python must see as one package:

* the hand-written modules (`node`, `conversions`, `image_conversion`, ...) in the source tree;
* the rosidl-generated interfaces (`scenegen_ros.msg`, `scenegen_ros.srv` and their C
  extensions), which CMake installs into ``<prefix>/lib/python3.X/site-packages/scenegen_ros/``.

CMake installs this very file over rosidl's empty ``__init__.py`` (see CMakeLists.txt), so
whichever copy is imported first, ``__path__`` below lists both directories.
"""

from __future__ import annotations

import importlib.machinery
import pkgutil
import sys


def _package_locations(name: str) -> list[str]:
    """Directories of `name` that non-path finders know (e.g. setuptools' editable finder).

    An editable install of this repo may be served by a meta-path finder that sits after the
    regular path finder, so `pkgutil.extend_path` (which scans sys.path only) cannot see it.
    """
    locations: list[str] = []
    for finder in sys.meta_path:
        if finder is importlib.machinery.PathFinder or not hasattr(finder, "find_spec"):
            continue
        try:
            spec = finder.find_spec(name, None)
        except (ImportError, ValueError, TypeError):
            continue
        if spec is not None and spec.submodule_search_locations:
            locations.extend(str(location) for location in spec.submodule_search_locations)
    return locations


def _extended_path(path: list[str], name: str) -> list[str]:
    path = pkgutil.extend_path(path, name)
    for location in _package_locations(name):
        if location not in path:
            path.append(location)
    return path


__path__ = _extended_path(__path__, __name__)
