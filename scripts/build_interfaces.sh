#!/usr/bin/env bash
# Build and install the ROS 2 interfaces of this repo into a Python venv holding the ROS 2 Kilted
# PyPI wheels, with plain cmake (no colcon, no /opt/ros):
#   1. test/interfaces/object_recognition_msgs, test/interfaces/moveit_msgs: stand-ins for tests,
#      only where no real package is importable: when the venv's Python (in the caller's
#      environment: a sourced ROS's PYTHONPATH, --system-site-packages) imports a real one from
#      anywhere but this script's own install, the stand-in is skipped and any stand-in an earlier
#      run installed is removed, so that it never shadows the real package;
#   2. the root package scenegen_ros (msg/, srv/) with -DSCENEGEN_INSTALL_PYTHON=OFF, so only the
#      generated interfaces are installed; the Python code comes from the repo.
# Everything is installed into the venv itself (-DCMAKE_INSTALL_PREFIX=VENV_DIR): the wheels' start-up
# hook already puts VENV_DIR/lib on LD_LIBRARY_PATH, which the typesupport libraries need.
#
# Usage: scripts/build_interfaces.sh VENV_DIR [--force]
# Idempotent: a package is skipped while the hash of its inputs (and of the stamps of the stand-ins
# it is built against) matches its stamp (VENV_DIR/.scenegen_build/<package>.stamp) and its install
# is still there. Build trees live in
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

# build_package NAME SOURCE_DIR "HASH INPUTS..." "BUILT-AGAINST PACKAGES..." [extra cmake args...]
# A package is rebuilt when one it is built against (its generated code includes theirs) was.
build_package() {
  local name=$1 source_dir=$2 hash_inputs=$3 built_against=$4; shift 4
  local stamp=$BUILD_ROOT/$name.stamp build_dir=$BUILD_ROOT/$name dependency
  # shellcheck disable=SC2086  # hash_inputs is a list of relative paths
  local hash; hash=$(inputs_hash "$source_dir" $hash_inputs; echo "$*"
    for dependency in $built_against; do cat "$BUILD_ROOT/$dependency.stamp"; done)
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

# real_package NAME: directory of a real NAME importable by the venv's Python (not our stand-in
# build), or nothing.
real_package() {
  (cd / && "$PYTHON" "$REPO/scripts/find_real_interface_package.py" "$1" "$BUILD_ROOT/$1/install_manifest.txt") \
    || true
}

# remove_stand_in NAME: uninstall the stand-in an earlier run installed (the files cmake listed in
# its install manifest), with its build tree and stamp. Nothing to do when there is none.
remove_stand_in() {
  local name=$1 manifest=$BUILD_ROOT/$1/install_manifest.txt dir
  if [[ -f $manifest ]]; then
    echo "[build_interfaces] $name: removing the stand-in an earlier run installed into $VENV"
    xargs -r -d '\n' rm -f -- <"$manifest"
    for dir in "$SITE_PACKAGES/$name" "$SITE_PACKAGES/$name"-*.egg-info "$VENV/share/$name" "$VENV/include/$name"; do
      [[ -d $dir ]] || continue
      find "$dir" -depth -type d -name __pycache__ -exec rm -rf {} +
      find "$dir" -depth -type d -empty -delete
    done
  fi
  rm -rf "${BUILD_ROOT:?}/$name" "$BUILD_ROOT/$name".{stamp,configure.log,build.log,install.log}
}

# Stand-ins, object_recognition_msgs first: moveit_msgs is built against it. A real package wins;
# the moveit_msgs stand-in also needs the object_recognition_msgs stand-in (this plain-cmake build
# only finds packages in the venv), so a real object_recognition_msgs alone means no stand-in
# moveit_msgs either (build the real moveit_msgs then; tests needing it skip meanwhile).
stand_ins=()
for name in object_recognition_msgs moveit_msgs; do
  real=$(real_package "$name")
  reason=
  if [[ -n $real ]]; then
    reason="the real package is importable from $real"
  elif [[ $name == moveit_msgs && ! " ${stand_ins[*]} " == *" object_recognition_msgs "* ]]; then
    reason="it is built against the object_recognition_msgs stand-in, which was skipped"
  fi
  if [[ -n $reason ]]; then
    echo "[build_interfaces] $name: stand-in skipped, $reason"
    remove_stand_in "$name"
    continue
  fi
  built_against=
  [[ $name == moveit_msgs ]] && built_against=object_recognition_msgs
  build_package "$name" "$REPO/test/interfaces/$name" "." "$built_against"
  stand_ins+=("$name")
done
build_package scenegen_ros "$REPO" "msg srv cmake CMakeLists.txt package.xml scenegen_ros/__init__.py" "" \
  -DSCENEGEN_INSTALL_PYTHON=OFF

# The generated packages must stay importable (scenegen_ros next to the repo's scenegen_ros).
imports="scenegen_ros.msg, scenegen_ros.srv"
for name in "${stand_ins[@]}"; do imports+=", $name.msg"; done
(cd /tmp && "$PYTHON" -c "import $imports") \
  || { echo "error: the installed interfaces do not import" >&2; exit 1; }
echo "[build_interfaces] done"
