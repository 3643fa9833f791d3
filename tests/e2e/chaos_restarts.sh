#!/usr/bin/env bash
# The short chaos test (issue: chaos-tested restarts): 3 kill -9s of a random rank of a 2-rank
# run — during checkpoint writes and at random moments — each followed by a relaunch; the run
# must resume from the newest checkpoint every time and end bitwise equal to an uninterrupted
# run (scripts/chaos.py does the work and the checks). bench/chaos.sh runs the full version.
#   usage: chaos_restarts.sh LLMPI_BINARY SOURCE_DIR
set -euo pipefail
exec /usr/bin/python3 "$2/scripts/chaos.py" --llmpi "$1" --kills 3 --steps 20 --seed "${LLMPI_CHAOS_SEED:-7}"
