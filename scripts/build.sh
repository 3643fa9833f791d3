#!/usr/bin/env bash
# Configures and builds llmpi with a preset (default: cpu) into build/<preset>.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-cpu}"
jobs="${LLMPI_BUILD_JOBS:-$(nproc)}"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"
