#!/usr/bin/env bash
# Test command: set up (idempotent), then the whole pytest suite on CPU.
# Parity tests read ../shared/reference (skipped when absent). Extra arguments go to pytest.
set -eo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$SCENEGEN_ROOT"
exec python -m pytest -q "$@"
