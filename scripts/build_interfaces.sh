#!/usr/bin/env bash
# Build and install the ROS 2 interfaces of this repo into a Python venv holding the ROS 2 Kilted
# PyPI wheels, with plain cmake (no colcon, no /opt/ros):
#   1. test/interfaces/object_recognition_msgs, test/interfaces/moveit_msgs: stand-ins for tests;
#   2. the root package scenegen_ros (msg/, srv/) with -DSCENEGEN_INSTALL_PYTHON=OFF, so only the
#      generated interfaces are installed; the Python code comes from the repo.
# Everything is installed into the venv itself (-DCMAKE_INSTALL_PREFIX=VENV_DIR): the wheels' start-up
# hook already puts VENV_DIR/lib on LD_LIBRARY_PATH, which the typesupport libraries need.
#
# Usage: scripts/build_interfaces.sh VENV_DIR [--force]
# Idempotent: a package is skipped while the hash of its inputs matches its stamp
# (VENV_DIR/.scenegen_build/<package>.stamp) and its install is still there. Build trees live in
# VENV_DIR/.scenegen_build/ (outside the repo). SCENEGEN_BUILD_JOBS overrides the parallel jobs.
set -euo pipefail

usage() { echo "usage: $0 VENV_DIR [--force]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
FORCE=0
if [[ $# -eq 2 ]]; then [[ $2 == --force ]] || usage; FORCE=1; fi

VENV=$(cd "$1" && pwd) || { echo "error: venv '$1' does not exist" >&2; exit 1; }
PYTHON=$VENV/bin/python
[[ -x $PYTHON ]] || { echo "error: $PYTHON not found (is '$1' a venv?)" >&2; exit 1; }
[[ -f $VENV/share/rosidl_default_generators/package.xml ]] \
  || { echo "error: rosidl_default_generators is not installed in $VENV" >&2; exit 1; }
command -v cmake >/dev/null || { echo "error: cmake not found on PATH" >&2; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FIX_INCLUDES=$REPO/cmake/fix_imported_include_dirs.cmake
BUILD_ROOT=$VENV/.scenegen_build
JOBS=${SCENEGEN_BUILD_JOBS:-$(nproc)}
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
SITE_PACKAGES=$("$PYTHON" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")

export CMAKE_PREFIX_PATH=$VENV AMENT_PREFIX_PATH=$VENV PATH=$VENV/bin:$PATH
export LD_LIBRARY_PATH=$VENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p "$BUILD_ROOT"

# Hash of everything that decides what a package installs: its input files (paths relative to the
# package), the shared include fix and this script (contents only, so another clone of the same
# commit is up to date too), the Python used and the extra cmake arguments.
inputs_hash() {
  local source_dir=$1; shift
  {
    (cd "$source_dir" && find "$@" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' 2>/dev/null \
      | LC_ALL=C sort | xargs -r sha256sum)
    cat "$FIX_INCLUDES" "${BASH_SOURCE[0]}" | sha256sum
    echo "$PYTHON"
  } | sha256sum | cut -d' ' -f1
}

# build_package NAME SOURCE_DIR "HASH INPUTS..." [extra cmake args...]
build_package() {
  local name=$1 source_dir=$2 hash_inputs=$3; shift 3
  local stamp=$BUILD_ROOT/$name.stamp build_dir=$BUILD_ROOT/$name
  # shellcheck disable=SC2086  # hash_inputs is a list of relative paths
  local hash; hash=$(inputs_hash "$source_dir" $hash_inputs; echo "$*")
  hash=$(echo "$hash" | sha256sum | cut -d' ' -f1)
  if [[ $FORCE == 0 && -f $stamp && $(cat "$stamp") == "$hash" \
        && -f $VENV/share/$name/package.xml && -d $SITE_PACKAGES/$name/msg ]]; then
    echo "[build_interfaces] $name: up to date (stamp $stamp)"
    return
  fi
  echo "[build_interfaces] $name: building in $build_dir"
  local start=$SECONDS
  rm -f "$stamp"
  # A build tree configured from another checkout (CI clones elsewhere) cannot be reused.
  if [[ -f $build_dir/CMakeCache.txt ]] \
      && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$source_dir" "$build_dir/CMakeCache.txt"; then
    rm -rf "$build_dir"
  fi
  cmake -S "$source_dir" -B "$build_dir" "${GENERATOR[@]}" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DCMAKE_PREFIX_PATH="$VENV" \
    -DCMAKE_PROJECT_INCLUDE="$FIX_INCLUDES" \
    -DPython3_EXECUTABLE="$PYTHON" \
    -DPython3_FIND_VIRTUALENV=ONLY \
    -DBUILD_TESTING=OFF \
    "$@" >"$build_dir.configure.log" 2>&1 \
    || { cat "$build_dir.configure.log" >&2; echo "error: configuring $name failed" >&2; exit 1; }
  cmake --build "$build_dir" --parallel "$JOBS" >"$build_dir.build.log" 2>&1 \
    || { tail -n 60 "$build_dir.build.log" >&2; echo "error: building $name failed" >&2; exit 1; }
  cmake --install "$build_dir" >"$build_dir.install.log" 2>&1 \
    || { tail -n 60 "$build_dir.install.log" >&2; echo "error: installing $name failed" >&2; exit 1; }
  echo "$hash" >"$stamp"
  echo "[build_interfaces] $name: installed into $VENV in $((SECONDS - start)) s"
}

# object_recognition_msgs first: moveit_msgs depends on it.
for name in object_recognition_msgs moveit_msgs; do
  build_package "$name" "$REPO/test/interfaces/$name" "."
done
build_package scenegen_ros "$REPO" "msg srv cmake CMakeLists.txt package.xml scenegen_ros/__init__.py" \
  -DSCENEGEN_INSTALL_PYTHON=OFF

# The generated package must stay importable next to the repo's scenegen_ros.
(cd /tmp && "$PYTHON" -c "import scenegen_ros.msg, scenegen_ros.srv, moveit_msgs.msg") \
  || { echo "error: the installed interfaces do not import" >&2; exit 1; }
echo "[build_interfaces] done"
