"""Print the console scripts declared in setup.py, one `name=module:function` per line.

setup.py is the single list of entry points: pip creates them for `pip install -e .`, and
CMakeLists.txt runs this script to install the same ones into lib/scenegen_ros/ for `ros2 run`.
setup.py is read with `ast` (never executed), so this needs nothing but the standard library.

Usage: python cmake/console_scripts.py [path/to/setup.py]
"""

from __future__ import annotations

import ast
import pathlib
import re
import sys

_ENTRY = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=\s*([A-Za-z0-9_.]+)\s*:\s*([A-Za-z0-9_]+)\s*$")


def console_scripts(setup_py: pathlib.Path) -> list[tuple[str, str, str]]:
    """(name, module, function) per console script of the setup() call in `setup_py`.

    Raises ValueError when setup.py has no literal entry_points["console_scripts"] list or an
    entry is not `name = module:function`.
    """
    tree = ast.parse(setup_py.read_text(), filename=str(setup_py))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and key.value == "console_scripts":
                entries = ast.literal_eval(value)
                parsed = []
                for entry in entries:
                    match = _ENTRY.match(entry)
                    if match is None:
                        raise ValueError(f"{setup_py}: console script '{entry}' is not 'name = module:function'")
                    parsed.append(match.groups())
                return parsed
    raise ValueError(f"{setup_py}: no literal entry_points['console_scripts'] list found")


def main() -> int:
    setup_py = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parents[1] / "setup.py")
    try:
        scripts = console_scripts(setup_py)
    except (OSError, SyntaxError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, module, function in scripts:
        print(f"{name}={module}:{function}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
