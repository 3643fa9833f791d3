#!/usr/bin/env bash
# Checkpoint save/load bandwidth and async stall for a GPT-2 124M-shaped state (params + m + v)
# on the host, with 1, 2 and 4 MPI ranks (oversubscribed on small machines).
#   usage: bench/checkpoint_io.sh [BUILD_DIR=build/cpu] [DIR=/tmp/llmpi-bench-ckpt]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/cpu}"
dir="${2:-/tmp/llmpi-bench-ckpt}"
cmake --build "$build" --target bench_checkpoint_io -j2 > /dev/null
flags=(--oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
echo "checkpoint I/O on $(nproc) cores, $(df -h "$(dirname "$dir")" | tail -1 | awk '{print $1}'), $(date -u +%F), commit $(git rev-parse --short HEAD)"
for n in 1 2 4; do
  mpiexec -n "$n" "${flags[@]}" "$build/tests/bench_checkpoint_io" "$dir"
done
rm -rf "$dir"
