#!/usr/bin/env bash
# The full chaos test: 10 kill -9s of a random rank over one 48-step 2-rank run (during
# checkpoint writes, at random moments, during start-up), each followed by a relaunch; checks
# that every relaunch resumes from the newest checkpoint and that the run ends bitwise equal to
# an uninterrupted one. Writes the result table to bench/results/chaos.md (copy it into
# docs/slurm.md, "Chaos test").
#   usage: bench/chaos.sh [BUILD_DIR] [--kills N] [--seed S] ...   (more options: scripts/chaos.py --help)
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/cpu
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then build=$1; shift; fi
[ -x "$build/llmpi" ] || { echo "bench/chaos.sh: no $build/llmpi; build it first (scripts/build.sh cpu)" >&2; exit 2; }
mkdir -p bench/results
/usr/bin/python3 scripts/chaos.py --llmpi "$build/llmpi" --kills 10 --steps 48 --report bench/results/chaos.md "$@"
echo "bench/chaos.sh: result in bench/results/chaos.md"
