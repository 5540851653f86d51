#!/usr/bin/env bash
# Main job: set up (idempotent), then run the SceneGen node on the synthetic tabletop camera over
# real DDS; writes output/scene_*.glb and output/overlay_*.png and prints one line per object.
# Extra arguments go to `python -m scenegen_ros.demo` (see --help), e.g. --scenes 3 --seed 7.
set -eo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$SCENEGEN_ROOT"
exec python -m scenegen_ros.demo --out "${SCENEGEN_OUTPUT:-output}" "$@"
